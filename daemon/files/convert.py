"""Make the mono WAV that goes up instead of a dropped file: a downmix or a conversion.

Everything streams in bounded memory from an open binary stream of the dropped file into a file
of our own in ``<state_dir>/convert/`` (never into an inbox), which is removed after the upload.

- PCM (8 to 32 bit), float, µ-law and A-law WAVs are mixed down with numpy, block by block: the
  channels are averaged (µ-law and A-law are expanded to 16-bit PCM first).
- Everything else (MP3, ADPCM or GSM WAVs, ``.m4a``, ``.flac``...) is decoded with PyAV, the
  ``convert`` extra, which brings FFmpeg in its wheels (``daemon.files.decode``); the channels'
  mean is written as 16-bit PCM at the source's sample rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import struct
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from daemon.files.audio import AudioFormat, AudioInfo, AudioProblem, inspect_stream
from daemon.files.decode import GraphUnusable, frame_blocks, graph_blocks
from daemon.files.recordings import EXTRA_HINT, can_mix_natively, describe
from daemon.fsboundary import Checked
from daemon.logs import get_logger
from daemon.symbl.client import Submission

log = get_logger("symbl_inbox.convert")

WORK_FOLDER = "convert"
# Bytes read per block of a native downmix (a few arrays of about that size live at once).
_BLOCK_BYTES = 1024 * 1024
_RIFF_LIMIT = 0xFFFFFFFF - 64
# The FFmpeg demuxers that read a single file of audio, for every suffix a conversion takes.
# FFmpeg also reads lists of other files (concat, HLS, DASH...); the names in one would be
# opened with the daemon's rights, not the dropper's, so those are never offered.
AUDIO_DEMUXERS = (
    "mov", "mp3", "wav", "w64", "flac", "ogg", "aac", "loas", "asf", "amr", "amrnb", "amrwb",
    "aiff", "caf", "matroska", "wv", "ape", "ac3", "eac3", "au", "gsm", "dss", "voc",
)  # fmt: skip
_OPEN_OPTIONS = {"format_whitelist": ",".join(AUDIO_DEMUXERS)}


class Stopped(Exception):
    """The daemon is stopping: the half-made file is removed, the upload happens next run."""


@dataclass(frozen=True)
class Produced:
    path: Path
    size: int
    # What was dropped (for conversions: as PyAV saw it) and what is sent.
    dropped: dict[str, Any]
    sent: dict[str, Any]
    # The dropped file's sha256 (the record's ``sha256`` is always the original's).
    source_sha256: str


# ---------------------------------------------------------------- WAV writing


def _wav_header(data_size: int, channels: int, rate: int, bits: int, tag: int) -> bytes:
    block_align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block_align, block_align, bits)
    if data_size + 36 <= _RIFF_LIMIT:
        return (
            b"RIFF"
            + struct.pack("<I", 36 + data_size)
            + b"WAVEfmt "
            + struct.pack("<I", 16)
            + fmt
            + b"data"
            + struct.pack("<I", data_size)
        )
    # Larger than RIFF can say: RF64, with the real sizes in ds64 (EBU Tech 3306).
    frames = data_size // block_align
    ds64 = struct.pack("<QQQI", 72 + data_size - 8, data_size, frames, 0)
    return (
        b"RF64\xff\xff\xff\xffWAVEds64"
        + struct.pack("<I", len(ds64))
        + ds64
        + b"fmt "
        + struct.pack("<I", 16)
        + fmt
        + b"data\xff\xff\xff\xff"
    )


# ---------------------------------------------------------------- native downmix


def _ulaw_table() -> Any:
    import numpy as np

    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (codes >> 4) & 0x07
    magnitude = ((((codes & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return np.where(codes & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> Any:
    import numpy as np

    codes = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return np.where(codes & 0x80, magnitude, -magnitude).astype(np.int16)


def _mixer(info: AudioInfo) -> tuple[Callable[[bytes], bytes], int, int]:
    """A function from a block of interleaved frames to mono frames, and the output's bits
    and format tag."""
    import numpy as np

    channels = info.channels
    width = info.block_align // channels
    codec = info.codec

    def average(columns: Any, wide: Any) -> Any:
        total = columns[:, 0].astype(wide)
        for index in range(1, channels):
            total += columns[:, index]
        return total

    if codec in ("mulaw", "alaw") and width == 1:
        table = _ulaw_table() if codec == "mulaw" else _alaw_table()

        def companded(block: bytes) -> bytes:
            samples = table[np.frombuffer(block, np.uint8)].reshape(-1, channels)
            mixed: bytes = (average(samples, np.int32) // channels).astype("<i2").tobytes()
            return mixed

        return companded, 16, 1
    if codec == "float" and width in (4, 8):
        dtype = "<f4" if width == 4 else "<f8"

        def floats(block: bytes) -> bytes:
            samples = np.frombuffer(block, dtype).reshape(-1, channels)
            mixed: bytes = (average(samples, np.float64) / channels).astype(dtype).tobytes()
            return mixed

        return floats, width * 8, 3
    if codec == "pcm" and width in (1, 2, 4):
        dtype = {1: "u1", 2: "<i2", 4: "<i4"}[width]

        def integers(block: bytes) -> bytes:
            samples = np.frombuffer(block, dtype).reshape(-1, channels)
            wide = np.int64 if width == 4 else np.int32  # room for the sum of the channels
            mixed: bytes = (average(samples, wide) // channels).astype(dtype).tobytes()
            return mixed

        return integers, width * 8, 1
    if codec == "pcm" and width == 3:

        def packed24(block: bytes) -> bytes:
            raw = np.frombuffer(block, np.uint8).reshape(-1, channels, 3).astype(np.int32)
            samples = raw[:, :, 0] | (raw[:, :, 1] << 8) | (raw[:, :, 2] << 16)
            samples = (samples << 8) >> 8  # sign-extend the 24-bit values
            mixed = average(samples, np.int32) // channels
            out = np.empty((len(mixed), 3), np.uint8)
            out[:, 0], out[:, 1], out[:, 2] = (
                mixed & 0xFF,
                (mixed >> 8) & 0xFF,
                (mixed >> 16) & 0xFF,
            )
            return out.tobytes()

        return packed24, 24, 1
    raise AudioProblem(
        "stereo_audio", f"a {codec} WAV with {width}-byte samples cannot be mixed down natively"
    )


def downmix_wav(
    source: BinaryIO,
    info: AudioInfo,
    target: Path,
    stop: threading.Event | None = None,
    digest: Any = None,
) -> AudioInfo:
    """Average the channels of a PCM, float, µ-law or A-law WAV into a mono WAV at ``target``.

    With ``digest`` (a hashlib object), the whole source is hashed on the way: its header, the
    samples as they are mixed, and whatever follows them.
    """
    mix, bits, tag = _mixer(info)
    frames = info.data_size // info.block_align
    out_size = frames * bits // 8
    source.seek(0)
    header = source.read(info.data_offset)
    if digest is not None:
        digest.update(header)
    with open(target, "wb") as out:
        out.write(_wav_header(out_size, 1, info.sample_rate, bits, tag))
        left = frames
        while left:
            if stop is not None and stop.is_set():
                raise Stopped
            count = min(left, max(1, _BLOCK_BYTES // info.block_align))
            block = source.read(count * info.block_align)
            if len(block) < count * info.block_align:
                raise AudioProblem("truncated_audio", "the WAV got shorter while it was mixed down")
            if digest is not None:
                digest.update(block)
            out.write(mix(block))
            left -= count
    if digest is not None:
        _hash_rest(source, digest)
    duration = frames / info.sample_rate
    return AudioInfo(
        AudioFormat.WAV, 1, info.sample_rate, duration, codec="pcm" if tag == 1 else "float"
    )


# ---------------------------------------------------------------- PyAV


def transcode(
    source: BinaryIO, target: Path, stop: threading.Event | None = None
) -> tuple[dict[str, Any], AudioInfo]:
    """Decode any audio FFmpeg reads into a mono 16-bit WAV at ``target`` (its sample rate kept).

    Returns what the source is (container, codec, channels, rate, duration) and what was made.
    """
    try:
        import av
    except ImportError as exc:  # the plan checks first; this is a race with an uninstall
        raise AudioProblem("unsupported_format", f"converting needs {EXTRA_HINT}") from exc
    try:
        container = av.open(source, mode="r", container_options=_OPEN_OPTIONS)
    except (av.FFmpegError, ValueError) as exc:
        raise AudioProblem("not_audio", _unreadable(exc)) from None
    with container:
        if not container.streams.audio:
            raise AudioProblem("not_audio", "the file holds no audio stream")
        stream = container.streams.audio[0]
        rate = int(stream.sample_rate or 0)
        channels = int(stream.channels or 0)
        if not rate:
            raise AudioProblem("not_audio", "the audio stream has no sample rate")
        declared = _container_seconds(container, stream)
        dropped = {
            "format": container.format.name.split(",")[0],
            "codec": stream.codec_context.name,
            "channels": channels,
            "sample_rate": rate,
            "duration_seconds": declared,
        }
        samples = _decode_to_wav(source, container, stream, declared, target, stop)
    return dropped, AudioInfo(AudioFormat.WAV, 1, rate, samples / rate, codec="pcm")


def _unreadable(exc: Exception) -> str:
    if getattr(exc, "errno", None) == errno.EINVAL:  # what FFmpeg says of a demuxer not offered
        return (
            "FFmpeg reads it as something other than one audio file (a list of other files, "
            "a playlist...); only audio files are converted"
        )
    return f"FFmpeg cannot read it as audio: {exc}"


def _container_seconds(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1_000_000
    else:
        return None
    return round(seconds, 3)


def _decode_to_wav(
    source: BinaryIO,
    container: Any,
    stream: Any,
    declared: float | None,
    target: Path,
    stop: threading.Event | None,
) -> int:
    """Write the stream as a mono 16-bit WAV at ``target``; its sample count.

    FFmpeg's own graph does it in C when it can (``daemon.files.decode``): a one-hour AAC
    file converts about as fast as ``ffmpeg -i X.m4a -ac 1 X.wav`` (README, Benchmarks). Otherwise
    the frames go through Python, which follows changes of channels and rate mid-stream and
    tells a read error from the end of the file.
    """
    rate = int(stream.sample_rate)
    try:
        fd = source.fileno()
    except (AttributeError, OSError, ValueError):  # a stream of bytes with no descriptor
        fd = -1
    if fd >= 0:
        blocks = graph_blocks(
            fd,
            demuxers=_OPEN_OPTIONS["format_whitelist"],
            demuxer=container.format.name.split(",")[0],
            stream_index=stream.index,
            layout=stream.layout.name,
            channels=int(stream.channels or 0),
            rate=rate,
        )
        try:
            samples = _write_wav(target, rate, blocks, stop)
        except GraphUnusable as exc:
            log.debug("conversion_frame_by_frame", reason=str(exc))
        except AudioProblem as problem:
            if problem.reason != "not_audio":  # too large: the frames would say the same
                raise
            # No samples: a read error at the start looks the same to the graph.
            log.debug("conversion_frame_by_frame", reason=problem.message)
        else:
            if declared is None or samples / rate >= declared - max(1.0, declared / 100):
                return samples
            # The graph takes a read error for the end: the frames say which it was.
            log.debug("conversion_frame_by_frame", reason="shorter than the container says")
    return _write_wav(target, rate, frame_blocks(container, stream, rate), stop)


def _write_wav(
    target: Path, rate: int, blocks: Iterator[memoryview], stop: threading.Event | None
) -> int:
    """A mono 16-bit WAV at ``target`` from blocks of its samples; the sample count."""
    samples = 0
    with open(target, "wb") as out:
        out.write(_wav_header(0, 1, rate, 16, 1))
        for block in blocks:
            if stop is not None and stop.is_set():
                raise Stopped
            out.write(block)
            samples += block.nbytes // 2
        if not samples:
            raise AudioProblem("not_audio", "the audio stream holds no samples")
        if samples * 2 + 36 > _RIFF_LIMIT:
            raise AudioProblem("too_large", "the converted audio is larger than a WAV can hold")
        out.seek(0)
        out.write(_wav_header(samples * 2, 1, rate, 16, 1))
    return samples


# ---------------------------------------------------------------- the upload's side


def _hash_rest(source: BinaryIO, digest: Any) -> None:
    for chunk in iter(lambda: source.read(_BLOCK_BYTES), b""):
        digest.update(chunk)


def produce(
    action: str, source: BinaryIO, size: int, target: Path, stop: threading.Event | None = None
) -> Produced:
    """Carry out a plan's ``downmix`` or ``convert`` from ``source`` into ``target``.

    The source's sha256 comes along (``Produced.source_sha256``): a native downmix hashes what
    it reads anyway; a decoded source (compressed, so small beside its WAV) is read once more.
    """
    dropped: dict[str, Any]
    digest = hashlib.sha256()
    try:
        if action == "downmix":
            info = inspect_stream(source, size)
            dropped = describe(info, size)
            decoded = not (info.format is AudioFormat.WAV and can_mix_natively(info))
            if decoded:
                source.seek(0)
                made = transcode(source, target, stop)[1]
            else:
                made = downmix_wav(source, info, target, stop, digest)
        else:
            source.seek(0)
            decoded = True
            dropped, made = transcode(source, target, stop)
            dropped["bytes"] = size
        if decoded:
            source.seek(0)
            _hash_rest(source, digest)
        made_size = target.stat().st_size
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise
    sent = describe(made, made_size) | {
        "converted": decoded,
        "downmixed": int(dropped.get("channels") or 1) > 1,
        "per_channel": False,
    }
    return Produced(target, made_size, dropped, sent, digest.hexdigest())


def work_folder(state_dir: Path) -> Path:
    return state_dir / WORK_FOLDER


def clear_work_folder(state_dir: Path) -> None:
    """Remove what a previous run left half-made (its uploads start again from the original)."""
    folder = work_folder(state_dir)
    with contextlib.suppress(FileNotFoundError):
        for entry in folder.iterdir():
            with contextlib.suppress(OSError):
                entry.unlink()


@contextlib.asynccontextmanager
async def produced_for_upload(
    action: str, source: Checked, state_dir: Path, stem: str, label: str
) -> AsyncIterator[Produced]:
    """Make the file to upload in a worker thread; remove it when the upload is over.

    A cancelled upload (the daemon stopping) tells the worker to stop at its next block.
    ``label`` names the file in the log line that says what was made and how long it took.
    """
    folder = work_folder(state_dir)
    stop = threading.Event()

    def make() -> Produced:
        folder.mkdir(parents=True, exist_ok=True)
        # The descriptor checked at the trust boundary, never the path again.
        with source.stream() as stream:
            return produce(action, stream, source.info.st_size, folder / f"{stem}.wav", stop)

    started = time.monotonic()
    try:
        produced = await asyncio.to_thread(make)
    except asyncio.CancelledError:
        stop.set()
        raise
    log.info(
        "audio_prepared",
        file=label,
        action=action,
        seconds=round(time.monotonic() - started, 3),
        bytes_in=produced.dropped.get("bytes"),
        bytes_out=produced.size,
    )
    try:
        yield produced
    finally:
        with contextlib.suppress(FileNotFoundError):
            produced.path.unlink()


def note_produced(data: dict[str, Any], produced: Produced) -> None:
    """Put what was made, and what the source turned out to be, into a file's journal data."""
    data["audio"] = {"dropped": produced.dropped, "sent": produced.sent}
    data["duration_seconds"] = produced.dropped.get("duration_seconds")


def original_submission(submission: Submission, produced: Produced) -> Submission:
    """The API's answer about a produced file, with the sha256 of the file that was dropped
    (the produced file's goes into ``audio.sent.sha256``)."""
    produced.sent["sha256"] = submission.sha256
    return replace(submission, sha256=produced.source_sha256)
