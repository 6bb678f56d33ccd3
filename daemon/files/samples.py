"""Synthetic audio for the demo, the tests and the benchmarks: real headers, quick to make."""

from __future__ import annotations

import math
import struct
from pathlib import Path

_WAV_HEADER_SIZE = 44
# MPEG1 Layer III, 32 kbit/s, 32 kHz, no CRC, mono: a 144-byte frame of 1152 samples (36 ms).
_MP3_FRAME_HEADER = bytes((0xFF, 0xFB, 0x18, 0xC4))
_MP3_FRAME_LENGTH = 144
_MP3_FRAME_SECONDS = 1152 / 32000


def wav_header(data_size: int, sample_rate: int = 8000, channels: int = 1, bits: int = 16) -> bytes:
    """A canonical 44-byte PCM header for ``data_size`` bytes of samples."""
    block_align = channels * bits // 8
    return (
        b"RIFF"
        + struct.pack("<I", 36 + data_size)
        + b"WAVEfmt "
        + struct.pack(
            "<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block_align, block_align, bits
        )
        + b"data"
        + struct.pack("<I", data_size)
    )


def make_wav(
    seconds: float = 1.0, sample_rate: int = 8000, channels: int = 1, tone_hz: float = 440.0
) -> bytes:
    """A 16-bit PCM tone; every sample differs so that two durations never share a sha256."""
    frames = int(seconds * sample_rate)
    amplitude = 8000
    samples = bytearray()
    for index in range(frames):
        value = int(amplitude * math.sin(2 * math.pi * tone_hz * index / sample_rate))
        samples += struct.pack("<h", value) * channels
    return wav_header(len(samples), sample_rate, channels) + bytes(samples)


def make_mp3(seconds: float = 1.0, salt: int = 0) -> bytes:
    """Silent MPEG frames with an ID3 tag; ``salt`` makes otherwise equal files differ."""
    frames = max(1, round(seconds / _MP3_FRAME_SECONDS))
    tag_text = f"symbl-inbox sample {salt}".encode()
    frame_body = b"\x00" * (_MP3_FRAME_LENGTH - len(_MP3_FRAME_HEADER))
    id3 = b"ID3\x04\x00\x00" + _synchsafe(len(tag_text)) + tag_text
    return id3 + (_MP3_FRAME_HEADER + frame_body) * frames


def _synchsafe(value: int) -> bytes:
    return bytes(((value >> shift) & 0x7F) for shift in (21, 14, 7, 0))


def write_large_wav(path: Path, size: int, chunk: int = 1024 * 1024) -> None:
    """A WAV of exactly ``size`` bytes written in chunks (for memory benchmarks)."""
    data_size = size - _WAV_HEADER_SIZE
    with open(path, "wb") as handle:
        handle.write(wav_header(data_size))
        block = bytes(range(256)) * (chunk // 256)
        remaining = data_size
        while remaining > 0:
            piece = block[: min(chunk, remaining)]
            handle.write(piece)
            remaining -= len(piece)
