"""The in-memory journal the stage tests use answers as the SQLite journal does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.journal import Journal, Kind, MemoryJournal, SqliteJournal, State


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Journal, Journal]]:
    sqlite = SqliteJournal(tmp_path / "journal.db")
    yield sqlite, MemoryJournal()
    sqlite.close()


def story(journal: Journal) -> list[object]:
    """One sequence of writes and reads; what every read answered."""
    seen = []
    a = journal.add_file("in", "a.wav", Kind.AUDIO, 10, 1, State.WAITING)
    b = journal.add_file("in", "b.wav", Kind.AUDIO, 20, 2, State.WAITING)
    c = journal.add_file("other", "c.url", Kind.URL, 5, 3, State.WAITING)
    a.state, a.conversation_key, a.part, a.sha256 = State.READY, "call", 1, "f00"
    journal.save(a)
    b.state, b.conversation_key, b.part = State.HELD, "call", 2
    journal.save(b)
    copy = journal.get(a.id)
    assert copy is not None
    copy.state = State.FAILED  # a copy: nothing changes until it is saved
    again = journal.get(a.id)
    seen.append(again.state if again else None)
    a.state, a.outcome, a.conversation_id, a.filed_path = State.FILED, "done", "c1", "x/a.wav"
    journal.save(a)
    journal.forget(c)
    conversation = journal.conversation("in", "call")
    seen.append((conversation.last_part_done, conversation.conversation_id))
    conversation.last_part_done, conversation.conversation_id = 1, "c1"
    journal.save_conversation(conversation)
    with pytest.raises(RuntimeError), journal.transaction():
        journal.forget(b)
        raise RuntimeError("rolled back")
    seen.append([r.rel_path for r in journal.active()])
    seen.append([r.rel_path for r in journal.active("in")])
    seen.append([r.rel_path for r in journal.in_states((State.HELD, State.FILED))])
    seen.append([r.part for r in journal.parts_of("in", "call")])
    found = journal.completed_with_sha("in", "f00", exclude_id=-1)
    seen.append(found.rel_path if found else None)
    seen.append(journal.completed_with_sha("in", "f00", exclude_id=a.id))
    seen.append(sorted(journal.counts().items()))
    seen.append([(r.inbox, r.key, r.last_part_done) for r in journal.conversations()])
    journal.commit()
    return seen


def test_both_stores_tell_the_same_story(stores: tuple[Journal, Journal]) -> None:
    sqlite, memory = stores
    assert story(sqlite) == story(memory)
