"""Decode a recording with PyAV into blocks of mono 16-bit PCM: the channels' mean.

``frame_blocks``: the decoder's frames through Python; a read or decoding error is
``conversion_failed``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from daemon.files.audio import AudioProblem

# Samples mixed at once on the frame path: a few arrays of about this many floats live at once.
FRAME_BLOCK_SAMPLES = 128 * 1024


def frame_blocks(container: Any, stream: Any, rate: int) -> Iterator[memoryview]:
    """The stream's samples as mono 16-bit PCM, decoded frame by frame.

    Frames become planar float at ``rate`` (compressed audio decodes to that already; other
    frames go through FFmpeg's resampler) and gather in FFmpeg's audio FIFO; each block read
    from it is mixed with numpy. A change of channels starts a new FIFO, of sample format or
    rate a new resampler, each after the samples before it.
    """
    import av

    to_float = _ToFloat(rate)
    fifo: Any = None
    fifo_channels = 0
    try:
        for decoded in itertools.chain(container.decode(stream), (None,)):
            for frame in to_float.frames(decoded):
                channels = frame.layout.nb_channels
                # PyAV's FIFO does not check this: it would read planes the frame lacks.
                if channels != fifo_channels:
                    if fifo is not None and fifo.samples:
                        yield _mixed(fifo.read())
                    fifo, fifo_channels = av.AudioFifo(), channels
                frame.pts = None  # the FIFO would insist that timestamps follow each other
                fifo.write(frame)
                if fifo.samples >= FRAME_BLOCK_SAMPLES:
                    yield _mixed(fifo.read(FRAME_BLOCK_SAMPLES))
    except av.FFmpegError as exc:
        raise AudioProblem("conversion_failed", f"FFmpeg could not decode it: {exc}") from None
    if fifo is not None and fifo.samples:
        yield _mixed(fifo.read())


class _ToFloat:
    """Decoded frames as planar float at one rate, in their order."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.resampler: Any = None
        self.takes: tuple[str, str, int] | None = None

    def frames(self, decoded: Any) -> list[Any]:
        """``decoded`` converted (``None``: the end, whatever the resampler still holds)."""
        import av

        takes = None if decoded is None else _shape(decoded)
        out: list[Any] = []
        if self.resampler is not None and takes != self.takes:
            out.extend(self.resampler.resample(None))
            self.resampler = self.takes = None
        if decoded is None:
            return out
        if decoded.format.name == "fltp" and decoded.sample_rate == self.rate:
            return [*out, decoded]
        if self.resampler is None:
            self.resampler, self.takes = av.AudioResampler(format="fltp", rate=self.rate), takes
        return [*out, *self.resampler.resample(decoded)]


def _shape(frame: Any) -> tuple[str, str, int]:
    return frame.format.name, frame.layout.name, frame.sample_rate


def _mixed(block: Any) -> memoryview:
    """The mean of a planar float frame's channels as 16-bit PCM."""
    import numpy as np

    count, planes = int(block.samples), block.planes
    channels = [np.frombuffer(plane, np.float32, count) for plane in planes]
    mixed = channels[0] + channels[1] if len(channels) > 1 else channels[0].copy()
    for channel in channels[2:]:
        mixed += channel
    mixed *= np.float32(32767.0 / len(channels))
    np.clip(mixed, -32768.0, 32767.0, out=mixed)
    return mixed.astype("<i2").data  # the array's own buffer: no copy into bytes
