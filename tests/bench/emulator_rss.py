"""Benchmark: the emulator's peak RSS while it receives one streamed 2 GiB WAV upload.

Usage: ``python tests/bench/emulator_rss.py [--gib 2.0] [--limit-mib 100]``

``symbl-inbox emulator`` runs as a child process on a free loopback port; this process streams
a generated WAV of the asked size to ``POST /v1/process/audio`` (no file on disk, exact
Content-Length) and then reads the child's ``VmHWM`` (peak resident set) from ``/proc``. It
checks that the emulator hashed and counted every byte, prints one JSON line, and exits 1 when
the peak reaches the limit. A measurement, not a timed test: pytest does not collect it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from daemon.files.samples import wav_header

CHUNK = 1024 * 1024
START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wav_stream(size: int, digest: hashlib._Hash) -> Iterator[bytes]:
    """A WAV of exactly ``size`` bytes, made on the fly and hashed as it goes out."""
    header = wav_header(size - 44)
    digest.update(header)
    yield header
    block = bytes(range(256)) * (CHUNK // 256)
    remaining = size - len(header)
    while remaining > 0:
        piece = block[: min(CHUNK, remaining)]
        digest.update(piece)
        remaining -= len(piece)
        yield piece


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def wait_until_up(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            httpx.get(f"{base_url}/_emulator/settings", timeout=1)
            return
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the emulator did not start") from None
            time.sleep(0.05)


def measure(size: int) -> dict[str, object]:
    port = free_port()
    command = [sys.executable, "-m", "daemon", "emulator", "--port", str(port)]
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(base_url, process)
        idle_mib = peak_rss_mib(process.pid)
        with httpx.Client(base_url=base_url, timeout=600.0, trust_env=False) as client:
            grant = {"type": "application", "appId": "bench", "appSecret": "bench-secret"}
            token = client.post("/oauth2/token:generate", json=grant).json()["accessToken"]
            digest = hashlib.sha256()
            started = time.monotonic()
            response = client.post(
                "/v1/process/audio",
                content=wav_stream(size, digest),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "audio/wav",
                    "Content-Length": str(size),
                },
            )
            seconds = time.monotonic() - started
            response.raise_for_status()
            record = client.get("/_emulator/submissions").json()[-1]
        peak_mib = peak_rss_mib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    if record["sha256"] != digest.hexdigest() or record["size"] != size:
        raise RuntimeError("the emulator did not receive the body intact")
    return {
        "bytes": size,
        "upload_seconds": round(seconds, 2),
        "mib_per_second": round(size / CHUNK / seconds, 1),
        "emulator_idle_rss_mib": round(idle_mib, 1),
        "emulator_peak_rss_mib": round(peak_mib, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=2.0, help="upload size in GiB")
    parser.add_argument("--limit-mib", type=float, default=100.0, help="peak RSS goal")
    args = parser.parse_args()
    result = measure(int(args.gib * 1024**3))
    within = float(str(result["emulator_peak_rss_mib"])) < args.limit_mib
    print(json.dumps({**result, "limit_mib": args.limit_mib, "within_limit": within}))
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())
