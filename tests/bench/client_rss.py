"""Peak memory of uploading one large WAV: our streaming client against the official Symbl SDK.

Run it as a script (``.venv/bin/python tests/bench/client_rss.py [--size-mib N]``) or call
``measure(size_bytes)``. Each upload runs in its own child process, against the emulator started
as a further child, and its peak RSS is the kernel's own account (the child's VmHWM, which it
prints as it ends), so nothing is sampled and nothing can be missed. The official SDK reads the
whole file into memory before it sends it; ours streams it from disk in 1 MiB chunks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from baselines import add_sdk_to_path, offer_sdk_to_children

REPO = Path(__file__).resolve().parents[2]
APP_ID, APP_SECRET = "bench-app", "bench-app-secret"
SDK_MISSING_EXIT = 3
EMULATOR_START_SECONDS = 30.0
MIB = 1024 * 1024
OUR_TARGET_MIB = 80


def measure(size_bytes: int = 2 * 1024**3) -> dict[str, Any]:
    """Upload a WAV of ``size_bytes`` with each client; the peak RSS of each, in MiB."""
    from daemon.files.samples import write_large_wav

    with tempfile.TemporaryDirectory(prefix="client-rss-") as folder:
        audio = Path(folder) / "large.wav"
        write_large_wav(audio, size_bytes)
        with emulator() as base_url:
            ours = peak_rss_mib(["ours", base_url, str(audio)])
            sdk = peak_rss_mib(["sdk", base_url, str(audio)])
    size_mib = size_bytes / MIB
    return {
        "file_mib": size_mib,
        "ours_mib": ours,
        "sdk_mib": sdk,
        "sdk_to_file": None if sdk is None else sdk / size_mib,
    }


@contextmanager
def emulator(
    job_seconds: float = 1.0, max_jobs: int = 50, extra: tuple[str, ...] = ()
) -> Iterator[str]:
    """``symbl-inbox emulator`` (with ``extra`` options) as a child process on a free loopback
    port; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "daemon", "emulator", "--port", str(port)]
    command += ["--job-seconds", str(job_seconds), "--max-jobs", str(max_jobs), *extra]
    process = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + EMULATOR_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)  # polling a port that is not open yet; nothing to wait on instead
    raise RuntimeError(
        f"the emulator did not listen on port {port} within {EMULATOR_START_SECONDS} s"
    )


def peak_rss_mib(child_args: list[str]) -> float | None:
    """Run this script as a child doing one upload; its peak RSS, or None if the SDK is absent.

    The child says its own VmHWM as it ends: ``ru_maxrss`` from ``wait4`` would be at least
    this benchmark's own peak, which Linux keeps across the child's ``execve``.
    """
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", *child_args], cwd=REPO, stdout=subprocess.PIPE
    )
    assert process.stdout is not None
    said = process.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode == SDK_MISSING_EXIT:
        return None
    if process.returncode != 0:
        raise RuntimeError(f"the {child_args[0]} upload failed with code {process.returncode}")
    peaks = [line.split()[1] for line in said.splitlines() if line.startswith(PEAK_LINE)]
    return (int(peaks[-1]) if peaks else usage.ru_maxrss) / 1024  # both in KiB


PEAK_LINE = "peak_rss_kib"


def say_own_peak() -> None:
    """The child's last line: its VmHWM in KiB."""
    status = Path("/proc/self/status").read_text()
    kib = status.split("VmHWM:")[1].split()[0]
    print(f"{PEAK_LINE} {kib}", flush=True)


# ---------------------------------------------------------------- the children


def _upload_with_ours(base_url: str, audio: Path) -> None:
    from daemon.config.model import SymblSettings
    from daemon.symbl.client import SymblClient

    async def upload() -> None:
        settings = SymblSettings(base_url=base_url, app_id=APP_ID, app_secret=APP_SECRET)
        async with SymblClient(settings) as client:
            result = await client.submit_file(audio, {"name": "rss benchmark"})
        print(f"ours: conversation {result.conversation_id}, sha256 {result.sha256}")

    asyncio.run(upload())


def import_sdk(base_url: str) -> Any:
    """The official ``symbl`` module pointed at ``base_url``, or None (with a hint) if absent."""
    try:
        from symbl_rest import Configuration
    except ImportError:
        print("symbl-rest is not installed: cannot measure the official SDK")
        return None
    # The SDK builds its API objects at import time from the generated client's default
    # configuration, so the emulator's address has to be the default before ``import symbl``.
    default = Configuration()
    default.host = base_url
    Configuration.set_default(default)
    add_sdk_to_path()
    try:
        import symbl  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError:
        print("the official Symbl SDK could not be installed (see baselines.py): not measured")
        return None
    return symbl


def _upload_with_sdk(base_url: str, audio: Path) -> int:
    symbl = import_sdk(base_url)
    if symbl is None:
        return SDK_MISSING_EXIT
    conversation = symbl.Audio.process_file(
        file_path=str(audio),
        credentials={"app_id": APP_ID, "app_secret": APP_SECRET},
        wait=False,
        parameters={"name": "rss benchmark"},
    )
    print(f"sdk: conversation {conversation.get_conversation_id()}", flush=True)
    say_own_peak()
    # Even with wait=False the SDK starts a job monitor thread that polls every 30 s and keeps
    # the process alive; the upload is over, so leave without waiting for it.
    os._exit(0)


def _child(kind: str, base_url: str, audio: str) -> int:
    if kind == "ours":
        _upload_with_ours(base_url, Path(audio))
        say_own_peak()
        return 0
    return _upload_with_sdk(base_url, Path(audio))


def _print_table(result: dict[str, Any]) -> None:
    sdk = "not installed" if result["sdk_mib"] is None else f"{result['sdk_mib']:.0f} MiB"
    ratio = "-" if result["sdk_to_file"] is None else f"{result['sdk_to_file']:.2f}x"
    rows = [
        ("file size", f"{result['file_mib']:.0f} MiB"),
        ("ours, peak RSS", f"{result['ours_mib']:.0f} MiB (target <= {OUR_TARGET_MIB} MiB)"),
        ("official SDK, peak RSS", sdk),
        ("SDK RSS / file size", ratio),
    ]
    for label, value in rows:
        print(f"{label:<24} {value}")
    print(json.dumps(result))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mib", type=int, default=2048, help="WAV size (default 2048)")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "URL", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(*args.child)
    offer_sdk_to_children()
    result = measure(args.size_mib * MIB)
    _print_table(result)
    return 0 if result["ours_mib"] <= OUR_TARGET_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
