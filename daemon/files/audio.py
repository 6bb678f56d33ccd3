"""Recognise WAV and MP3 by their content, and read what their headers say about them.

``inspect_stream`` follows the formats instead of reading a fixed window: it walks a WAV's RIFF
chunks (any number and size, odd sizes with their pad byte, RF64/BW64 with ``ds64``) up to
``data``, and skips an MP3's ID3v2 tags whatever their size before looking for frames. It seeks
past what it does not need, so a cover picture of megabytes costs two small reads, and it never
reads a file whole. The same inspector serves the daemon (before upload), the emulator (on the
body it received) and ``submit``.

MPEG frames are read with mutagen, which resynchronises after junk on consecutive valid frame
headers and reads Xing/Info/VBRI headers for the true duration of VBR files.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

# "Length not known yet" values that writers leave in a WAV's data chunk when they stream it (to
# a pipe, or while recording): 0 by libsndfile (until it closes the file) and by many recorders,
# 0xFFFFFFFF by FFmpeg's wav muxer, 0x7FFFF000 by sox and espeak-ng, 0x7FFF0000 by GStreamer's
# wavenc, 0x80000000 by arecord. A data chunk with one of these is judged by the file's size.
WAV_DATA_PLACEHOLDERS = frozenset({0, 0xFFFFFFFF, 0x7FFFF000, 0x7FFF0000, 0x80000000})
# The same for the RIFF length: 8 is what libsndfile writes into a file it has just opened.
WAV_RIFF_PLACEHOLDERS = frozenset({0, 8, 0xFFFFFFFF})
# A WAV with more chunks than this before ``data`` is not a recording.
_MAX_CHUNKS = 4096

# WAVE format tags (RFC 2361 and mmreg.h) by the names FFmpeg gives their codecs.
WAV_CODECS = {
    0x0001: "pcm",
    0x0002: "adpcm_ms",
    0x0003: "float",
    0x0006: "alaw",
    0x0007: "mulaw",
    0x0011: "adpcm_ima_wav",
    0x0022: "truespeech",
    0x0031: "gsm_ms",
    0x0040: "g721",
    0x0045: "g726",
    0x0050: "mp2",
    0x0055: "mp3",
    0x0064: "g726",
    0x0065: "g722",
    0x00FF: "aac",
    0x0161: "wmav2",
    0x1610: "aac",
}
_EXTENSIBLE = 0xFFFE


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
    # "pcm", "float", "mulaw", "alaw", "adpcm_ms"... for a WAV; "mp3", "mp2", "mp1" for MPEG.
    codec: str = ""
    bits_per_sample: int = 0
    # WAV: where the samples start, how many bytes of them the file holds, one frame's size.
    data_offset: int = 0
    data_size: int = 0
    block_align: int = 0
    # True when the WAV header holds a streaming writer's "unknown length" values.
    streamed: bool = False


def not_audio() -> AudioProblem:
    return AudioProblem(
        "not_audio", "the content is neither WAV nor MP3 (the API accepts only these two)"
    )


def inspect_stream(stream: BinaryIO, size: int) -> AudioInfo:
    """Check the audio in ``stream`` (seekable, ``size`` bytes) and read what its header says.

    Reads and seeks only as far as the format needs. Raises ``AudioProblem`` for what the API
    would refuse; ``OSError`` from the stream passes through for the caller to judge.
    """
    if size <= 0:
        raise AudioProblem("empty_file", "the file is empty")
    stream.seek(0)
    head = stream.read(12)
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return _inspect_wav(stream, size, head)
    return _inspect_mp3(stream, size)


def inspect_file(path: Path) -> AudioInfo:
    """Open ``path`` and check it; OSError passes through for the caller to judge."""
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        return inspect_stream(handle, size)


def inspect_bytes(data: bytes, size: int | None = None) -> AudioInfo:
    """``inspect_stream`` over bytes in memory (tests, small bodies)."""
    import io

    return inspect_stream(io.BytesIO(data), len(data) if size is None else size)


# ---------------------------------------------------------------- WAV


@dataclass
class _Fmt:
    tag: int
    channels: int
    sample_rate: int
    byte_rate: int
    block_align: int
    bits: int


def _read_at(stream: BinaryIO, offset: int, count: int) -> bytes:
    stream.seek(offset)
    return stream.read(count)


def _fourcc_like(data: bytes) -> bool:
    return len(data) == 4 and all(32 <= byte < 127 for byte in data)


def _inspect_wav(stream: BinaryIO, size: int, head: bytes) -> AudioInfo:
    riff_size = struct.unpack_from("<I", head, 4)[0]
    fmt: _Fmt | None = None
    ds64: tuple[int, int, int] | None = None
    fact_samples: int | None = None
    offset = 12
    for _ in range(_MAX_CHUNKS):
        header = _read_at(stream, offset, 8)
        if len(header) < 8:
            where = "before its 'fmt ' chunk" if fmt is None else "before its 'data' chunk"
            raise AudioProblem("truncated_audio", f"the WAV file ends {where}")
        chunk_id, chunk_size = header[:4], struct.unpack_from("<I", header, 4)[0]
        body = offset + 8
        if chunk_id == b"data":
            if fmt is None:
                raise AudioProblem("not_audio", "the WAV file has no 'fmt ' chunk before its data")
            return _wav_info(fmt, size, body, chunk_size, riff_size, ds64, fact_samples)
        if chunk_id == b"ds64" and chunk_size >= 24:
            ds64 = struct.unpack("<QQQ", _read_at(stream, body, 24).ljust(24, b"\0"))
        elif chunk_id == b"fmt ":
            fmt = _parse_fmt(_read_at(stream, body, min(chunk_size, 40)))
        elif chunk_id == b"fact" and chunk_size >= 4:
            raw = _read_at(stream, body, 4)
            fact_samples = struct.unpack("<I", raw)[0] if len(raw) == 4 else None
        offset = _next_chunk(stream, body, chunk_size)
    raise AudioProblem("not_audio", f"the WAV file has more than {_MAX_CHUNKS} chunks before data")


def _next_chunk(stream: BinaryIO, body: int, chunk_size: int) -> int:
    """Where the next chunk starts: after the pad byte of an odd-sized chunk, unless the
    writer left the pad out (some do) and the next chunk's id sits right after the body."""
    following = body + chunk_size
    if chunk_size & 1:
        padded = _read_at(stream, following + 1, 4)
        if not _fourcc_like(padded) and _fourcc_like(_read_at(stream, following, 4)):
            return following
        return following + 1
    return following


def _parse_fmt(body: bytes) -> _Fmt:
    if len(body) < 16:
        raise AudioProblem("truncated_audio", "the WAV header has no complete 'fmt ' chunk")
    tag, channels, rate, byte_rate, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _EXTENSIBLE and len(body) >= 40:
        tag = struct.unpack_from("<H", body, 24)[0]  # the sub-format GUID starts with the tag
    if not channels or not rate:
        raise AudioProblem(
            "not_audio", f"the WAV 'fmt ' chunk says {channels} channels at {rate} Hz"
        )
    return _Fmt(tag, channels, rate, byte_rate, block_align, bits)


def _wav_info(
    fmt: _Fmt,
    size: int,
    data_offset: int,
    data_field: int,
    riff_size: int,
    ds64: tuple[int, int, int] | None,
    fact_samples: int | None,
) -> AudioInfo:
    declared: int | None = data_field
    if data_field == 0xFFFFFFFF and ds64 is not None:
        declared = ds64[1] or None  # RF64: the real size is in ds64; 0 while streaming
    elif data_field in WAV_DATA_PLACEHOLDERS:
        declared = None
    available = max(0, size - data_offset)
    streamed = declared is None
    if declared is not None and declared > available:
        raise AudioProblem(
            "truncated_audio",
            f"the WAV header promises {data_offset + declared} bytes but the file has {size}: "
            f"its data chunk stops {declared - available} bytes short",
        )
    data_size = available if declared is None else declared
    expected = None if declared is None else data_offset + declared + (declared & 1)
    if expected is not None and riff_size not in WAV_RIFF_PLACEHOLDERS and ds64 is None:
        expected = max(expected, min(riff_size + 8, size))  # chunks after data, where present
    codec = WAV_CODECS.get(fmt.tag, f"0x{fmt.tag:04x}")
    duration = _wav_duration(fmt, codec, data_size, fact_samples if not streamed else None)
    return AudioInfo(
        AudioFormat.WAV,
        fmt.channels,
        fmt.sample_rate,
        duration,
        expected,
        codec=codec,
        bits_per_sample=fmt.bits,
        data_offset=data_offset,
        data_size=data_size,
        block_align=fmt.block_align,
        streamed=streamed,
    )


def _wav_duration(fmt: _Fmt, codec: str, data_size: int, fact_samples: int | None) -> float | None:
    if codec in ("pcm", "float", "alaw", "mulaw") and fmt.block_align:
        return (data_size // fmt.block_align) / fmt.sample_rate
    if fact_samples:
        return fact_samples / fmt.sample_rate
    return data_size / fmt.byte_rate if fmt.byte_rate else None


# ---------------------------------------------------------------- MP3

# MPEG audio: (family, layer) -> bitrates in kbit/s; version bits -> sample rates in Hz.
_BITRATES = {
    (1, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (1, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (1, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (2, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (2, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class _Frame:
    layer: int
    bitrate_kbps: int
    sample_rate: int
    channels: int
    length: int
    samples: int


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
        length, samples = (12 * bitrate * 1000 // sample_rate + padding) * 4, 384
    else:
        per_frame = 144 if (layer == 2 or family == 1) else 72
        length = per_frame * bitrate * 1000 // sample_rate + padding
        samples = 1152 if (layer == 2 or family == 1) else 576
    channels = 1 if (b3 >> 6) == 0b11 else 2
    return _Frame(layer, bitrate, sample_rate, channels, length, samples)


def _id3v2_end(stream: BinaryIO, size: int) -> int:
    """Where the ID3v2 tags at the start end (several may follow each other)."""
    offset = 0
    while True:
        header = _read_at(stream, offset, 10)
        if len(header) < 10 or not header.startswith(b"ID3"):
            if header.startswith(b"ID3") and offset + len(header) >= size:
                raise AudioProblem("truncated_audio", "the MP3 file ends inside its ID3 tag")
            return offset
        if header[3] not in (2, 3, 4) or any(byte & 0x80 for byte in header[6:10]):
            return offset  # not an ID3v2 header after all: let the frame search judge it
        body = 0
        for byte in header[6:10]:
            body = (body << 7) | byte
        footer = 10 if header[3] == 4 and header[5] & 0x10 else 0
        end = offset + 10 + body + footer
        if end > size:
            raise AudioProblem(
                "truncated_audio",
                f"the MP3 file ends inside its ID3 tag (the tag says {end} bytes, "
                f"the file has {size})",
            )
        offset = end


def _trailing_tags(stream: BinaryIO, size: int, start: int) -> int:
    """Where the audio ends: before an ID3v1 tag, Lyrics3v2, an APE tag or an appended ID3v2."""
    end = size
    for _ in range(4):
        if end - 128 >= start and _read_at(stream, end - 128, 3) == b"TAG":
            end -= 128
            if end - 227 >= start and _read_at(stream, end - 227, 4) == b"TAG+":
                end -= 227
            continue
        tail = _read_at(stream, end - 32, 32) if end - 32 >= start else b""
        if tail.startswith(b"APETAGEX"):
            tag_size, flags = struct.unpack_from("<II", tail, 12)
            whole = tag_size + (32 if flags & 0x80000000 else 0)
            if whole <= end - start:
                end -= whole
                continue
        lyrics = _read_at(stream, end - 15, 15) if end - 15 >= start else b""
        if lyrics.endswith(b"LYRICS200") and lyrics[:6].isdigit():
            whole = int(lyrics[:6]) + 15
            if whole <= end - start:
                end -= whole
                continue
        footer = _read_at(stream, end - 10, 10) if end - 10 >= start else b""
        if footer.startswith(b"3DI") and not any(byte & 0x80 for byte in footer[6:10]):
            body = 0
            for byte in footer[6:10]:
                body = (body << 7) | byte
            if body + 20 <= end - start:
                end -= body + 20
                continue
        break
    return end


class RangeView:
    """A read-only, seekable view of ``size`` bytes (``seek``, ``tell``, ``read``: what the
    inspector and mutagen use); a subclass says in ``_range`` what the bytes are."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._position = 0

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._position, self._size)[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def read(self, count: int = -1) -> bytes:
        start = self._position
        end = self._size if count < 0 else min(self._size, start + count)
        if start >= end:
            return b""
        data = self._range(start, end)
        self._position += len(data)
        return data

    def _range(self, start: int, end: int) -> bytes:
        raise NotImplementedError


class _Window(RangeView):
    """``[0, end)`` of a stream, for mutagen: the tags at the end are not audio."""

    def __init__(self, stream: BinaryIO, end: int) -> None:
        super().__init__(end)
        self._stream = stream

    def _range(self, start: int, end: int) -> bytes:
        return _read_at(self._stream, start, end - start)


# Containers whose bytes can pass for a couple of MPEG frames: never MP3, whatever follows.
_OTHER_CONTAINERS = (
    b"fLaC", b"OggS", b"FORM", b"caff", b"#!AMR", b"\x1aE\xdf\xa3", b".snd",
    b"wvpk", b"MAC ", b"ADIF", b"\x30\x26\xb2\x75", b"%PDF", b"PK\x03\x04",
)  # fmt: skip


def _frames_chain(stream: BinaryIO, offset: int, end: int, wanted: int = 6) -> bool:
    """Whether ``wanted`` frames of one MPEG version, layer and rate follow each other from
    ``offset`` (or as many as there is room for): what a doubtful sync must show."""
    first: bytes | None = None
    for count in range(wanted):
        header = _read_at(stream, offset, 4)
        frame = _mpeg_frame(header, 0)
        if frame is None:
            return count >= 2 and end - offset < 4
        shape = bytes((header[1] & 0xFE, header[2] & 0x0C))
        if first is not None and shape != first:
            return False
        first = shape
        offset += frame.length
        if offset >= end:
            return count >= 1
    return True


def _inspect_mp3(stream: BinaryIO, size: int) -> AudioInfo:
    from mutagen import MutagenError
    from mutagen.mp3 import HeaderNotFoundError, MPEGInfo

    magic = _read_at(stream, 0, 12)
    if magic.startswith(_OTHER_CONTAINERS) or magic[4:8] == b"ftyp":
        raise not_audio()  # MP4/M4A/3GP/MOV start with an ftyp box
    start = _id3v2_end(stream, size)
    end = _trailing_tags(stream, size, start)
    if end <= start:
        raise AudioProblem(
            "truncated_audio", "the MP3 file ends after its ID3 tag, before any audio frame"
        )
    try:
        info = MPEGInfo(_Window(stream, end), offset=start)
    except HeaderNotFoundError:
        single = _single_frame(stream, start, end)
        if single is None:
            raise not_audio() from None
        return single
    except MutagenError as exc:
        # mutagen wraps the stream's own OSError; that one is the caller's to judge.
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, OSError):
            raise cause from None
        raise not_audio() from None
    if info.sketchy and not _frames_chain(stream, int(info.frame_offset), end):
        raise not_audio()
    duration = float(info.length) if info.length and info.length > 0 else None
    return AudioInfo(
        AudioFormat.MP3,
        int(info.channels),
        int(info.sample_rate),
        duration,
        codec=f"mp{int(info.layer)}",
    )


def _single_frame(stream: BinaryIO, start: int, end: int) -> AudioInfo | None:
    """A file of one MPEG frame (too short for mutagen's two-frame rule), exactly filled."""
    frame = _mpeg_frame(_read_at(stream, start, 4), 0)
    if frame is None or frame.length != end - start:
        return None
    duration = frame.samples / frame.sample_rate
    codec = f"mp{frame.layer}"
    return AudioInfo(AudioFormat.MP3, frame.channels, frame.sample_rate, duration, codec=codec)
