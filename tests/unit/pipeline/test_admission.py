"""Admission verdicts on real files, examined as the daemon examines them: Directed (with the
audio's own verdict) or Rejected, with what the record notes; nothing written, nothing moved."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sox_audio import sox_wav

from daemon.config.model import Profile
from daemon.files.dropped import Examination, examine
from daemon.fsboundary import Boundaries
from daemon.journal import FileRecord, Kind, State
from daemon.pipeline.admission import (
    Directed,
    Planned,
    Rejected,
    Vanished,
    duplicate_notes,
    judge,
    still_short,
)

PROFILE = Profile("calls", {"languageCode": "en-US"})


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def examined(inbox: Path, name: str) -> tuple[FileRecord, Examination]:
    is_drop = name.endswith(".url")
    boundaries = Boundaries()
    try:
        folder = boundaries.of("in", inbox, inbox.parent / "done", inbox.parent / "failed").inbox
        exam = examine(folder, name, is_drop=is_drop)
    finally:
        boundaries.close()
    size = (inbox / name).lstat().st_size
    kind = Kind.URL if is_drop else Kind.AUDIO
    return FileRecord(1, "in", name, kind, size, 0, State.WAITING), exam


def test_a_sound_wav_with_a_sidecar_is_directed_with_its_plan(inbox: Path) -> None:
    sox_wav(inbox / "call.wav")
    (inbox / "call.wav.yaml").write_text("params:\n  name: Weekly call\n")
    record, exam = examined(inbox, "call.wav")
    verdict = judge(record, exam, PROFILE, can_convert=False)
    assert isinstance(verdict, Directed)
    assert verdict.directions.params == {"languageCode": "en-US", "name": "Weekly call"}
    assert isinstance(verdict.audio, Planned)
    assert verdict.audio.notes["send"]["action"] == "as_is"
    assert (inbox / "call.wav").exists(), "judging moves nothing"


def test_a_bad_sidecar_is_rejected_with_the_profiles_params(inbox: Path) -> None:
    sox_wav(inbox / "call.wav")
    (inbox / "call.wav.yaml").write_text("params: [not, a, mapping]\n")
    record, exam = examined(inbox, "call.wav")
    verdict = judge(record, exam, PROFILE, can_convert=False)
    assert isinstance(verdict, Rejected)
    assert verdict.reason == "bad_sidecar"
    assert verdict.params == {"languageCode": "en-US"}
    assert "call.wav.yaml" in verdict.message


def test_a_file_that_is_not_audio_is_directed_but_its_audio_rejected(inbox: Path) -> None:
    (inbox / "notes.wav").write_bytes(b"this is a text file, not a recording\n" * 20)
    record, exam = examined(inbox, "notes.wav")
    verdict = judge(record, exam, PROFILE, can_convert=False)
    assert isinstance(verdict, Directed)
    assert isinstance(verdict.audio, Rejected) and verdict.audio.reason == "not_audio"


def test_a_stereo_wav_is_rejected_under_the_default_policy(inbox: Path) -> None:
    subprocess.run(
        ["sox", "-n", "-r", "16000", "-c", "2", "-b", "16", str(inbox / "s.wav"), "synth", "1",
         "sine", "440"],
        check=True,
    )  # fmt: skip
    record, exam = examined(inbox, "s.wav")
    verdict = judge(record, exam, PROFILE, can_convert=False)
    assert isinstance(verdict, Directed) and isinstance(verdict.audio, Rejected)
    assert verdict.audio.reason == "stereo_audio"
    assert verdict.audio.notes["audio"]["dropped"]["channels"] == 2


def test_a_symlink_is_rejected_as_not_a_regular_file(inbox: Path, tmp_path: Path) -> None:
    sox_wav(tmp_path / "elsewhere.wav")
    (inbox / "link.wav").symlink_to(tmp_path / "elsewhere.wav")
    record, exam = examined(inbox, "link.wav")
    verdict = judge(record, exam, PROFILE, can_convert=False)
    assert isinstance(verdict, Rejected) and verdict.reason == "not_a_regular_file"
    assert verdict.notes == {"entry_type": "symlink"}


def test_a_url_drop_is_directed_without_audio_to_check(inbox: Path) -> None:
    (inbox / "talk.url").write_text("url: https://example.invalid/talk.mp3\n")
    record, exam = examined(inbox, "talk.url")
    verdict = judge(record, exam, PROFILE, can_convert=False)
    assert isinstance(verdict, Directed)
    assert verdict.directions.url == "https://example.invalid/talk.mp3"
    assert verdict.audio == Planned()


def test_a_file_gone_before_its_audio_was_read_has_vanished() -> None:
    record = FileRecord(1, "in", "gone.wav", Kind.AUDIO, 10, 0, State.WAITING)
    exam = Examination(audio=FileNotFoundError(2, "gone"))
    verdict = judge(record, exam, PROFILE, can_convert=False)
    assert isinstance(verdict, Directed) and verdict.audio == Vanished()


def test_a_truncated_wav_gets_a_grace_then_is_judged(inbox: Path) -> None:
    sox_wav(inbox / "growing.wav", seconds=2.0)
    with open(inbox / "growing.wav", "r+b") as file:
        file.truncate(20000)
    _, exam = examined(inbox, "growing.wav")
    assert still_short(exam.audio, short_since=100.0, now=100.5, settle_seconds=1.0)
    assert not still_short(exam.audio, short_since=100.0, now=10_000.0, settle_seconds=1.0)
    assert not still_short(None, short_since=100.0, now=100.5, settle_seconds=1.0)


def test_a_duplicate_names_the_original_it_copies() -> None:
    original = FileRecord(
        7, "in", "a.wav", Kind.AUDIO, 1, 0, State.FILED, conversation_id="c", job_id="j",
        filed_path="2026/a.wav",
    )  # fmt: skip
    assert duplicate_notes(original) == {
        "duplicate_of": {"file": "2026/a.wav", "conversationId": "c", "jobId": "j"},
        "job_status": "skipped_duplicate",
    }
