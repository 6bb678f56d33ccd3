"""Recordings made by a real tool: sox writes the WAVs the network tests send."""

from __future__ import annotations

import subprocess
from pathlib import Path


def sox_wav(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    """A mono 16-bit WAV of a 440 Hz tone, as a recorder would write it."""
    subprocess.run(
        ["sox", "-n", "-r", str(rate), "-c", "1", "-b", "16", str(path), "synth", str(seconds),
         "sine", "440"],
        check=True,
    )  # fmt: skip
    return path
