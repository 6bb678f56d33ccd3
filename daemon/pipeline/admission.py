"""Admission: an examined entry, its sidecar and its audio judged Directed or Rejected.

Pure decisions: the verdicts say what the file's record should note and whether it may go on
(towards its conversation and the upload queue); the daemon acts on them. Nothing here opens a
file (``daemon.files.dropped.examine`` did, in a worker thread), writes the journal or logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.config.model import Profile
from daemon.files.audio import AudioInfo, AudioProblem
from daemon.files.dropped import Examination
from daemon.files.intake import Directions, DirectionsError, directions_from_document, short_grace
from daemon.files.recordings import as_dropped, plan_upload, planned
from daemon.fsboundary import display
from daemon.journal import FileRecord, Kind

NOT_REGULAR_MESSAGE = (
    "{}, not a regular file: the daemon never opens, reads or follows such entries; the entry "
    "itself was moved here"
)


@dataclass(frozen=True)
class Rejected:
    """The file cannot be sent: it goes to failed/ with ``reason``.

    ``params``, when given, are the parameters its record shows; ``notes`` go into its record.
    """

    reason: str
    message: str
    params: dict[str, Any] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Vanished:
    """The file is gone (deleted or moved away before it was sent): it is forgotten."""


@dataclass(frozen=True)
class Planned:
    """The audio may be sent as ``notes`` (the upload plan, for the record) say."""

    notes: dict[str, Any] = field(default_factory=dict)


AudioVerdict = Planned | Rejected | Vanished


@dataclass(frozen=True)
class Directed:
    """The entry and its sidecar are sound: what they ask for, and what became of the audio.

    The audio's verdict is kept apart: a part that joined its conversation and is then
    rejected for its audio still settles its place in the conversation.
    """

    directions: Directions
    audio: AudioVerdict


Verdict = Directed | Rejected


def judge(record: FileRecord, exam: Examination, profile: Profile, *, can_convert: bool) -> Verdict:
    """The verdict on one examined file of ``record``'s kind, under ``profile``."""
    if exam.not_regular is not None:
        entry_type, message = exam.not_regular
        return Rejected(
            "not_a_regular_file",
            NOT_REGULAR_MESSAGE.format(message),
            dict(profile.params),
            {"entry_type": entry_type},
        )
    directions = _directions(record, exam, profile)
    if isinstance(directions, Rejected):
        return directions
    inspected = exam.audio if record.kind is Kind.AUDIO else None
    if inspected is None:
        return Directed(directions, Planned())
    return Directed(directions, _audio(record, inspected, directions, profile, can_convert))


def _directions(record: FileRecord, exam: Examination, profile: Profile) -> Directions | Rejected:
    is_drop = record.kind is Kind.URL
    if exam.refused is not None:
        reason, lines = exam.refused
        return Rejected(reason, "\n".join(lines), dict(profile.params))
    if is_drop and exam.document is None and isinstance(exam.audio, OSError):
        return Rejected("unreadable_file", f"cannot read it: {exam.audio.strerror}", {})
    if exam.document is None:
        return Directions(params=dict(profile.params))
    name = Path(record.rel_path).name + ("" if is_drop else exam.sidecar or "")
    try:
        return directions_from_document(
            exam.document, display(name), is_drop, profile.params, private=exam.private
        )
    except DirectionsError as exc:
        reason = "bad_url_drop" if is_drop else "bad_sidecar"
        return Rejected(reason, "\n".join(exc.lines), dict(profile.params))


def _audio(
    record: FileRecord,
    inspected: AudioInfo | AudioProblem | OSError,
    directions: Directions,
    profile: Profile,
    can_convert: bool,
) -> AudioVerdict:
    """Decide what goes up (``daemon.files.recordings``), noted for the record."""
    params = dict(directions.params)
    if isinstance(inspected, FileNotFoundError):
        return Vanished()
    if isinstance(inspected, OSError):
        return Rejected("unreadable_file", f"cannot read the file: {inspected.strerror}")
    try:
        plan = plan_upload(
            inspected, name=record.rel_path, profile=profile, params=params, can_convert=can_convert
        )
    except AudioProblem as problem:
        return Rejected(problem.reason, problem.message, notes=as_dropped(inspected, record.size))
    return Planned(planned(plan, inspected, record.size, params))


def still_short(
    inspected: AudioInfo | AudioProblem | OSError | None,
    short_since: float,
    now: float,
    settle_seconds: float,
) -> bool:
    """A WAV shorter than its header says, still within its grace: it may still be written.

    ``short_since`` is when the file was first found short (restarted whenever it changes), so
    a file that keeps growing never times out; one that stays short is then judged truncated.
    """
    if not isinstance(inspected, AudioProblem) or inspected.reason != "truncated_audio":
        return False
    return now - short_since < short_grace(settle_seconds)


def duplicate_notes(original: FileRecord) -> dict[str, Any]:
    """What the record of a file skipped as a copy of ``original`` (already in done/) says."""
    return {
        "duplicate_of": {
            "file": original.filed_path or original.rel_path,
            "conversationId": original.conversation_id,
            "jobId": original.job_id,
        },
        "job_status": "skipped_duplicate",
    }
