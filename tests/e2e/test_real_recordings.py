"""Recordings made by real tools travel through the daemon to the emulator and into done/.

The emulator judges every upload with the same inspector as the daemon and records what it
received (Content-Type, size, sha256), so each test sees exactly what went up.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

import pytest
from e2e_harness import DaemonHarness, sha256_of
from real_recordings import MONO_VARIANTS, Recording, build_recordings, missing_tools

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"needs {missing_tools()}")

CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}
CHANNELS = [
    {"channel": 1, "speaker": {"name": "Agent"}},
    {"channel": 2, "speaker": {"name": "Caller"}},
]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    return build_recordings(tmp_path_factory.mktemp("recordings"))


def drop(harness: DaemonHarness, recordings: dict[str, Recording], *names: str) -> None:
    for name in names:
        (harness.inbox / name).write_bytes(recordings[name].data)


def received(harness: DaemonHarness) -> dict[str, Any]:
    """The emulator's submissions by the conversation name the daemon gave (the file name)."""
    return {record.params.get("name"): record for record in harness.emulator.state.submissions}


def work_folder_is_empty(harness: DaemonHarness) -> bool:
    folder = harness.state_dir / "convert"
    return not folder.exists() or not any(folder.iterdir())


class TestEveryVariantIsSent:
    """Each named WAV and MP3 variant reaches done/, sent byte for byte with its type."""

    def test_all_variants_reach_done(
        self, harness: DaemonHarness, recordings: dict[str, Recording]
    ) -> None:
        harness.start()
        drop(harness, recordings, *MONO_VARIANTS)
        harness.wait_filed(len(MONO_VARIANTS), timeout=90)
        assert harness.errors() == {}
        results, got = harness.results(), received(harness)
        for name in MONO_VARIANTS:
            recording = recordings[name]
            submission = got[name]
            assert submission.content_type == CONTENT_TYPES[recording.format], name
            assert (submission.sha256, submission.size) == (
                sha256_of(recording.data),
                len(recording.data),
            ), name
            result = results[name]
            assert result["duration_seconds"] == pytest.approx(
                recording.seconds, abs=recording.tolerance
            ), name
            sent = result["audio"]["sent"]
            assert sent["bytes"] == len(recording.data)
            assert (sent["converted"], sent["downmixed"], sent["per_channel"]) == (
                False,
                False,
                False,
            )
            assert (harness.done / name).read_bytes() == recording.data


class TestStillRefused:
    """Bad files still reach failed/ with their reasons beside good real ones."""

    def test_truncated_empty_and_text(
        self, harness: DaemonHarness, recordings: dict[str, Recording]
    ) -> None:
        harness.start()
        whole = recordings["libsndfile.wav"].data
        bad = {
            "cut.wav": (whole[: len(whole) // 2], "truncated_audio"),
            "empty.wav": (b"", "empty_file"),
            "notes.wav": (b"minutes of the meeting\n" * 50, "not_audio"),
            "notes.mp3": (b"\xff\xfb not really\n" * 50, "not_audio"),
        }
        for name, (data, _) in bad.items():
            (harness.inbox / name).write_bytes(data)
        drop(harness, recordings, "cover-art.mp3")
        (harness.inbox / "notes.txt").write_text("left alone")
        harness.wait_filed(len(bad) + 1, timeout=60)
        errors = harness.errors()
        assert {name: errors[name]["reason"] for name in bad} == {
            name: reason for name, (_, reason) in bad.items()
        }
        assert "cover-art.mp3" in harness.results()
        assert (harness.inbox / "notes.txt").exists()
        assert len(harness.emulator.state.submissions) == 1


class TestStereoPolicy:
    """reject, per_channel and downmix, the same for WAV and MP3."""

    def test_reject_is_the_default_and_names_the_setting(
        self, harness: DaemonHarness, recordings: dict[str, Recording]
    ) -> None:
        harness.start()
        drop(harness, recordings, "stereo-pcm.wav", "stereo.mp3", "lame-cbr.mp3")
        harness.wait_filed(3, timeout=60)
        errors = harness.errors()
        for name in ("stereo-pcm.wav", "stereo.mp3"):
            assert errors[name]["reason"] == "stereo_audio"
            assert "stereo: downmix" in errors[name]["message"]
            assert "stereo: per_channel" in errors[name]["message"]
            assert errors[name]["audio"]["dropped"]["channels"] == 2
        assert "lame-cbr.mp3" in harness.results()

    def test_per_channel_only_for_the_stereo_files(
        self,
        harness_factory: Callable[..., DaemonHarness],
        recordings: dict[str, Recording],
    ) -> None:
        profile = {"stereo": "per_channel", "params": {"channelMetadata": CHANNELS}}
        harness = harness_factory(profile=profile)
        harness.start()
        drop(harness, recordings, "stereo-pcm.wav", "stereo.mp3", "lame-cbr.mp3", "mulaw.wav")
        harness.wait_filed(4, timeout=60)
        assert harness.errors() == {}
        got, results = received(harness), harness.results()
        for name in ("stereo-pcm.wav", "stereo.mp3"):
            assert got[name].params["enableSeparateRecognitionPerChannel"] is True
            assert got[name].params["channelMetadata"] == CHANNELS
            assert got[name].sha256 == sha256_of(recordings[name].data)
            assert results[name]["audio"]["sent"]["per_channel"] is True
        for name in ("lame-cbr.mp3", "mulaw.wav"):
            assert "enableSeparateRecognitionPerChannel" not in got[name].params
            assert "channelMetadata" not in got[name].params
            assert results[name]["audio"]["sent"]["per_channel"] is False

    def test_downmix_sends_a_mono_wav_and_files_the_original(
        self,
        harness_factory: Callable[..., DaemonHarness],
        recordings: dict[str, Recording],
    ) -> None:
        harness = harness_factory(profile={"stereo": "downmix"})
        harness.start()
        names = ("stereo-pcm.wav", "stereo-mulaw.wav", "stereo-adpcm.wav", "stereo.mp3")
        drop(harness, recordings, *names, "pcm-u8.wav")
        harness.wait_filed(len(names) + 1, timeout=60)
        assert harness.errors() == {}
        got, results = received(harness), harness.results()
        for name in names:
            sent = results[name]["audio"]["sent"]
            assert got[name].content_type == "audio/wav"
            assert got[name].size == sent["bytes"]
            assert (sent["channels"], sent["format"], sent["downmixed"]) == (1, "wav", True)
            assert sent["converted"] is (name in ("stereo-adpcm.wav", "stereo.mp3"))
            assert results[name]["audio"]["dropped"]["channels"] == 2
            assert results[name]["duration_seconds"] == pytest.approx(2.0, abs=0.1)
            assert sent["sha256"] == got[name].sha256  # what went up
            assert results[name]["sha256"] == sha256_of(recordings[name].data)  # what was dropped
            assert (harness.done / name).read_bytes() == recordings[name].data
        assert got["pcm-u8.wav"].sha256 == sha256_of(recordings["pcm-u8.wav"].data)
        assert work_folder_is_empty(harness)
        assert sorted(path.name for path in harness.inbox.iterdir() if path.is_file()) == []


class TestOtherFormats:
    """.m4a and friends are never ignored in silence."""

    def test_unsupported_by_default(
        self, harness: DaemonHarness, recordings: dict[str, Recording]
    ) -> None:
        harness.start()
        drop(harness, recordings, "call.m4a", "call.flac")
        (harness.inbox / "report.pdf").write_bytes(b"%PDF-1.7")
        harness.wait_filed(2, timeout=60)
        errors = harness.errors()
        for name in ("call.m4a", "call.flac"):
            assert errors[name]["reason"] == "unsupported_format"
            assert "convert: true" in errors[name]["message"]
            assert (harness.failed / name).read_bytes() == recordings[name].data
        assert (harness.inbox / "report.pdf").exists()
        assert harness.emulator.state.submissions == []

    def test_converted_when_the_profile_says_so_with_its_sidecar(
        self,
        harness_factory: Callable[..., DaemonHarness],
        recordings: dict[str, Recording],
    ) -> None:
        harness = harness_factory(profile={"convert": True, "params": {"languageCode": "en-US"}})
        harness.start()
        (harness.inbox / "call.m4a.yaml").write_text("params:\n  languageCode: de-DE\n")
        drop(harness, recordings, "call.m4a", "call.flac")
        (harness.inbox / "fake.m4a").write_bytes(b"not a movie" * 100)
        harness.wait_filed(3, timeout=60)
        got, results = received(harness), harness.results()
        assert harness.errors()["fake.m4a"]["reason"] == "not_audio"
        for name in ("call.m4a", "call.flac"):
            audio = results[name]["audio"]
            assert got[name].content_type == "audio/wav"
            assert got[name].size == audio["sent"]["bytes"]
            assert audio["sent"]["converted"] is True and audio["sent"]["channels"] == 1
            assert audio["dropped"]["channels"] == recordings[name].channels
            assert results[name]["duration_seconds"] == pytest.approx(2.0, abs=0.1)
        assert got["call.m4a"].params["languageCode"] == "de-DE"
        assert got["call.flac"].params["languageCode"] == "en-US"
        assert (harness.done / "call.m4a.yaml").exists()
        assert work_folder_is_empty(harness)

    def test_channels_that_change_mid_stream_are_converted(
        self,
        harness_factory: Callable[..., DaemonHarness],
        recordings: dict[str, Recording],
    ) -> None:
        # A stream cut together from a stereo and a mono recording (as ADTS allows) crashed
        # the daemon: FFmpeg's FIFO read a second channel the mono frames lack.
        harness = harness_factory(profile={"convert": True})
        parts = harness.root / "parts"
        parts.mkdir()
        subprocess.run(
            ["bash", "-c", "ffmpeg -nostdin -loglevel error -f lavfi -i sine=f=300:d=2 -ac 2"
             " -c:a aac -f adts a.aac && ffmpeg -nostdin -loglevel error -f lavfi"
             " -i sine=f=500:d=2 -ac 1 -c:a aac -f adts b.aac"],
            cwd=parts, check=True, timeout=60,
        )  # fmt: skip
        harness.start()
        (harness.inbox / "radio.aac").write_bytes(
            (parts / "a.aac").read_bytes() + (parts / "b.aac").read_bytes()
        )
        drop(harness, recordings, "call.m4a")
        harness.wait_filed(2, timeout=60)
        sent = harness.results()["radio.aac"]["audio"]["sent"]
        assert sent["channels"] == 1
        assert sent["duration_seconds"] == pytest.approx(4.0, abs=0.1)
        assert "call.m4a" in harness.results()
        assert not harness.exited()

    def test_a_playlist_cannot_make_the_daemon_read_another_file(
        self,
        harness_factory: Callable[..., DaemonHarness],
        recordings: dict[str, Recording],
    ) -> None:
        # FFmpeg reads some formats as lists of other files; the names in them resolve from the
        # daemon's working folder, where a dropper's own rights do not reach.
        harness = harness_factory(profile={"convert": True})
        private = harness.root / "private"
        private.mkdir()
        (private / "other-team.mp3").write_bytes(recordings["no-tag.mp3"].data)
        harness.start(cwd=harness.root)
        listing = "ffconcat version 1.0\nfile private/other-team.mp3\n"
        (harness.inbox / "list.m4a").write_text(listing)
        drop(harness, recordings, "call.m4a")
        harness.wait_filed(2, timeout=60)
        error = harness.errors()["list.m4a"]
        assert error["reason"] == "not_audio"
        assert "a list of other files" in error["message"]
        assert (harness.failed / "list.m4a").exists()
        assert [record.params.get("name") for record in harness.emulator.state.submissions] == [
            "call.m4a"
        ]


class TestLeftovers:
    """A mix half-made when the daemon stopped is removed at the next start."""

    def test_stale_work_files_are_removed_at_start(
        self,
        harness_factory: Callable[..., DaemonHarness],
        recordings: dict[str, Recording],
    ) -> None:
        harness = harness_factory(profile={"stereo": "downmix"})
        stale = harness.state_dir / "convert" / "17.wav"
        stale.parent.mkdir(parents=True)
        stale.write_bytes(b"RIFF half of a mix")
        harness.start()
        assert not stale.exists()
        drop(harness, recordings, "stereo-pcm.wav")
        harness.wait_filed(1)
        assert harness.results()["stereo-pcm.wav"]["audio"]["sent"]["channels"] == 1
        assert work_folder_is_empty(harness)
