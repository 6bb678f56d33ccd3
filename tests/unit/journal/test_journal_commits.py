"""The journal's commits: one per write by default, one per loop turn when the daemon asks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from daemon.journal import Kind, SqliteJournal, State


async def states_on_disk(path: Path) -> list[str]:
    """What another process would read now (a second, read-only connection)."""
    reader = SqliteJournal(path, readonly=True)
    try:
        return [record.state.value for record in await reader.active()]
    finally:
        await reader.close()


async def test_without_batching_every_write_is_on_disk_at_once(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "journal.db")
    record = await journal.add_file("inbox", "a.wav", Kind.AUDIO, 10, 1, State.WAITING)
    assert await states_on_disk(journal.path) == ["waiting"]
    record.state = State.READY
    await journal.save(record)
    assert await states_on_disk(journal.path) == ["ready"]
    await journal.close()


async def test_writes_of_one_turn_share_the_commit_that_runs_after_it(tmp_path: Path) -> None:
    scheduled: list[Callable[[], None]] = []
    journal = SqliteJournal(tmp_path / "journal.db")
    journal.commit_per_turn(scheduled.append)
    first = await journal.add_file("inbox", "a.wav", Kind.AUDIO, 10, 1, State.WAITING)
    await journal.add_file("inbox", "b.wav", Kind.AUDIO, 10, 1, State.WAITING)
    first.state = State.READY
    await journal.save(first)
    assert len(scheduled) == 1, "one commit for the whole turn"
    assert await journal.get(first.id) is not None, "the writer reads its own writes at once"
    assert await states_on_disk(journal.path) == []
    scheduled.pop()()
    assert await states_on_disk(journal.path) == ["ready", "waiting"]
    await journal.close()


async def test_commit_now_makes_the_turns_writes_visible_before_anyone_acts(tmp_path: Path) -> None:
    scheduled: list[Callable[[], None]] = []
    journal = SqliteJournal(tmp_path / "journal.db")
    journal.commit_per_turn(scheduled.append)
    await journal.add_file("inbox", "a.wav", Kind.AUDIO, 10, 1, State.WAITING)
    await journal.commit()
    assert await states_on_disk(journal.path) == ["waiting"]
    scheduled.pop()()  # the commit scheduled for the turn's end finds nothing left to do
    await journal.close()


async def test_a_transaction_keeps_what_the_turn_wrote_before_it_even_if_it_fails(
    tmp_path: Path,
) -> None:
    scheduled: list[Callable[[], None]] = []
    journal = SqliteJournal(tmp_path / "journal.db")
    journal.commit_per_turn(scheduled.append)
    await journal.add_file("inbox", "kept.wav", Kind.AUDIO, 10, 1, State.WAITING)
    try:
        async with journal.transaction():
            await journal.add_file("inbox", "lost.wav", Kind.AUDIO, 10, 1, State.WAITING)
            raise RuntimeError("the batch failed")
    except RuntimeError:
        pass
    assert [record.rel_path for record in await journal.active()] == ["kept.wav"]
    await journal.close()


async def test_closing_commits_the_last_turn(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "journal.db")
    journal.commit_per_turn(lambda commit: None)  # a loop that never gets to run it
    await journal.add_file("inbox", "a.wav", Kind.AUDIO, 10, 1, State.WAITING)
    await journal.close()
    assert await states_on_disk(journal.path) == ["waiting"]


async def test_with_the_event_loop_the_commit_follows_the_turn(tmp_path: Path) -> None:
    journal = SqliteJournal(tmp_path / "journal.db")
    journal.commit_per_turn(asyncio.get_running_loop().call_soon)
    await journal.add_file("inbox", "a.wav", Kind.AUDIO, 10, 1, State.WAITING)
    assert await states_on_disk(journal.path) == []
    await asyncio.sleep(0)
    assert await states_on_disk(journal.path) == ["waiting"]
    await journal.close()
