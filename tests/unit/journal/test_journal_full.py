"""A journal commit that finds its disk full is reported, not raised, and later commits work."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from daemon.journal import Kind, SqliteJournal, State


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (needs root to mount; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "state"
    folder.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


class TestFullDisk:
    """The end-of-turn commit tells ``on_full`` instead of raising into the event loop."""

    async def test_reported_then_recovers(self, tiny_disk: Path) -> None:
        journal = SqliteJournal.in_state_dir(tiny_disk)
        turns: list[Callable[[], None]] = []
        journal.commit_per_turn(turns.append)
        reported: list[sqlite3.Error] = []
        journal.on_full = reported.append
        await journal.add_file("/in", "before.wav", Kind.AUDIO, 10, 1, State.WAITING)
        turns.pop()()
        filler = fill(tiny_disk)
        for index in range(200):
            await journal.add_file("/in", f"f{index}.wav", Kind.AUDIO, 10, 1, State.WAITING)
        turns.pop()()  # would raise sqlite3.OperationalError without on_full
        assert [error.sqlite_errorcode for error in reported] == [sqlite3.SQLITE_FULL]
        filler.unlink()
        await journal.add_file("/in", "after.wav", Kind.AUDIO, 10, 1, State.WAITING)
        assert await journal.try_commit()
        await journal.close()
        reader = SqliteJournal.in_state_dir(tiny_disk, readonly=True)
        names = {r.rel_path for r in await reader.in_states((State.WAITING,))}
        await reader.close()
        assert {"before.wav", "after.wav"} <= names

    async def test_without_a_listener_it_raises(self, tiny_disk: Path) -> None:
        journal = SqliteJournal.in_state_dir(tiny_disk)
        fill(tiny_disk)
        with pytest.raises(sqlite3.OperationalError):
            for index in range(200):
                await journal.add_file("/in", f"f{index}.wav", Kind.AUDIO, 10, 1, State.WAITING)
