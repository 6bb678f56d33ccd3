"""``symbl-inbox demo``: the whole daemon on a demo inbox, against the built-in emulator.

No credentials and no network: the emulator runs in-process on 127.0.0.1. The demo writes a
real configuration file (so the real loader reads it), drops sample files of every kind, shows
what happens to each, and exits 0 once all of them are filed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from daemon.files.samples import make_mp3, make_wav

MARKER = ".symbl-inbox-demo"
DEMO_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class Sample:
    name: str
    write: Callable[[Path], None]
    sidecar: str | None = None
    expect: str = "done"


def _bytes(data: bytes) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        path.write_bytes(data)

    return write


def samples(url_base: str) -> list[Sample]:
    """One of each: WAV, MP3, a two-part conversation (part 2 first), a URL drop, a bad file."""
    drop = f"url: {url_base}/recordings/standup.wav\nparams:\n  name: Stand-up (URL drop)\n"
    part = "conversation: demo-call\npart: {}\n".format
    return [
        Sample("call-part2.wav", _bytes(make_wav(1.5, tone_hz=330)), part(2)),
        Sample("meeting.wav", _bytes(make_wav(2.0))),
        Sample("voicemail.mp3", _bytes(make_mp3(3.0))),
        Sample("call-part1.wav", _bytes(make_wav(1.0, tone_hz=550)), part(1)),
        Sample("standup.url.yaml", _bytes(drop.encode())),
        Sample("notes.wav", _bytes(b"These are meeting notes, not audio.\n"), expect="failed"),
    ]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dir", default="symbl-inbox-demo", help="demo folder (default: ./symbl-inbox-demo)"
    )
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="keep the daemon running after the samples are filed; drop your own files in",
    )
    parser.add_argument(
        "--job-seconds", type=float, default=2.0, help="how long emulated jobs take (default 2)"
    )


def main(args: argparse.Namespace) -> int:
    root = Path(args.dir).resolve()
    if root.exists() and not (root / MARKER).exists() and any(root.iterdir()):
        print(f"{root} exists and is not a demo folder; choose another with --dir", file=sys.stderr)
        return 2
    _fresh_layout(root)
    return asyncio.run(_run(root, args.keep_running, args.job_seconds))


def _fresh_layout(root: Path) -> None:
    """The demo folder is the demo's own (it carries a marker): start it afresh each time.

    The safe layout: done/ and failed/ beside the inbox, not in it, so whoever may drop files
    cannot rename or replace them; the inbox is sticky, so droppers cannot move each other's
    files either.
    """
    for name in ("inbox", "done", "failed", "state"):
        shutil.rmtree(root / name, ignore_errors=True)
        (root / name).mkdir(parents=True)
    (root / "inbox").chmod(0o1775)
    (root / MARKER).write_text("created by symbl-inbox demo\n")


def _write_config(root: Path, base_url: str) -> Path:
    config = root / "config.yaml"
    config.write_text(
        "# Written by `symbl-inbox demo`: the daemon against the built-in emulator.\n"
        "symbl:\n"
        f"  base_url: {base_url}\n"
        "  app_id: demo-app\n"
        "  app_secret: demo-secret-not-real\n"
        "  max_concurrent_jobs: 2      # a trial account's limit\n"
        f"state_dir: {root / 'state'}\n"
        "log_level: info\n"
        "tracking:\n"
        "  poll_initial_seconds: 0.5\n"
        "  poll_max_seconds: 2\n"
        "profiles:\n"
        "  default:\n"
        "    params:\n"
        "      languageCode: en-US\n"
        "      confidenceThreshold: 0.6\n"
        "      detectPhrases: true\n"
        "inboxes:\n"
        f"  - path: {root / 'inbox'}\n"
        "    profile: default\n"
        f"    done: {root / 'done'}\n"
        f"    failed: {root / 'failed'}\n"
        "    settle_seconds: 0.5\n"
    )
    return config


async def _run(root: Path, keep_running: bool, job_seconds: float) -> int:
    from daemon.config import ConfigError, load_config
    from daemon.emulator import EmulatorServer, EmulatorSettings
    from daemon.logs import configure_logging
    from daemon.service import Daemon

    with EmulatorServer(EmulatorSettings(job_seconds=job_seconds, max_jobs=2)) as server:
        # The emulator runs on this machine: a proxy set in the shell must not carry its traffic.
        bypass = os.environ.get("no_proxy") or os.environ.get("NO_PROXY")
        os.environ["no_proxy"] = ",".join(filter(None, (bypass, "127.0.0.1")))
        try:
            config = load_config(_write_config(root, server.base_url))
        except ConfigError as exc:
            print(exc, file=sys.stderr)
            return 1
        configure_logging("info", json=False, stream=sys.stderr)
        print(f"Demo folder: {root}\nEmulator:    {server.base_url}\n")
        daemon = Daemon(config)
        running = asyncio.create_task(daemon.run())
        await daemon.ready_event.wait()
        dropped = _drop_samples(root / "inbox", server.base_url)
        outcome = await _wait_until_filed(root, dropped, running)
        _print_summary(root, dropped)
        if keep_running and outcome == 0:
            print(f"\nStill running: drop WAV or MP3 files into {root / 'inbox'} (Ctrl-C stops).")
            await running
            return 0
        daemon.stop()
        await running
        return outcome


def _drop_samples(inbox: Path, base_url: str) -> list[Sample]:
    """Sidecars first, as the README tells writers to; then the audio, one by one."""
    chosen = samples(base_url)
    for sample in chosen:
        if sample.sidecar:
            (inbox / f"{sample.name}.yaml").write_text(sample.sidecar)
        sample.write(inbox / sample.name)
        print(f"dropped {sample.name}")
    print()
    return chosen


async def _wait_until_filed(root: Path, dropped: list[Sample], running: asyncio.Task[int]) -> int:
    deadline = time.monotonic() + DEMO_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if running.done():
            return running.result() or 1
        if all(_filed_record(root, sample.name) for sample in dropped):
            return 0
        await asyncio.sleep(0.2)
    print(f"not everything was filed within {DEMO_TIMEOUT_SECONDS:.0f} s", file=sys.stderr)
    return 1


def _filed_record(root: Path, name: str) -> Path | None:
    for folder, suffix in (("done", ".result.json"), ("failed", ".error.json")):
        candidate = root / folder / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


def _print_summary(root: Path, dropped: list[Sample]) -> None:
    print("\nWhat happened:")
    for sample in dropped:
        record_path = _filed_record(root, sample.name)
        if record_path is None:
            print(f"  {sample.name:<20} not filed yet")
            continue
        record = json.loads(record_path.read_text())
        where = record_path.parent.name
        if where == "done":
            conversation = record.get("conversation")
            part = (
                f", part {conversation['part']} of {conversation['key']!r}" if conversation else ""
            )
            detail = f"conversationId {record['conversationId']}{part}"
        else:
            detail = f"{record['reason']}: {record['message']}"
        print(f"  {sample.name:<20} -> {where}/  {detail}")
    print(f"\nRecords are beside each file in {root / 'done'} and {root / 'failed'}.")
