"""Decode a recording with PyAV into blocks of mono 16-bit PCM: the channels' mean.

Two ways, with the same result to within one step of the last bit:

- ``graph_blocks``: one FFmpeg filter graph. ``amovie`` reads and decodes the file, ``aformat``
  makes mono 16-bit samples at the source's rate and ``asetnsamples`` hands them over 64 Ki at
  a time. FFmpeg's resampler mixes stereo down to the mean of the two channels in the same
  pass; other layouts go through ``pan`` first, which says what the mean is. All of it runs in
  C with the GIL released, so Python sees a few blocks a minute of audio instead of the
  decoder's ~40 frames a second. FFmpeg opens the file again through ``descriptor_path``:
  the inode of the descriptor checked at the trust boundary, never its path. The graph cannot
  follow a stream whose channels or rate change mid-way (``GraphUnusable``), and it takes a
  read error for the end.
- ``frame_blocks``: the decoder's frames through Python, for the streams the graph cannot
  follow; a read or decoding error is ``conversion_failed``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from daemon.files.audio import AudioProblem
from daemon.fsboundary import descriptor_path

GRAPH_BLOCK_SAMPLES = 64 * 1024
# Samples mixed at once on the frame path: a few arrays of about this many floats live at once.
FRAME_BLOCK_SAMPLES = 128 * 1024


class GraphUnusable(Exception):
    """The graph could not be built or stopped on an error; nothing it gave may be kept."""


def graph_blocks(
    fd: int,
    *,
    demuxers: str,
    demuxer: str,
    stream_index: int,
    layout: str,
    channels: int,
    rate: int,
) -> Iterator[memoryview]:
    """The stream's samples as mono 16-bit PCM, decoded and mixed in one FFmpeg graph.

    ``demuxer`` is the one the caller's own probe chose (so both read the file alike);
    ``demuxers`` is the comma-separated list FFmpeg may use at all; ``layout`` is FFmpeg's
    name of the stream's channel layout.
    """
    import av

    path = descriptor_path(fd)
    if channels < 1 or path is None:
        raise GraphUnusable("no channels, or no /proc/self/fd to open the descriptor through")
    try:
        graph = _graph(path, demuxers, demuxer, stream_index, layout, channels, rate)
    except (av.FFmpegError, ValueError) as exc:
        raise GraphUnusable(f"the graph could not be built: {exc}") from None
    while True:
        try:
            frame = graph.pull()
        except av.EOFError:
            return
        except (av.FFmpegError, ValueError) as exc:
            raise GraphUnusable(f"the graph stopped: {exc}") from None
        yield memoryview(frame.planes[0])[: frame.samples * 2]


def _graph(
    path: str, demuxers: str, demuxer: str, stream_index: int, layout: str, channels: int, rate: int
) -> Any:
    from av.filter import Graph

    graph = Graph()
    source = graph.add(
        "amovie",
        filename=path,
        format_name=demuxer,
        stream_index=str(stream_index),
        dec_threads="1",
        format_opts=f"format_whitelist={demuxers}:protocol_whitelist=file",
    )
    # A second pass over the samples costs a fifth of the whole conversion: stereo is mixed by
    # the resampler that makes the 16-bit samples (its stereo-to-mono is the mean).
    mix = [] if layout in ("mono", "stereo") else [graph.add("pan", _mean_of(channels))]
    chain = [
        source,
        *mix,
        graph.add("aformat", f"sample_fmts=s16:sample_rates={rate}:channel_layouts=mono"),
        graph.add("asetnsamples", f"n={GRAPH_BLOCK_SAMPLES}:p=0"),
        graph.add("abuffersink"),
    ]
    for upstream, downstream in itertools.pairwise(chain):
        upstream.link_to(downstream)
    graph.configure()
    return graph  # its filters hold it weakly: the caller keeps it alive


def _mean_of(channels: int) -> str:
    """``pan``'s description of a mono channel that is the mean of ``channels`` inputs."""
    weight = repr(1 / channels)
    return "mono|c0=" + "+".join(f"{weight}*c{index}" for index in range(channels))


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
