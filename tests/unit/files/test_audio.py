"""The inspector on files that real tools wrote: every variant read right, bad ones refused."""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import BinaryIO

import pytest
from real_recordings import MONO_VARIANTS, Recording, build_recordings, missing_tools

from daemon.files.audio import AudioFormat, AudioProblem, inspect_file, inspect_stream
from daemon.files.samples import make_wav, wav_header

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {missing_tools()}")


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    return build_recordings(tmp_path_factory.mktemp("recordings"))


class CountingStream(io.BytesIO):
    """Counts the bytes read, to show the inspector never reads a file whole."""

    bytes_read = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.bytes_read += len(data)
        return data


class TestRealFiles:
    """Each WAV and MP3 variant that tools write is read with its true duration."""

    @pytest.mark.parametrize(
        "name", [*MONO_VARIANTS, "stereo-pcm.wav", "stereo-mulaw.wav", "stereo.mp3"]
    )
    def test_variant_is_read(self, recordings: dict[str, Recording], name: str) -> None:
        recording = recordings[name]
        info = inspect_stream(io.BytesIO(recording.data), len(recording.data))
        assert info.format is AudioFormat(recording.format)
        assert (info.channels, info.sample_rate) == (recording.channels, recording.sample_rate)
        assert info.duration_seconds == pytest.approx(recording.seconds, abs=recording.tolerance)

    @pytest.mark.parametrize(
        ("name", "placeholder"),
        [
            ("ffmpeg-pipe.wav", 0xFFFFFFFF),
            ("sox-pipe.wav", 0x7FFFF000),
            ("espeak-ng.wav", 0x7FFFF000),
            ("gstreamer-pipe.wav", 0x7FFF0000),
            ("arecord-pipe.wav", 0x80000000),
        ],
    )
    def test_streamed_wavs_keep_their_writers_placeholder_and_are_judged_by_size(
        self, recordings: dict[str, Recording], name: str, placeholder: int
    ) -> None:
        data = recordings[name].data
        info = inspect_stream(io.BytesIO(data), len(data))
        data_field = struct.unpack_from("<I", data, info.data_offset - 4)[0]
        assert data_field == placeholder
        assert info.streamed
        assert info.data_size == len(data) - info.data_offset

    def test_a_libsndfile_header_of_a_file_still_open_is_judged_by_size(
        self, recordings: dict[str, Recording]
    ) -> None:
        """libsndfile writes RIFF size 8 and data size 0 at open (wav.c, wav_write_header)."""
        data = bytearray(recordings["libsndfile.wav"].data)
        struct.pack_into("<I", data, 4, 8)
        struct.pack_into("<I", data, 40, 0)
        info = inspect_stream(io.BytesIO(bytes(data)), len(data))
        assert info.streamed and info.duration_seconds == pytest.approx(2.0, abs=0.01)

    def test_a_large_cover_picture_costs_a_seek_not_a_read(
        self, recordings: dict[str, Recording]
    ) -> None:
        data = recordings["cover-art.mp3"].data
        tag_size = 10 + int.from_bytes(bytes(b & 0x7F for b in data[6:10]), "big")
        assert tag_size > 300_000
        stream = CountingStream(data)
        info = inspect_stream(stream, len(data))
        assert info.duration_seconds == pytest.approx(2.04, abs=0.05)
        assert stream.bytes_read < 64 * 1024

    def test_a_huge_wav_is_inspected_without_reading_it(self, tmp_path: Path) -> None:
        path = tmp_path / "huge.wav"
        size = 3 * 1024**3  # sparse: no disk used
        with open(path, "wb") as handle:
            handle.write(wav_header(size - 44, sample_rate=16000))
            handle.truncate(size)
        info = inspect_file(path)
        assert info.duration_seconds == pytest.approx((size - 44) / 32000)

    def test_an_rf64_file_reads_its_sizes_from_ds64(self, recordings: dict[str, Recording]) -> None:
        data = recordings["ffmpeg-rf64.wav"].data
        assert data[:4] == b"RF64"
        info = inspect_stream(io.BytesIO(data), len(data))
        assert not info.streamed and info.expected_size == len(data)


class TestRefusals:
    """What is not audio, or stops short, is refused with a reason a person can act on."""

    def _problem(self, data: bytes) -> AudioProblem:
        with pytest.raises(AudioProblem) as caught:
            inspect_stream(io.BytesIO(data), len(data))
        return caught.value

    def test_a_cut_wav_is_truncated(self, recordings: dict[str, Recording]) -> None:
        data = recordings["libsndfile.wav"].data
        problem = self._problem(data[: len(data) // 2])
        assert problem.reason == "truncated_audio"
        assert f"promises {len(data)} bytes" in problem.message

    def test_a_cut_streamed_wav_is_not_truncated(self, recordings: dict[str, Recording]) -> None:
        data = recordings["sox-pipe.wav"].data[:20_000]
        assert inspect_stream(io.BytesIO(data), len(data)).streamed

    def test_a_cut_id3_tag_is_truncated(self, recordings: dict[str, Recording]) -> None:
        problem = self._problem(recordings["cover-art.mp3"].data[:100_000])
        assert problem.reason == "truncated_audio" and "ID3 tag" in problem.message

    @pytest.mark.parametrize("name", ["call.m4a", "call.flac"])
    def test_other_containers_are_not_taken_for_mp3(
        self, recordings: dict[str, Recording], name: str
    ) -> None:
        assert self._problem(recordings[name].data).reason == "not_audio"

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            (b"", "empty_file"),
            (b"minutes of the meeting\n" * 100, "not_audio"),
            (make_wav(0.2)[:30], "truncated_audio"),
            (b"RIFF\x24\x00\x00\x00WAVEdata\x00\x00\x00\x00", "not_audio"),
        ],
    )
    def test_problems(self, data: bytes, reason: str) -> None:
        assert self._problem(data).reason == reason

    def test_the_stream_errors_reach_the_caller(self) -> None:
        class Broken(io.BytesIO):
            def read(self, size: int | None = -1) -> bytes:
                raise OSError(5, "Input/output error")

        stream: BinaryIO = Broken(b"ID3")
        with pytest.raises(OSError):
            inspect_stream(stream, 1000)
