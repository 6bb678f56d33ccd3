"""Downmix and conversion against sox as the reference, on files the tools made."""

from __future__ import annotations

import hashlib
import io
import subprocess
from pathlib import Path

import numpy as np
import pytest
from real_recordings import missing_tools
from structlog.testing import capture_logs

from daemon.files.audio import AudioProblem, inspect_file
from daemon.files.convert import Produced, produce

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {missing_tools()}")


def run(command: str, cwd: Path) -> None:
    subprocess.run(["bash", "-c", command], cwd=cwd, check=True, capture_output=True, timeout=60)


def produced(action: str, source: Path, target: Path) -> Produced:
    """``produce`` on a file opened as the daemon opens one: a descriptor of its own."""
    with open(source, "rb") as handle:
        return produce(action, handle, source.stat().st_size, target)


def samples(path: Path, dtype: str) -> np.ndarray:
    info = inspect_file(path)
    with open(path, "rb") as handle:
        handle.seek(info.data_offset)
        raw = handle.read(info.data_size)
    if dtype == "s24":
        bytes3 = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        values = bytes3[:, 0] | (bytes3[:, 1] << 8) | (bytes3[:, 2] << 16)
        return (values << 8) >> 8
    return np.frombuffer(raw, dtype)


class TestNativeDownmix:
    """PCM, float, µ-law and A-law WAVs: the mean of the channels, as sox computes it."""

    @pytest.mark.parametrize(
        ("codec", "sox_output", "dtype", "tolerance"),
        [
            ("pcm_u8", "-b 8 -e unsigned", "u1", 1),
            ("pcm_s16le", "-b 16 -e signed", "<i2", 1),
            ("pcm_s24le", "-b 24 -e signed", "s24", 1),
            ("pcm_s32le", "-b 32 -e signed", "<i4", 1),
            ("pcm_f32le", "-b 32 -e float", "<f4", 1e-6),
            ("pcm_mulaw", "-b 16 -e signed", "<i2", 1),
            ("pcm_alaw", "-b 16 -e signed", "<i2", 1),
        ],
    )
    def test_matches_sox(
        self, tmp_path: Path, codec: str, sox_output: str, dtype: str, tolerance: float
    ) -> None:
        run(
            "ffmpeg -nostdin -loglevel error -f lavfi -i sine=f=300:d=3 -f lavfi -i sine=f=700:d=3"
            f" -filter_complex amerge=inputs=2 -ar 8000 -c:a {codec} in.wav"
            f" && sox -D in.wav {sox_output} ref.wav remix 1v0.5,2v0.5",
            tmp_path,
        )
        source = tmp_path / "in.wav"
        made = produced("downmix", source, tmp_path / "out.wav")
        assert made.sent["channels"] == 1 and made.sent["downmixed"]
        assert made.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
        assert not made.sent["converted"]
        ours, reference = samples(made.path, dtype), samples(tmp_path / "ref.wav", dtype)
        assert len(ours) == len(reference) == 24000
        difference = np.abs(ours.astype(np.float64) - reference.astype(np.float64))
        assert difference.max() <= tolerance


class TestPyAV:
    """MP3, coded WAVs and other containers are decoded by the convert extra."""

    @pytest.mark.parametrize(
        ("name", "command", "action"),
        [
            ("in.mp3", "-c:a libmp3lame", "downmix"),
            ("in.wav", "-c:a adpcm_ms", "downmix"),
            ("in.m4a", "-c:a aac", "convert"),
            ("in.ogg", "-c:a libopus", "convert"),
        ],
    )
    def test_decoded_to_mono_wav(
        self, tmp_path: Path, name: str, command: str, action: str
    ) -> None:
        run(
            "ffmpeg -nostdin -loglevel error -f lavfi -i sine=f=300:d=3 -f lavfi -i sine=f=700:d=3"
            f" -filter_complex amerge=inputs=2 -ar 48000 {command} {name}",
            tmp_path,
        )
        source = tmp_path / name
        made = produced(action, source, tmp_path / "out.wav")
        info = inspect_file(made.path)
        assert (info.channels, info.sample_rate, info.codec) == (1, 48000, "pcm")
        assert info.duration_seconds == pytest.approx(3.0, abs=0.1)
        assert made.dropped["channels"] == 2
        assert made.sent["converted"] and made.sent["bytes"] == made.path.stat().st_size
        assert made.source_sha256 == hashlib.sha256(source.read_bytes()).hexdigest()

    def test_a_broken_file_is_not_audio_and_leaves_nothing(self, tmp_path: Path) -> None:
        source = tmp_path / "broken.m4a"
        source.write_bytes(b"\x00\x00\x00\x20ftypM4A " + b"garbage" * 100)
        with pytest.raises(AudioProblem) as caught:
            produced("convert", source, tmp_path / "out.wav")
        assert caught.value.reason == "not_audio"
        assert not (tmp_path / "out.wav").exists()

    def test_a_list_of_other_files_is_not_followed(self, tmp_path: Path) -> None:
        run(
            "mkdir private inbox && ffmpeg -nostdin -loglevel error -f lavfi -i sine=d=1"
            " private/theirs.mp3 && ln -s ../private/theirs.mp3 inbox/link.mp3",
            tmp_path,
        )
        source = tmp_path / "inbox" / "list.m4a"
        source.write_text("ffconcat version 1.0\nfile link.mp3\n")
        with pytest.raises(AudioProblem) as caught:
            produced("convert", source, tmp_path / "out.wav")
        assert caught.value.reason == "not_audio"
        assert "a list of other files" in str(caught.value)
        assert not (tmp_path / "out.wav").exists()


class TestTwoWaysToDecode:
    """FFmpeg's graph and the frame-by-frame path give the channels' mean alike."""

    @pytest.mark.parametrize(
        ("inputs", "remix"),
        [
            (2, "1v0.5,2v0.5"),  # mixed by the resampler that makes the 16-bit samples
            (3, "1v0.333333,2v0.333333,3v0.333333"),  # by pan
        ],
    )
    def test_the_mean_of_the_channels_as_sox_computes_it(
        self, tmp_path: Path, inputs: int, remix: str
    ) -> None:
        tones = " ".join(f"-f lavfi -i sine=f={300 + 400 * n}:d=3" for n in range(inputs))
        run(
            f"ffmpeg -nostdin -loglevel error {tones} -filter_complex amerge=inputs={inputs}"
            f" -ar 16000 in.flac && sox -D in.flac -b 16 ref.wav remix {remix}",
            tmp_path,
        )
        source = tmp_path / "in.flac"
        made = produced("convert", source, tmp_path / "out.wav")
        assert made.dropped["channels"] == inputs
        ours, reference = samples(made.path, "<i2"), samples(tmp_path / "ref.wav", "<i2")
        assert len(ours) == len(reference) == 48000
        assert np.abs(ours.astype(np.int32) - reference).max() <= 1

    def test_without_a_descriptor_the_frames_give_the_same_samples(self, tmp_path: Path) -> None:
        run(
            "ffmpeg -nostdin -loglevel error -f lavfi -i sine=f=300:d=3 -f lavfi -i sine=f=700:d=3"
            " -filter_complex amerge=inputs=2 -c:a aac in.m4a",
            tmp_path,
        )
        source = tmp_path / "in.m4a"
        graph = produced("convert", source, tmp_path / "graph.wav")
        with capture_logs() as logs:
            in_memory = io.BytesIO(source.read_bytes())
            frames = produce("convert", in_memory, graph.dropped["bytes"], tmp_path / "f.wav")
        assert [entry["event"] for entry in logs] == []  # no descriptor: no graph to give up on
        assert frames.source_sha256 == graph.source_sha256
        ours, theirs = samples(graph.path, "<i2"), samples(frames.path, "<i2")
        assert len(ours) == len(theirs) == pytest.approx(3 * 44100, abs=2048)
        assert np.abs(ours.astype(np.int32) - theirs).max() <= 1

    def test_a_stream_shorter_than_its_container_says_is_decoded_again_by_frames(
        self, tmp_path: Path
    ) -> None:
        # The graph takes a read error for the end of the file; the frames tell them apart.
        run(
            "ffmpeg -nostdin -loglevel error -f lavfi -i sine=f=300:d=6 -ac 2 -c:a aac"
            " -movflags +faststart whole.m4a",
            tmp_path,
        )
        import av

        with av.open(str(tmp_path / "whole.m4a")) as container:
            packets = [(p.pos, p.size) for p in container.demux(audio=0) if p.size]
        middle = packets[len(packets) // 2]
        source = tmp_path / "cut.m4a"
        source.write_bytes((tmp_path / "whole.m4a").read_bytes()[: middle[0] + middle[1]])
        with capture_logs() as logs:
            made = produced("convert", source, tmp_path / "out.wav")
        assert made.dropped["duration_seconds"] == pytest.approx(6.0, abs=0.1)
        assert inspect_file(made.path).duration_seconds == pytest.approx(3.0, abs=0.1)
        assert [(entry["event"], entry["reason"]) for entry in logs] == [
            ("conversion_frame_by_frame", "shorter than the container says")
        ]

    def test_a_container_without_samples_is_asked_again_frame_by_frame(
        self, tmp_path: Path
    ) -> None:
        run(
            "ffmpeg -nostdin -loglevel error -f lavfi -i sine=d=2 -c:a aac -movflags +faststart"
            " whole.m4a",
            tmp_path,
        )
        import av

        with av.open(str(tmp_path / "whole.m4a")) as container:
            first = next(p.pos for p in container.demux(audio=0) if p.size)
        source = tmp_path / "header-only.m4a"
        source.write_bytes((tmp_path / "whole.m4a").read_bytes()[:first])
        with capture_logs() as logs, pytest.raises(AudioProblem) as caught:
            produced("convert", source, tmp_path / "out.wav")
        assert caught.value.reason == "not_audio"
        assert [entry["event"] for entry in logs] == ["conversion_frame_by_frame"]
        assert not (tmp_path / "out.wav").exists()
