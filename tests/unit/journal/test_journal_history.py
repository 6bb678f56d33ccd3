"""Counts kept beside the rows, and retention: both stores, every change a file goes through."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.journal import (
    ActiveFile,
    FileRecord,
    Journal,
    Kind,
    MemoryJournal,
    SqliteJournal,
    State,
)

LATER = time.time() + 3600  # a cutoff after every row written here: all filed rows are old


@pytest.fixture(params=["sqlite", "memory"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    store: Journal = (
        SqliteJournal(tmp_path / "journal.db") if request.param == "sqlite" else MemoryJournal()
    )
    yield store
    await store.close()


async def counts(journal: Journal, inbox: str = "in") -> dict[str, int]:
    return {state: n for (where, state), n in (await journal.counts()).items() if where == inbox}


async def move(
    journal: Journal, record: FileRecord, state: State, outcome: str | None = None
) -> None:
    record.state, record.outcome = state, outcome
    await journal.save(record)


async def file(journal: Journal, name: str, inbox: str = "in") -> FileRecord:
    return await journal.add_file(inbox, name, Kind.AUDIO, 10, 1, State.WAITING)


async def prune_all(journal: Journal, twins: tuple[str, ...] = (), limit: int = 2) -> int:
    """A whole pass, ``limit`` rows at a time (small, so that the cursor is used)."""
    deleted, cursor = await journal.prune_filed(LATER, twins, limit)
    while cursor is not None:
        more, cursor = await journal.prune_filed(LATER, twins, limit, cursor)
        deleted += more
    return deleted


async def done(journal: Journal, name: str, sha: str, **fields: object) -> FileRecord:
    record = await file(journal, name)
    record.sha256, record.conversation_id = sha, f"conv-{name}"
    for key, value in fields.items():
        setattr(record, key, value)
    await move(journal, record, State.FILED, "done")
    return record


class TestCounts:
    async def test_every_transition_moves_one_file_from_its_state_to_the_next(
        self, journal: Journal
    ) -> None:
        a, b = await file(journal, "a.wav"), await file(journal, "b.wav")
        assert await counts(journal) == {"waiting": 2}
        for state in (State.READY, State.UPLOADING, State.SUBMITTED, State.COMPLETED):
            await move(journal, a, state)
            assert await counts(journal) == {"waiting": 1, state.value: 1}
        await move(journal, a, State.FILED, "done")
        await move(journal, b, State.HELD)
        await move(journal, b, State.FAILED)
        assert await counts(journal) == {"filed_done": 1, "failed": 1}
        await move(journal, b, State.FILED, "failed")
        assert await counts(journal) == {"filed_done": 1, "filed_failed": 1}

    async def test_a_save_that_changes_nothing_counted_and_a_second_inbox_stay_apart(
        self, journal: Journal
    ) -> None:
        a = await file(journal, "a.wav")
        await file(journal, "c.wav", inbox="other")
        a.data["attempts"] = 2
        await journal.save(a)
        await journal.save(a)
        assert await counts(journal) == {"waiting": 1}
        assert await counts(journal, "other") == {"waiting": 1}

    async def test_a_retry_and_an_upload_put_back_after_a_crash(self, journal: Journal) -> None:
        failed = await file(journal, "bad.wav")
        await move(journal, failed, State.FILED, "failed")
        await journal.mark_retried(failed)
        assert await counts(journal) == {"filed_retried": 1}
        crashed = await file(journal, "crash.wav")
        await move(journal, crashed, State.UPLOADING)
        await move(journal, crashed, State.READY)  # what recovery does with an upload cut short
        assert await counts(journal) == {"filed_retried": 1, "ready": 1}

    async def test_a_vanished_file_is_uncounted_and_a_rolled_back_one_never_was(
        self, journal: Journal
    ) -> None:
        gone = await file(journal, "gone.wav")
        await journal.forget(gone)
        with pytest.raises(RuntimeError):
            async with journal.transaction():
                kept = await file(journal, "later.wav")
                await move(journal, kept, State.READY)
                raise RuntimeError("rolled back")
        assert await counts(journal) == {}
        async with journal.transaction():
            for index in range(5):
                await file(journal, f"{index}.wav")
        assert await counts(journal) == {"waiting": 5}

    async def test_pruning_leaves_the_filed_counts_as_they_were(self, journal: Journal) -> None:
        for index in range(5):
            await done(journal, f"{index}.wav", sha=f"sha{index}")
        failed = await file(journal, "bad.wav")
        await move(journal, failed, State.FILED, "failed")
        assert await prune_all(journal) == 6
        assert await counts(journal) == {"filed_done": 5, "filed_failed": 1}
        assert await journal.in_states((State.FILED,)) == []


class TestRetention:
    async def test_only_filed_rows_older_than_the_cutoff_go(self, journal: Journal) -> None:
        old = await done(journal, "old.wav", sha="a")
        waiting = await file(journal, "waiting.wav")
        submitted = await file(journal, "submitted.wav")
        await move(journal, submitted, State.SUBMITTED)
        assert await journal.prune_filed(time.time() - 3600, (), 100) == (0, None)
        assert await prune_all(journal) == 1
        assert await journal.get(old.id) is None
        assert {r.id for r in await journal.active()} == {waiting.id, submitted.id}

    async def test_the_first_done_copy_of_each_content_stays_where_duplicates_are_skipped(
        self, journal: Journal
    ) -> None:
        first = await done(journal, "first.wav", sha="same")
        await done(journal, "copy.wav", sha="same")
        other = await done(journal, "other.wav", sha="else")
        await done(journal, "upload.wav", sha="same-elsewhere")
        assert await prune_all(journal, twins=("in",)) == 1
        twin = await journal.completed_with_sha("in", "same", exclude_id=-1)
        assert twin is not None and twin.id == first.id
        other_twin = await journal.completed_with_sha("in", "else", exclude_id=-1)
        assert other_twin == await journal.get(other.id)
        assert await journal.completed_with_sha("in", "same-elsewhere", exclude_id=-1) is not None

    async def test_inboxes_that_upload_duplicates_keep_no_copy(self, journal: Journal) -> None:
        await done(journal, "first.wav", sha="same")
        assert await prune_all(journal, twins=("another inbox",)) == 1
        assert await journal.completed_with_sha("in", "same", exclude_id=-1) is None

    async def test_a_conversation_keeps_its_latest_filed_part_and_its_record(
        self, journal: Journal
    ) -> None:
        for part in (1, 2, 3):
            name = f"call-{part}.wav"
            await done(journal, name, sha=f"p{part}", conversation_key="call", part=part)
        conversation = await journal.conversation("in", "call")
        conversation.conversation_id, conversation.last_part_done = "c1", 3
        await journal.save_conversation(conversation)
        waiting = await file(journal, "call-4.wav")
        waiting.conversation_key, waiting.part = "call", 4
        await journal.save(waiting)
        assert await prune_all(journal) == 2
        assert [r.part for r in await journal.parts_of("in", "call")] == [3, 4]
        assert (await journal.conversation("in", "call")).last_part_done == 3
        await move(journal, waiting, State.FILED, "done")
        assert await prune_all(journal) == 1
        assert [r.part for r in await journal.parts_of("in", "call")] == [4]

    async def test_a_pass_goes_through_rows_it_keeps_and_stops(self, journal: Journal) -> None:
        for index in range(7):
            await done(journal, f"{index}.wav", sha=f"distinct{index}")
        deleted, cursor = await journal.prune_filed(LATER, ("in",), 3)
        assert (deleted, cursor is not None) == (0, True)
        assert await prune_all(journal, twins=("in",), limit=3) == 0
        assert len(await journal.in_states((State.FILED,))) == 7


async def test_a_journal_from_before_the_counts_is_counted_when_first_opened(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.db"
    journal = SqliteJournal(path)
    for name in ("a.wav", "b.wav"):
        record = await file(journal, name)
        await move(journal, record, State.FILED, "done")
    await file(journal, "c.wav")
    await journal.close()
    with sqlite3.connect(path) as db:  # as an earlier version left it: no counts kept
        db.executescript("DROP TABLE file_counts; DROP TRIGGER files_counted_on_update;")
    reader = SqliteJournal(path, readonly=True)
    assert await counts(reader) == {"filed_done": 2, "waiting": 1}
    await reader.close()
    upgraded = SqliteJournal(path)
    assert await counts(upgraded) == {"filed_done": 2, "waiting": 1}
    await move(upgraded, await file(upgraded, "d.wav"), State.READY)
    assert await counts(upgraded) == {"filed_done": 2, "waiting": 1, "ready": 1}
    await upgraded.close()


async def test_active_files_list_what_active_holds_without_the_data(journal: Journal) -> None:
    waiting = await file(journal, "a.wav")
    held = await file(journal, "b.wav", inbox="other")
    held.conversation_key = "call"
    await move(journal, held, State.HELD)
    await done(journal, "c.wav", sha="c")
    assert await journal.active_files() == [
        ActiveFile(waiting.id, "in", "a.wav", State.WAITING, 10, 1, None),
        ActiveFile(held.id, "other", "b.wav", State.HELD, 10, 1, "call"),
    ]
    assert [entry.id for entry in await journal.active_files("other")] == [held.id]
