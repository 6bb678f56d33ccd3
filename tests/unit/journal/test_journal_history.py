"""Counts kept beside the rows, and retention: both stores, every change a file goes through."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.journal import FileRecord, Journal, Kind, MemoryJournal, SqliteJournal, State

LATER = time.time() + 3600  # a cutoff after every row written here: all filed rows are old


@pytest.fixture(params=["sqlite", "memory"])
def journal(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Journal]:
    store: Journal = (
        SqliteJournal(tmp_path / "journal.db") if request.param == "sqlite" else MemoryJournal()
    )
    yield store
    store.close()


def counts(journal: Journal, inbox: str = "in") -> dict[str, int]:
    return {state: n for (where, state), n in journal.counts().items() if where == inbox}


def move(journal: Journal, record: FileRecord, state: State, outcome: str | None = None) -> None:
    record.state, record.outcome = state, outcome
    journal.save(record)


def file(journal: Journal, name: str, inbox: str = "in") -> FileRecord:
    return journal.add_file(inbox, name, Kind.AUDIO, 10, 1, State.WAITING)


def prune_all(journal: Journal, twins: tuple[str, ...] = (), limit: int = 2) -> int:
    """A whole pass, ``limit`` rows at a time (small, so that the cursor is used)."""
    deleted, cursor = journal.prune_filed(LATER, twins, limit)
    while cursor is not None:
        more, cursor = journal.prune_filed(LATER, twins, limit, cursor)
        deleted += more
    return deleted


def done(journal: Journal, name: str, sha: str, **fields: object) -> FileRecord:
    record = file(journal, name)
    record.sha256, record.conversation_id = sha, f"conv-{name}"
    for key, value in fields.items():
        setattr(record, key, value)
    move(journal, record, State.FILED, "done")
    return record


class TestCounts:
    def test_every_transition_moves_one_file_from_its_state_to_the_next(
        self, journal: Journal
    ) -> None:
        a, b = file(journal, "a.wav"), file(journal, "b.wav")
        assert counts(journal) == {"waiting": 2}
        for state in (State.READY, State.UPLOADING, State.SUBMITTED, State.COMPLETED):
            move(journal, a, state)
            assert counts(journal) == {"waiting": 1, state.value: 1}
        move(journal, a, State.FILED, "done")
        move(journal, b, State.HELD)
        move(journal, b, State.FAILED)
        assert counts(journal) == {"filed_done": 1, "failed": 1}
        move(journal, b, State.FILED, "failed")
        assert counts(journal) == {"filed_done": 1, "filed_failed": 1}

    def test_a_save_that_changes_nothing_counted_and_a_second_inbox_stay_apart(
        self, journal: Journal
    ) -> None:
        a = file(journal, "a.wav")
        file(journal, "c.wav", inbox="other")
        a.data["attempts"] = 2
        journal.save(a)
        journal.save(a)
        assert counts(journal) == {"waiting": 1}
        assert counts(journal, "other") == {"waiting": 1}

    def test_a_retry_and_an_upload_put_back_after_a_crash(self, journal: Journal) -> None:
        failed = file(journal, "bad.wav")
        move(journal, failed, State.FILED, "failed")
        journal.mark_retried(failed)
        assert counts(journal) == {"filed_retried": 1}
        crashed = file(journal, "crash.wav")
        move(journal, crashed, State.UPLOADING)
        move(journal, crashed, State.READY)  # what recovery does with an upload cut short
        assert counts(journal) == {"filed_retried": 1, "ready": 1}

    def test_a_vanished_file_is_uncounted_and_a_rolled_back_one_never_was(
        self, journal: Journal
    ) -> None:
        gone = file(journal, "gone.wav")
        journal.forget(gone)
        with pytest.raises(RuntimeError), journal.transaction():
            kept = file(journal, "later.wav")
            move(journal, kept, State.READY)
            raise RuntimeError("rolled back")
        assert counts(journal) == {}
        with journal.transaction():
            for index in range(5):
                file(journal, f"{index}.wav")
        assert counts(journal) == {"waiting": 5}

    def test_pruning_leaves_the_filed_counts_as_they_were(self, journal: Journal) -> None:
        for index in range(5):
            done(journal, f"{index}.wav", sha=f"sha{index}")
        failed = file(journal, "bad.wav")
        move(journal, failed, State.FILED, "failed")
        assert prune_all(journal) == 6
        assert counts(journal) == {"filed_done": 5, "filed_failed": 1}
        assert journal.in_states((State.FILED,)) == []


class TestRetention:
    def test_only_filed_rows_older_than_the_cutoff_go(self, journal: Journal) -> None:
        old = done(journal, "old.wav", sha="a")
        waiting = file(journal, "waiting.wav")
        submitted = file(journal, "submitted.wav")
        move(journal, submitted, State.SUBMITTED)
        assert journal.prune_filed(time.time() - 3600, (), 100) == (0, None)
        assert prune_all(journal) == 1
        assert journal.get(old.id) is None
        assert {r.id for r in journal.active()} == {waiting.id, submitted.id}

    def test_the_first_done_copy_of_each_content_stays_where_duplicates_are_skipped(
        self, journal: Journal
    ) -> None:
        first = done(journal, "first.wav", sha="same")
        done(journal, "copy.wav", sha="same")
        other = done(journal, "other.wav", sha="else")
        done(journal, "upload.wav", sha="same-elsewhere")
        assert prune_all(journal, twins=("in",)) == 1
        twin = journal.completed_with_sha("in", "same", exclude_id=-1)
        assert twin is not None and twin.id == first.id
        assert journal.completed_with_sha("in", "else", exclude_id=-1) == journal.get(other.id)
        assert journal.completed_with_sha("in", "same-elsewhere", exclude_id=-1) is not None

    def test_inboxes_that_upload_duplicates_keep_no_copy(self, journal: Journal) -> None:
        done(journal, "first.wav", sha="same")
        assert prune_all(journal, twins=("another inbox",)) == 1
        assert journal.completed_with_sha("in", "same", exclude_id=-1) is None

    def test_a_conversation_keeps_its_latest_filed_part_and_its_record(
        self, journal: Journal
    ) -> None:
        for part in (1, 2, 3):
            done(journal, f"call-{part}.wav", sha=f"p{part}", conversation_key="call", part=part)
        conversation = journal.conversation("in", "call")
        conversation.conversation_id, conversation.last_part_done = "c1", 3
        journal.save_conversation(conversation)
        waiting = file(journal, "call-4.wav")
        waiting.conversation_key, waiting.part = "call", 4
        journal.save(waiting)
        assert prune_all(journal) == 2
        assert [r.part for r in journal.parts_of("in", "call")] == [3, 4]
        assert journal.conversation("in", "call").last_part_done == 3
        move(journal, waiting, State.FILED, "done")
        assert prune_all(journal) == 1
        assert [r.part for r in journal.parts_of("in", "call")] == [4]

    def test_a_pass_goes_through_rows_it_keeps_and_stops(self, journal: Journal) -> None:
        for index in range(7):
            done(journal, f"{index}.wav", sha=f"distinct{index}")
        deleted, cursor = journal.prune_filed(LATER, ("in",), 3)
        assert (deleted, cursor is not None) == (0, True)
        assert prune_all(journal, twins=("in",), limit=3) == 0
        assert len(journal.in_states((State.FILED,))) == 7


def test_a_journal_from_before_the_counts_is_counted_when_first_opened(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    journal = SqliteJournal(path)
    for name in ("a.wav", "b.wav"):
        record = file(journal, name)
        move(journal, record, State.FILED, "done")
    file(journal, "c.wav")
    journal.close()
    with sqlite3.connect(path) as db:  # as an earlier version left it: no counts kept
        db.executescript("DROP TABLE file_counts; DROP TRIGGER files_counted_on_update;")
    reader = SqliteJournal(path, readonly=True)
    assert counts(reader) == {"filed_done": 2, "waiting": 1}
    reader.close()
    upgraded = SqliteJournal(path)
    assert counts(upgraded) == {"filed_done": 2, "waiting": 1}
    move(upgraded, file(upgraded, "d.wav"), State.READY)
    assert counts(upgraded) == {"filed_done": 2, "waiting": 1, "ready": 1}
    upgraded.close()
