"""Benchmarks of what a recording costs before it goes up: a stereo downmix and a conversion.

Both run the whole daemon (emulator and daemon as processes): the file is moved into an inbox
whose profile says ``stereo: downmix`` or ``convert: true``; the daemon's ``audio_prepared``
log line says how long making the mono WAV took, and its peak RSS is read at the end. The
baselines do the same work with the tools in the same run, on the same file, once the page
cache holds it: ``sox -D X.wav Y.wav remix 1v0.5,2v0.5`` and ``ffmpeg -i X.wav -ac 1 Y.wav``
for the downmix, ``ffmpeg -i X.m4a -ac 1 Y.wav`` for the conversion (wall time, best of 2).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from client_rss import emulator
from harness import MIB, DaemonOptions, InboxSpec, running_daemon
from scenarios import JOB_SECONDS, SETTLE_SECONDS

from daemon.files.samples import wav_header

CHANNELS, RATE = 2, 44100
TOOL_ROUNDS = 2


def write_stereo_wav(path: Path, size: int) -> None:
    """A 16-bit stereo PCM WAV of ``size`` bytes: two tones, written in 4 MiB blocks."""
    import numpy as np

    frames = (size - 44) // (2 * CHANNELS)
    seconds_per_block = 23.777  # not a whole number of periods: blocks never line up
    block_frames = int(RATE * seconds_per_block) // 4 * 4
    t = np.arange(block_frames) / RATE
    left = (8000 * np.sin(2 * np.pi * 300 * t)).astype("<i2")
    right = (8000 * np.sin(2 * np.pi * 510 * t)).astype("<i2")
    block = np.column_stack((left, right)).tobytes()
    with open(path, "wb") as handle:
        handle.write(wav_header(frames * 2 * CHANNELS, RATE, CHANNELS))
        left_to_write = frames * 2 * CHANNELS
        while left_to_write > 0:
            piece = block[: min(len(block), left_to_write)]
            handle.write(piece)
            left_to_write -= len(piece)


def write_m4a(path: Path, seconds: int) -> None:
    """A stereo 44.1 kHz AAC recording of ``seconds`` seconds (two tones and some noise)."""
    sources = (
        f"-f lavfi -i sine=frequency=300:duration={seconds} "
        f"-f lavfi -i anoisesrc=duration={seconds}:amplitude=0.05:color=pink "
    )
    command = (
        f"ffmpeg -nostdin -loglevel error -y {sources} -filter_complex amerge=inputs=2 "
        f"-ar {RATE} -c:a aac -b:a 96k {path}"
    )
    subprocess.run(command, shell=True, check=True)


def _tool_seconds(command: list[str], output: Path) -> float:
    best = float("inf")
    for _ in range(TOOL_ROUNDS):
        started = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
        output.unlink()
    return best


def _warm(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(16 * MIB):
            pass


def _daemon_prepares(workdir: Path, source: Path, profile: dict[str, Any]) -> dict[str, Any]:
    """Move ``source`` into an inbox of a daemon with ``profile``; what its log and RSS say."""
    with emulator(JOB_SECONDS) as base_url:
        inbox = InboxSpec(workdir / "inbox", settle_seconds=SETTLE_SECONDS)
        options = DaemonOptions(profile=profile)
        with running_daemon(workdir / "daemon", base_url, [inbox], options) as daemon:
            idle = daemon.vm_hwm_mib()
            source.rename(inbox.path / source.name)
            size = (inbox.path / source.name).stat().st_size
            prepared = daemon.wait_for("audio_prepared", 1, 120.0 + size / (20 * MIB))[0]
            filed = daemon.wait_for("file_filed", 1, 120.0 + size / (20 * MIB))[0]
        if filed.fields.get("outcome") != "done":
            raise RuntimeError(f"the file was not done: {filed.fields}")
    return {
        "ours_seconds": float(prepared.fields["seconds"]),
        "bytes_in": prepared.fields["bytes_in"],
        "bytes_out": prepared.fields["bytes_out"],
        "ours_rss_mib": daemon.peak_rss_mib,
        "ours_idle_rss_mib": idle,
    }


def downmix(size: int) -> dict[str, Any]:
    """A stereo PCM WAV of ``size`` bytes mixed down by the daemon, by sox and by ffmpeg."""
    with tempfile.TemporaryDirectory(prefix="bench-downmix-") as folder:
        workdir = Path(folder)
        source = workdir / "staging" / "stereo.wav"
        source.parent.mkdir()
        write_stereo_wav(source, size)
        _warm(source)
        out = workdir / "staging" / "mono.wav"
        sox = _tool_seconds(["sox", "-D", str(source), str(out), "remix", "1v0.5,2v0.5"], out)
        ffmpeg = _tool_seconds(
            ["ffmpeg", "-nostdin", "-y", "-i", str(source), "-ac", "1", str(out)], out
        )
        _warm(source)
        ours = _daemon_prepares(workdir, source, {"stereo": "downmix"})
    mib = size / MIB
    return {
        **ours,
        "file_mib": mib,
        "ours_mib_per_s": mib / ours["ours_seconds"],
        "sox_mib_per_s": mib / sox,
        "ffmpeg_mib_per_s": mib / ffmpeg,
        "ratio_vs_sox": sox / ours["ours_seconds"],
        "ratio_vs_ffmpeg": ffmpeg / ours["ours_seconds"],
    }


def convert(seconds: int) -> dict[str, Any]:
    """A stereo AAC ``.m4a`` of ``seconds`` converted to mono WAV by the daemon and by ffmpeg."""
    with tempfile.TemporaryDirectory(prefix="bench-convert-") as folder:
        workdir = Path(folder)
        source = workdir / "staging" / "recording.m4a"
        source.parent.mkdir()
        made_at = time.monotonic()
        write_m4a(source, seconds)
        encode_seconds = time.monotonic() - made_at
        out = workdir / "staging" / "mono.wav"
        ffmpeg = _tool_seconds(
            ["ffmpeg", "-nostdin", "-y", "-i", str(source), "-ac", "1", str(out)], out
        )
        ours = _daemon_prepares(workdir, source, {"convert": True})
    return {
        **ours,
        "audio_seconds": seconds,
        "ffmpeg_seconds": ffmpeg,
        "ratio_vs_ffmpeg": ffmpeg / ours["ours_seconds"],
        "encode_seconds": round(encode_seconds, 1),
    }


def tools_present() -> bool:
    return all(shutil.which(tool) for tool in ("sox", "ffmpeg"))
