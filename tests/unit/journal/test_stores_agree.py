"""Every store answers alike: the in-memory journal the stage tests use, the SQLite journal,
and the PostgreSQL journal several hosts share (on a real throwaway server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from daemon.journal import Journal, Kind, MemoryJournal, SqliteJournal, State
from daemon.journal.postgres import PostgresJournal


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    """A real store of each kind."""
    journal: Journal
    if request.param == "sqlite":
        journal = SqliteJournal(tmp_path / "journal.db")
    else:
        database = request.getfixturevalue("pg_database")
        journal = await PostgresJournal.open(database.journal_settings(), "host-a")
    yield journal
    await journal.close()


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
    a.state, a.outcome, a.filed_path = State.FILED, "failed", "x/a.wav"
    await journal.save(a)
    failure = await journal.filed_failure_at("in", "x/a.wav")
    seen.append([r.rel_path for r in await journal.recent_failures()])
    assert failure is not None
    await journal.mark_retried(failure, when=1.0)
    seen.append(((await journal.get(a.id)) or a).outcome)
    seen.append(await journal.setting("speed"))
    await journal.put_setting("speed", "1.5")
    await journal.put_setting("speed", "2.5")
    seen.append(await journal.setting("speed"))
    await journal.commit()
    return seen


async def test_every_store_tells_the_same_story(store: Journal) -> None:
    assert await story(store) == await story(MemoryJournal())
