"""The journal keeps file names of any bytes losslessly, and finds them again by name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from daemon.journal import Kind, SqliteJournal, State

NAMES = [
    os.fsdecode(b"caf\xe9.wav"),  # Latin-1, not UTF-8
    "line\nbreak\x1b[31m.wav",
    "caf\u00e9 \U0001f3a4.wav",  # UTF-8 stays text
    "d" * 251 + ".wav",
]


@pytest.mark.parametrize("name", NAMES)
async def test_names_round_trip_through_the_journal(tmp_path: Path, name: str) -> None:
    journal = SqliteJournal(tmp_path / "journal.db")
    record = await journal.add_file("inbox", f"sub/{name}", Kind.AUDIO, 1, 1, State.WAITING)
    record.conversation_key = name
    record.filed_path = f"sub/{name}"
    record.state, record.outcome = State.FILED, "failed"
    await journal.save(record)
    await journal.close()

    again = SqliteJournal(tmp_path / "journal.db")
    [back] = [r for r in await again.in_states((State.FILED,))]
    assert os.fsencode(back.rel_path) == os.fsencode(f"sub/{name}")
    assert back.conversation_key == name
    assert await again.filed_failure_at("inbox", f"sub/{name}") is not None
    assert [r.id for r in await again.parts_of("inbox", name)] == [back.id]
    await again.close()
