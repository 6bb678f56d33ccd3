"""Every bad input gets a clear reason in failed/, loses nothing, and never stops other files."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from e2e_harness import DaemonHarness, sha256_of, wait_until, without_root_privileges

from daemon.files.samples import make_mp3, make_wav


def drop_with_a_good_file(harness: DaemonHarness, name: str, data: bytes) -> None:
    """Drop the bad file beside a good one, and wait until both are filed."""
    (harness.inbox / name).write_bytes(data)
    (harness.inbox / "good.wav").write_bytes(make_wav(0.3))
    harness.wait_filed(2)
    assert harness.results()["good.wav"]["status"] == "completed"


class TestAudioChecks:
    """Content is judged before upload, whatever the extension says."""

    @pytest.mark.parametrize(
        ("name", "data", "reason", "words"),
        [
            ("empty.wav", b"", "empty_file", "empty"),
            ("text.wav", b"minutes of the meeting\n" * 20, "not_audio", "neither WAV nor MP3"),
            ("text.mp3", b"ID4 not a tag, not audio" * 10, "not_audio", "neither WAV nor MP3"),
            ("cut.wav", make_wav(1.0)[:3000], "truncated_audio", "promises 16044 bytes"),
            ("cut.mp3", make_mp3(1.0)[:30], "truncated_audio", "ID3 tag"),
            ("stereo.wav", make_wav(0.3, channels=2), "stereo_audio", "2 channels"),
        ],
    )
    def test_bad_audio_goes_to_failed_with_its_reason(
        self, harness: DaemonHarness, name: str, data: bytes, reason: str, words: str
    ) -> None:
        harness.start()
        drop_with_a_good_file(harness, name, data)
        error = harness.errors()[name]
        assert error["reason"] == reason
        assert words in error["message"]
        assert (harness.failed / name).read_bytes() == data
        assert len(harness.emulator.state.submissions) == 1

    def test_a_wav_named_mp3_is_sent_as_what_it_is(self, harness: DaemonHarness) -> None:
        harness.start()
        (harness.inbox / "misnamed.mp3").write_bytes(make_wav(0.3))
        harness.wait_filed(1)
        assert "misnamed.mp3" in harness.results()
        assert harness.emulator.state.submissions[0].content_type == "audio/wav"

    def test_stereo_is_fine_when_the_profile_asks_for_channels(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        profile = {"params": {"enableSeparateRecognitionPerChannel": True}}
        harness = harness_factory(profile=profile)
        harness.start()
        (harness.inbox / "two-channels.wav").write_bytes(make_wav(0.3, channels=2))
        harness.wait_filed(1)
        assert "two-channels.wav" in harness.results()


class TestFilesystemTrouble:
    """Unreadable files, vanishing files and a done/ that cannot be written."""

    def test_an_unreadable_file_fails_clearly(self, harness: DaemonHarness) -> None:
        prefix = without_root_privileges()
        locked = harness.inbox / "locked.wav"
        locked.write_bytes(make_wav(0.3))
        locked.chmod(0o000)
        harness.start(prefix=prefix)
        (harness.inbox / "good.wav").write_bytes(make_wav(0.3))
        harness.wait_filed(2)
        error = harness.errors()["locked.wav"]
        assert error["reason"] == "unreadable_file"
        assert "Permission denied" in error["message"]

    def test_a_file_that_vanishes_before_upload_is_dropped_with_a_log_line(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        harness = harness_factory(inbox_options={"settle_seconds": 1.0})
        harness.start()
        (harness.inbox / "gone.wav").write_bytes(make_wav(0.3))
        wait_until(lambda: harness.event_count("file_seen") == 1, 10, "the file to be seen")
        (harness.inbox / "gone.wav").unlink()
        wait_until(lambda: harness.event_count("file_vanished") == 1, 10, "the vanishing")
        (harness.inbox / "good.wav").write_bytes(make_wav(0.3))
        harness.wait_filed(1)
        assert set(harness.results()) == {"good.wav"}
        assert harness.errors() == {}

    def test_an_unwritable_done_folder_keeps_the_file_and_retries(
        self, harness: DaemonHarness
    ) -> None:
        prefix = without_root_privileges()
        harness.done.mkdir()
        harness.done.chmod(0o555)
        harness.start(prefix=prefix)
        data = make_wav(0.3)
        (harness.inbox / "patient.wav").write_bytes(data)
        wait_until(lambda: harness.event_count("filing_failed") >= 1, 20, "a failed filing")
        assert (harness.inbox / "patient.wav").read_bytes() == data
        (harness.inbox / "other.mp3").write_bytes(make_mp3(0.3))
        wait_until(lambda: harness.event_count("filing_failed") >= 2, 20, "the second file")
        harness.done.chmod(0o755)
        harness.wait_filed(2, timeout=30)
        assert harness.results()["patient.wav"]["sha256"] == sha256_of(data)
        assert not (harness.inbox / "patient.wav").exists()
        assert len(harness.emulator.state.submissions) == 2


class TestBadDirections:
    """Sidecars and URL drops that cannot be followed go to failed/ with a pointed message."""

    def test_a_bad_sidecar_sends_audio_and_sidecar_to_failed(self, harness: DaemonHarness) -> None:
        harness.start()
        (harness.inbox / "odd.wav.yaml").write_text(
            "conversation: weekly\npart: 0\nparams:\n  confidenceThreshold: 2\n  langCode: de\n"
        )
        drop_with_a_good_file(harness, "odd.wav", make_wav(0.3))
        error = harness.errors()["odd.wav"]
        assert error["reason"] == "bad_sidecar"
        assert error["message"].splitlines() == [
            "odd.wav.yaml:2: part: must be a whole number, 1 or more (1 = the first part)",
            "odd.wav.yaml:4: params.confidenceThreshold: must be between 0.5 and 1.0",
            "odd.wav.yaml:5: params.langCode: unknown key; did you mean 'languageCode'?",
        ]
        assert (harness.failed / "odd.wav.yaml").exists()

    def test_sidecar_that_is_not_yaml(self, harness: DaemonHarness) -> None:
        harness.start()
        (harness.inbox / "broken.wav.yaml").write_text("part: [1, 2\n")
        drop_with_a_good_file(harness, "broken.wav", make_wav(0.3))
        error = harness.errors()["broken.wav"]
        assert error["reason"] == "bad_sidecar"
        assert error["message"].startswith("broken.wav.yaml:")

    def test_url_drop_without_a_usable_url(self, harness: DaemonHarness) -> None:
        harness.start()
        (harness.inbox / "meeting.url.yaml").write_text("url: ftp://files.invalid/a.wav\n")
        (harness.inbox / "good.wav").write_bytes(make_wav(0.3))
        harness.wait_filed(2)
        error = harness.errors()["meeting.url.yaml"]
        assert error["reason"] == "bad_url_drop"
        assert error["message"] == (
            "meeting.url.yaml:1: url: must be an http:// or https:// address"
        )
