"""The in-memory journal the stage tests use answers as the SQLite journal does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.journal import Journal, Kind, MemoryJournal, SqliteJournal, State


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[Journal, Journal]]:
    sqlite = SqliteJournal(tmp_path / "journal.db")
    yield sqlite, MemoryJournal()
    await sqlite.close()


async def story(journal: Journal) -> list[object]:
    """One sequence of writes and reads; what every read answered."""
    seen = []
    a = await journal.add_file("in", "a.wav", Kind.AUDIO, 10, 1, State.WAITING)
    b = await journal.add_file("in", "b.wav", Kind.AUDIO, 20, 2, State.WAITING)
    c = await journal.add_file("other", "c.url", Kind.URL, 5, 3, State.WAITING)
    a.state, a.conversation_key, a.part, a.sha256 = State.READY, "call", 1, "f00"
    await journal.save(a)
    b.state, b.conversation_key, b.part = State.HELD, "call", 2
    await journal.save(b)
    copy = await journal.get(a.id)
    assert copy is not None
    copy.state = State.FAILED  # a copy: nothing changes until it is saved
    again = await journal.get(a.id)
    seen.append(again.state if again else None)
    a.state, a.outcome, a.conversation_id, a.filed_path = State.FILED, "done", "c1", "x/a.wav"
    await journal.save(a)
    await journal.forget(c)
    conversation = await journal.conversation("in", "call")
    seen.append((conversation.last_part_done, conversation.conversation_id))
    conversation.last_part_done, conversation.conversation_id = 1, "c1"
    await journal.save_conversation(conversation)
    with pytest.raises(RuntimeError):
        async with journal.transaction():
            await journal.forget(b)
            raise RuntimeError("rolled back")
    seen.append([r.rel_path for r in await journal.active()])
    seen.append([r.rel_path for r in await journal.active("in")])
    seen.append([r.rel_path for r in await journal.in_states((State.HELD, State.FILED))])
    seen.append([r.part for r in await journal.parts_of("in", "call")])
    found = await journal.completed_with_sha("in", "f00", exclude_id=-1)
    seen.append(found.rel_path if found else None)
    seen.append(await journal.completed_with_sha("in", "f00", exclude_id=a.id))
    seen.append(sorted((await journal.counts()).items()))
    seen.append([(r.inbox, r.key, r.last_part_done) for r in await journal.conversations()])
    await journal.commit()
    return seen


async def test_both_stores_tell_the_same_story(stores: tuple[Journal, Journal]) -> None:
    sqlite, memory = stores
    assert await story(sqlite) == await story(memory)
