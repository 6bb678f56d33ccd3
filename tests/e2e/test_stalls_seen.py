"""Every stall produced for real, seen in status, /healthz, the metrics and the status page.

Each test also has a command hook on ``stalled`` and ``recovered`` and checks that each fires
exactly once for the stall.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import DaemonHarness, wait_until
from receivers import HttpReceiver, SlowRelay, free_port

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav, write_large_wav

RECORDER = textwrap.dedent(
    """
    import json, os, sys, time
    with open(os.path.join(sys.argv[1], f"{time.time_ns()}.json"), "w") as handle:
        json.dump(dict(os.environ), handle)
    """
)


@dataclass
class Watched:
    """A daemon with an endpoint, a runtime folder for live.json and a hook that records."""

    harness: DaemonHarness
    runtime: Path
    hook_runs: Path
    listen: str
    extra: dict[str, Any]

    def start(self) -> None:
        self.harness.start(env={"RUNTIME_DIRECTORY": str(self.runtime)})

    def status(self) -> dict[str, Any]:
        return self.harness.status(self.runtime)

    def status_text(self) -> str:
        return self.harness.status_text(self.runtime)

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"http://{self.listen}{path}", timeout=10)

    def shows(self, kind: str, *, stops_work: bool = True) -> bool:
        """The stall is in all four views (and /healthz says 503 when it stops work)."""
        in_status = kind in [stall["kind"] for stall in self.status()["stalls"]]
        health = self.get("/healthz")
        in_health = kind in [stall["kind"] for stall in health.json()["stalls"]]
        metric = re.search(rf'symbl_inbox_stall\{{kind="{kind}"[^}}]*\}} 1\.0', self.metrics())
        page = self.get("/").text
        return (
            in_status
            and in_health
            and (health.status_code == 503) == stops_work
            and metric is not None
            and f"<strong>{kind}</strong>" in page
        )

    def clear(self) -> bool:
        """No stall in any view, and /healthz says 200."""
        health = self.get("/healthz")
        return (
            self.status()["stalls"] == []
            and health.status_code == 200
            and health.json()["stalls"] == []
            and "symbl_inbox_stall{" not in self.metrics()
            and "No stalls: work proceeds." in self.get("/").text
        )

    def metrics(self) -> str:
        return self.get("/metrics").text

    def hook_events(self, kind: str) -> list[str]:
        found = []
        for path in sorted(self.hook_runs.iterdir()):
            env = json.loads(path.read_text())
            if env.get("SYMBL_INBOX_STALL") == kind:
                found.append(env["SYMBL_INBOX_EVENT"])
        return found

    def rewrite(self, **options: Any) -> None:
        self.harness.write_config(extra=self.extra, **options)


@pytest.fixture
def watched(
    harness_factory: Callable[..., DaemonHarness], tmp_path: Path
) -> Callable[..., Watched]:
    def make(ping: str | None = None, **options: Any) -> Watched:
        runtime, runs = tmp_path / "run", tmp_path / "hook-runs"
        runtime.mkdir(exist_ok=True)
        runs.mkdir(exist_ok=True)
        script = tmp_path / "recorder.py"
        script.write_text(RECORDER)
        listen = f"127.0.0.1:{free_port()}"
        extra = {
            "http": {"listen": listen},
            "hooks": [
                {
                    "on": ["stalled", "recovered"],
                    "command": [sys.executable, str(script), str(runs)],
                }
            ],
        }
        if ping is not None:
            extra["hooks"].append({"ping": ping, "interval_seconds": 300})
        harness = harness_factory(extra=extra, **options)
        return Watched(harness, runtime, runs, listen, extra)

    return make


def recovered_once(watched: Watched, kind: str) -> None:
    wait_until(lambda: "recovered" in watched.hook_events(kind), 20, "the recovered hook")
    watched.harness.stop()
    assert watched.hook_events(kind) == ["stalled", "recovered"]


class TestCredentialsRefused:
    """A wrong app secret stops all work until the right one is reloaded."""

    def test_wrong_secret(
        self, emulator_factory: Callable[..., EmulatorServer], watched: Callable[..., Watched]
    ) -> None:
        server = emulator_factory(app_id="test-app", app_secret="the-right-secret-123")
        with HttpReceiver() as pings:
            setup = watched(emulator=server, ping=f"{pings.base}/ping/x")
            setup.start()
            self.wrong_secret(setup)
            # The dead-man's switch said so: /fail during the stall, success after it.
            fails = pings.on("/ping/x/fail")
            assert fails and b"credentials_refused" in fails[0].body
            assert pings.on("/ping/x"), "a success ping after the recovery"

    def wrong_secret(self, setup: Watched) -> None:
        (setup.harness.inbox / "a.wav").write_bytes(make_wav(0.3))
        wait_until(lambda: setup.shows("credentials_refused"), 30, "the stall in every view")
        text = setup.status_text()
        assert "Stalls: 1" in text and "credentials_refused since" in text
        assert "the-right-secret" not in text and "test-secret-value-42" not in text
        assert setup.harness.results() == {}
        setup.rewrite(symbl_options={"app_secret": "the-right-secret-123"})
        assert setup.harness.process is not None
        setup.harness.process.send_signal(signal.SIGHUP)
        setup.harness.wait_filed(1)
        wait_until(setup.clear, 20, "the stall to clear everywhere")
        assert list(setup.harness.results()) == ["a.wav"]
        recovered_once(setup, "credentials_refused")


class TestApiUnreachable:
    """Symbl gone for longer than unreachable_after_seconds is a stall; back, it clears."""

    def test_emulator_stopped_and_back(
        self, emulator: EmulatorServer, watched: Callable[..., Watched]
    ) -> None:
        setup = watched(emulator=emulator, symbl_options={"unreachable_after_seconds": 1})
        setup.start()
        port = int(emulator.base_url.rsplit(":", 1)[1])
        emulator.stop()
        (setup.harness.inbox / "a.wav").write_bytes(make_wav(0.3))
        wait_until(lambda: setup.shows("api_unreachable"), 60, "the stall in every view")
        [stall] = setup.status()["stalls"]
        assert "no answer from Symbl at http://127.0.0.1:" in stall["message"]
        assert setup.harness.errors() == {}  # transient trouble never fails a file
        emulator.start(port)
        setup.harness.wait_filed(1, timeout=60)
        wait_until(setup.clear, 20, "the stall to clear everywhere")
        assert list(setup.harness.results()) == ["a.wav"]
        recovered_once(setup, "api_unreachable")


class TestInboxUnavailable:
    """An inbox removed is a stall; created again it is watched within seconds."""

    def test_removed_and_created_again(
        self, emulator: EmulatorServer, watched: Callable[..., Watched]
    ) -> None:
        setup = watched(emulator=emulator)  # rescan_seconds stays 300: events must do it
        setup.start()
        inbox = setup.harness.inbox
        shutil.rmtree(inbox)
        wait_until(lambda: setup.shows("inbox_unavailable"), 20, "the stall in every view")
        [stall] = setup.status()["stalls"]
        assert stall["subject"] == str(inbox) and str(inbox) in stall["message"]
        inbox.mkdir()
        wait_until(setup.clear, 20, "the inbox watched again")
        (inbox / "after.wav").write_bytes(make_wav(0.3))
        setup.harness.wait_filed(1, timeout=20)
        assert list(setup.harness.results()) == ["after.wav"]
        recovered_once(setup, "inbox_unavailable")


@pytest.fixture
def small_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs at ``setup0/state`` (the harness's state_dir), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    state = tmp_path / "setup0" / "state"
    state.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0755", "tmpfs", str(state)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield state
    finally:
        subprocess.run(["umount", "-l", str(state)], check=False)


def fill(folder: Path) -> Path:
    """Write into ``folder`` until the filesystem says it is full."""
    filler = folder / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


class TestStateFull:
    """A full state folder pauses everything; freed, work resumes by itself and loses nothing."""

    def test_full_tmpfs(
        self, emulator: EmulatorServer, watched: Callable[..., Watched], small_tmpfs: Path
    ) -> None:
        setup = watched(emulator=emulator)
        assert setup.harness.state_dir == small_tmpfs
        setup.start()
        filler = fill(small_tmpfs)
        (setup.harness.inbox / "a.wav").write_bytes(make_wav(0.3))
        wait_until(lambda: setup.shows("state_full"), 30, "the stall in every view")
        [stall] = setup.status()["stalls"]
        assert str(small_tmpfs) in stall["message"]
        assert (setup.harness.inbox / "a.wav").exists()  # waiting, not lost
        assert setup.harness.results() == {} and setup.harness.errors() == {}
        assert "Traceback" not in setup.harness.log_text()
        filler.unlink()
        setup.harness.wait_filed(1, timeout=30)
        wait_until(setup.clear, 20, "the stall to clear everywhere")
        assert list(setup.harness.results()) == ["a.wav"]
        recovered_once(setup, "state_full")


class TestUploadProgress:
    """An upload in flight shows bytes sent of total in status and on the page."""

    def test_half_done_upload(
        self, emulator: EmulatorServer, watched: Callable[..., Watched], tmp_path: Path
    ) -> None:
        port = int(emulator.base_url.rsplit(":", 1)[1])
        size = 12 * 1024 * 1024
        with SlowRelay(port, rate=2 * 1024 * 1024) as relay:
            setup = watched(emulator=emulator, symbl_options={"base_url": relay.base_url})
            setup.start()
            staged = tmp_path / "big.wav"
            write_large_wav(staged, size)
            staged.rename(setup.harness.inbox / "big.wav")

            def half_done() -> dict[str, Any] | None:
                uploads = setup.status()["uploads"]
                if uploads and 0 < uploads[0]["bytesSent"] < uploads[0]["bytesTotal"]:
                    return dict(uploads[0])
                return None

            wait_until(lambda: half_done() is not None, 30, "a partly sent upload")
            upload = half_done() or {}
            assert upload["file"] == "big.wav" and upload["bytesTotal"] == size
            assert "Uploading: 1" in setup.status_text()
            page = setup.get("/").text
            assert 'id="uploads"' in page and f'<progress max="{size}"' in page
            setup.harness.wait_filed(1, timeout=60)
            wait_until(lambda: setup.status()["uploads"] == [], 10, "no upload left")
            assert list(setup.harness.results()) == ["big.wav"]
