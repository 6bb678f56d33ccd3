"""Recognise WAV and MP3 by their content, and read what the header says about them.

Only the first ``HEAD_BYTES`` of a file are read: enough for the RIFF chunks before ``data`` or
an ID3v2 tag plus the first MPEG frame header. The same parser serves the daemon (before upload),
the emulator (on the first chunk of a streamed body) and the stability gate (the RIFF length).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

HEAD_BYTES = 64 * 1024
# Recorders that stream a WAV write these as the RIFF length until they close the file.
_UNKNOWN_RIFF_SIZES = (0, 0xFFFFFFFF)


class AudioFormat(StrEnum):
    WAV = "wav"
    MP3 = "mp3"

    @property
    def content_type(self) -> str:
        return "audio/wav" if self is AudioFormat.WAV else "audio/mpeg"


class AudioProblem(Exception):
    """The content is not something the API accepts; ``reason`` is machine-readable."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class AudioInfo:
    format: AudioFormat
    channels: int
    sample_rate: int
    duration_seconds: float | None
    # The total file size the header promises (WAV), or None where it cannot tell.
    expected_size: int | None = None


def sniff_format(head: bytes) -> AudioFormat | None:
    """WAV, MP3 or neither, judged by the bytes alone."""
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return AudioFormat.WAV
    if head.startswith(b"ID3") or _mpeg_frame(head, 0) is not None:
        return AudioFormat.MP3
    return None


def inspect_bytes(head: bytes, total_size: int | None) -> AudioInfo:
    """Parse the start of a file of ``total_size`` bytes (None: size not known yet)."""
    if total_size == 0 or not head:
        raise AudioProblem("empty_file", "the file is empty")
    kind = sniff_format(head)
    if kind is AudioFormat.WAV:
        return _inspect_wav(head, total_size)
    if kind is AudioFormat.MP3:
        return _inspect_mp3(head, total_size)
    raise AudioProblem(
        "not_audio", "the content is neither WAV nor MP3 (the API accepts only these two)"
    )


def inspect_file(path: Path) -> AudioInfo:
    """Read the head of ``path`` and check it; OSError passes through for the caller to judge."""
    with open(path, "rb") as handle:
        head = handle.read(HEAD_BYTES)
        size = handle.seek(0, 2)
    return inspect_bytes(head, size)


def declared_wav_size(head: bytes) -> int | None:
    """The size a WAV's RIFF header promises, or None (not a WAV, or a streaming header)."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    riff_size = struct.unpack_from("<I", head, 4)[0]
    return None if riff_size in _UNKNOWN_RIFF_SIZES else riff_size + 8


def _inspect_wav(head: bytes, total_size: int | None) -> AudioInfo:
    expected = declared_wav_size(head)
    channels = sample_rate = byte_rate = 0
    data_offset = data_size = None
    offset = 12
    while offset + 8 <= len(head):
        chunk_id = head[offset : offset + 4]
        chunk_size = struct.unpack_from("<I", head, offset + 4)[0]
        body = offset + 8
        if chunk_id == b"fmt " and body + 16 <= len(head):
            _, channels, sample_rate, byte_rate = struct.unpack_from("<HHII", head, body)
        elif chunk_id == b"data":
            data_offset, data_size = body, chunk_size
            break
        offset = body + chunk_size + (chunk_size & 1)
    if not channels or not sample_rate:
        raise AudioProblem("truncated_audio", "the WAV header has no complete 'fmt ' chunk")
    if data_offset is None or data_size is None:
        raise AudioProblem("truncated_audio", "the WAV file has no 'data' chunk")
    if total_size is not None:
        _check_wav_length(total_size, expected, data_offset, data_size)
    streamed = data_size in _UNKNOWN_RIFF_SIZES
    audio_bytes = (total_size - data_offset) if (streamed and total_size) else data_size
    duration = audio_bytes / byte_rate if byte_rate and not (streamed and not total_size) else None
    return AudioInfo(AudioFormat.WAV, channels, sample_rate, duration, expected)


def _check_wav_length(
    total_size: int, expected: int | None, data_offset: int, data_size: int
) -> None:
    if expected is not None and total_size < expected:
        raise AudioProblem(
            "truncated_audio",
            f"the WAV header promises {expected} bytes but the file has {total_size}",
        )
    if data_size not in _UNKNOWN_RIFF_SIZES and data_offset + data_size > total_size:
        raise AudioProblem(
            "truncated_audio",
            f"the WAV data chunk promises {data_size} bytes but only "
            f"{total_size - data_offset} follow the header",
        )


# MPEG audio: version bits -> (name index), bitrate tables in kbit/s, sample rates in Hz.
_BITRATES = {
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG1 Layer III
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),  # MPEG1 Layer II
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (2, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG2/2.5 L II/III
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class _Frame:
    bitrate_kbps: int
    sample_rate: int
    channels: int
    length: int


def _mpeg_frame(head: bytes, offset: int) -> _Frame | None:
    if offset + 4 > len(head):
        return None
    b1, b2, b3 = head[offset + 1], head[offset + 2], head[offset + 3]
    if head[offset] != 0xFF or (b1 & 0xE0) != 0xE0:
        return None
    version_bits, layer_bits = (b1 >> 3) & 0b11, (b1 >> 1) & 0b11
    bitrate_index, rate_index = b2 >> 4, (b2 >> 2) & 0b11
    if version_bits == 1 or layer_bits == 0 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    layer = 4 - layer_bits
    family = 1 if version_bits == 3 else 2
    bitrate = _BITRATES[(family, layer)][bitrate_index]
    sample_rate = _SAMPLE_RATES[version_bits][rate_index]
    padding = (b2 >> 1) & 1
    if layer == 1:
        length = (12 * bitrate * 1000 // sample_rate + padding) * 4
    else:
        per_frame = 144 if (layer == 2 or family == 1) else 72
        length = per_frame * bitrate * 1000 // sample_rate + padding
    channels = 1 if (b3 >> 6) == 0b11 else 2
    return _Frame(bitrate, sample_rate, channels, length)


def _id3_size(head: bytes) -> int:
    if not head.startswith(b"ID3") or len(head) < 10:
        return 0
    size = 0
    for byte in head[6:10]:
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def _inspect_mp3(head: bytes, total_size: int | None) -> AudioInfo:
    offset = _id3_size(head)
    frame = _mpeg_frame(head, offset)
    if frame is None and offset >= len(head):
        raise AudioProblem("truncated_audio", "the MP3 file ends inside its ID3 tag")
    if frame is None:
        raise AudioProblem("not_audio", "no MPEG audio frame follows the ID3 tag")
    if total_size is not None and total_size < offset + frame.length:
        raise AudioProblem("truncated_audio", "the MP3 file ends inside its first frame")
    duration = None
    if total_size is not None and frame.bitrate_kbps:
        duration = (total_size - offset) * 8 / (frame.bitrate_kbps * 1000)
    return AudioInfo(AudioFormat.MP3, frame.channels, frame.sample_rate, duration)


def inspect_stream(stream: BinaryIO, size: int) -> AudioInfo:
    """Read the head of an open, seekable file of ``size`` bytes and check it.

    The daemon hands in a file object made from a descriptor it has checked, so what is judged
    is what will be uploaded; OSError passes through for the caller to judge.
    """
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    return inspect_bytes(head, size)
