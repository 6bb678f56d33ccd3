"""The journal kept in SQLite in ``state_dir``: the single source of truth about every file.

Every state change is committed before the action that depends on it (WAL mode), so after a
crash the journal says exactly what may have happened: ``uploading``
without a job id goes back to ``ready``; ``submitted`` resumes tracking; a final state not yet
``filed`` is filed again. The journal never holds a secret or a token.

One thread (the daemon's event loop) writes; ``status`` and friends read from other processes,
which WAL allows while the daemon runs.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from daemon.fsboundary import is_utf8
from daemon.journal.sqlite_upkeep import (
    COUNT_EVERY_ROW,
    COUNT_NEW,
    COUNT_ROWS,
    COUNTS_SCHEMA,
    INSERT_FILE,
    PRUNE_DELETE,
    PRUNE_EXAMINE,
)
from daemon.model import (
    ACTIVE_STATES,
    ActiveFile,
    ConversationRecord,
    FileRecord,
    Kind,
    PruneCursor,
    State,
)

JOURNAL_NAME = "journal.sqlite3"
_DAMAGED = (
    "the journal {path} cannot be read ({error}). Stop here and move it aside "
    "(mv {path} {path}.damaged), then start again: files already in done/ and failed/ stay "
    "there, and files still in the inboxes are sent again"
)


class JournalDamaged(Exception):
    """The journal cannot be read; the message says what the operator does about it."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    inbox TEXT NOT NULL,
    rel_path TEXT NOT NULL,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    state TEXT NOT NULL,
    profile TEXT,
    sha256 TEXT,
    conversation_key TEXT,
    part INTEGER,
    conversation_id TEXT,
    job_id TEXT,
    outcome TEXT,
    reason TEXT,
    filed_path TEXT,
    data TEXT NOT NULL DEFAULT '{}',
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS files_state ON files(state);
CREATE INDEX IF NOT EXISTS files_path ON files(inbox, rel_path);
CREATE INDEX IF NOT EXISTS files_sha ON files(inbox, sha256);
-- The status page reads the latest failures on the event loop, in O(limit). Counts are kept
-- in file_counts (sqlite_upkeep): the index they were once read from only slowed inserts.
CREATE INDEX IF NOT EXISTS files_failed_at ON files(updated_at) WHERE outcome = 'failed';
DROP INDEX IF EXISTS files_failures;
DROP INDEX IF EXISTS files_counts;
-- Retention walks filed rows oldest first; conversations find their parts; retry its failure.
CREATE INDEX IF NOT EXISTS files_filed_at ON files(updated_at) WHERE state = 'filed';
CREATE INDEX IF NOT EXISTS files_conversation ON files(inbox, conversation_key)
    WHERE conversation_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS files_failed_path ON files(inbox, filed_path) WHERE outcome = 'failed';
CREATE TABLE IF NOT EXISTS conversations (
    inbox TEXT NOT NULL,
    key TEXT NOT NULL,
    conversation_id TEXT,
    last_part_done INTEGER NOT NULL DEFAULT 0,
    last_part_assigned INTEGER NOT NULL DEFAULT 0,
    rejected INTEGER NOT NULL DEFAULT 0,
    data TEXT NOT NULL DEFAULT '{}',
    updated_at REAL NOT NULL,
    PRIMARY KEY (inbox, key)
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at REAL NOT NULL
);
"""

# New rows gathered before they are inserted anyway: one statement each costs little more.
_PENDING_ROWS = 2048
_FILE_COLUMNS = tuple(f.name for f in fields(FileRecord))
_SAVE = (
    "UPDATE files SET "
    + ", ".join(f"{name} = ?" for name in _FILE_COLUMNS[1:])
    + ", updated_at = ? WHERE id = ?"
)
_ACTIVE = ", ".join(f"'{state.value}'" for state in ACTIVE_STATES)


class SqliteJournal:
    """The journal in one SQLite file (see ``daemon.journal.base.Journal`` for the contract).

    Every write commits before it returns, unless ``commit_per_turn`` is on: then the writes of
    one turn of the daemon's event loop share a commit.
    """

    def __init__(self, path: Path, *, readonly: bool = False) -> None:
        self.path = path
        if readonly:
            uri = f"file:{path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=10)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, timeout=10)
            self._db.execute("PRAGMA journal_mode=WAL")
            # In WAL mode NORMAL keeps every commit across a crash of this process (SIGKILL
            # included); only a power cut may lose the last few, which at worst re-uploads a
            # file, inside the at-least-once window. FULL cost 0.4 ms of fsync per commit on
            # the event loop, six commits a file: the difference between 1.3 and 1.1 in
            # batch time against the job limit.
            self._db.execute("PRAGMA synchronous=NORMAL")
            counted = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'file_counts'"
            ).fetchone()
            self._db.executescript(
                "BEGIN IMMEDIATE;"
                + _SCHEMA
                + COUNTS_SCHEMA
                + ("" if counted else COUNT_EVERY_ROW)
                + "COMMIT;"
            )
        self._db.row_factory = sqlite3.Row
        self._schedule: Callable[[Callable[[], None]], object] | None = None
        self._commit_scheduled = False
        # New rows not yet inserted: ``add_file`` gathers them and the next statement inserts
        # them all at once (see ``_insert_pending``). Their ids are handed out here, after the
        # highest in the journal: this process is the only one that adds files.
        self._pending: list[tuple[Any, ...]] = []
        self._next_id: int | None = None
        self._in_block = False  # inside ``transaction()``
        # Told, instead of an exception, when the commit at the end of a turn finds the disk
        # full (see ``try_commit``).
        self.on_full: Callable[[Exception], None] | None = None

    @property
    def location(self) -> str:
        return str(self.path)

    @classmethod
    def checked_in_state_dir(cls, state_dir: Path) -> SqliteJournal:
        """The journal in ``state_dir``, read once: a damaged one raises ``JournalDamaged``."""
        path = state_dir / JOURNAL_NAME
        try:
            journal = cls(path)
            journal.check_readable()
        except sqlite3.DatabaseError as exc:
            raise JournalDamaged(_DAMAGED.format(path=path, error=exc)) from exc
        return journal

    def check_readable(self) -> None:
        """Read the whole schema once: a damaged file raises ``sqlite3.DatabaseError``."""
        self._db.execute("SELECT COUNT(*) FROM conversations").fetchone()

    @classmethod
    def in_state_dir(cls, state_dir: Path, *, readonly: bool = False) -> SqliteJournal:
        return cls(state_dir / JOURNAL_NAME, readonly=readonly)

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        """``close`` for code that runs without an event loop (operator commands, tests)."""
        self._commit_now()
        self._db.close()

    def commit_per_turn(self, schedule: Callable[[Callable[[], None]], object]) -> None:
        """Let the writes of one loop turn share a commit; ``schedule`` is ``loop.call_soon``.

        A commit costs more than the write it carries, and a burst of finished jobs makes many
        writes in one turn: one commit per write was a third of the daemon's event loop in the
        batch benchmark. The commit runs after the turn, before any I/O the turn started can
        answer; a SIGKILL inside the turn loses its writes as it would have lost the ones not
        yet made. Call ``commit`` before another thread or process acts on what was written.
        """
        self._schedule = schedule

    async def commit(self) -> None:
        """Commit what the current turn wrote (nothing to do when every write commits itself)."""
        self._commit_now()

    def _commit_now(self) -> None:
        try:
            self._insert_pending()
        finally:
            self._commit_scheduled = False
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    async def try_commit(self) -> bool:
        return self._try_commit_now()

    def _try_commit_now(self) -> bool:
        """``commit``, but a full disk goes to ``on_full`` instead of raising: False then.

        SQLite rolls the transaction back when a COMMIT finds the disk full: what the turn
        wrote is not kept. Rows written again later (every save writes the whole row) are
        whole again; a file whose first row was lost is still followed by the running daemon.
        """
        try:
            self._commit_now()
        except sqlite3.OperationalError as exc:
            if self.on_full is None or exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                raise
            self.on_full(exc)
            return False
        return True

    def _commit_turn(self) -> None:
        self._try_commit_now()

    def _write(self, sql: str, parameters: tuple[Any, ...]) -> sqlite3.Cursor:
        self._insert_pending()
        self._open_turn()
        return self._db.execute(sql, parameters)

    def _open_turn(self) -> None:
        """With commits per turn: the turn's transaction is open and its commit scheduled."""
        if self._schedule is not None:
            if not self._db.in_transaction:
                self._db.execute("BEGIN")
            if not self._commit_scheduled:
                self._commit_scheduled = True
                self._schedule(self._commit_turn)

    def _read(self, sql: str, parameters: tuple[Any, ...] = ()) -> sqlite3.Cursor:
        self._insert_pending()  # the writer reads its own writes
        return self._db.execute(sql, parameters)

    def _insert_pending(self) -> None:
        """Insert the rows ``add_file`` gathered, with one statement, and count them.

        A backlog found by a scan is a hundred thousand ``add_file`` calls in a few turns:
        one INSERT each cost more than everything else the scan does per file.
        """
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        self._db.executemany(INSERT_FILE, rows)
        added = Counter((row[1], row[6]) for row in rows)
        self._db.executemany(COUNT_NEW, [(*key, count) for key, count in added.items()])

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Group many writes into one commit (startup scans of large backlogs)."""
        self._commit_now()
        self._db.execute("BEGIN IMMEDIATE")
        self._in_block = True
        try:
            yield
            self._insert_pending()
        except BaseException:
            self._pending.clear()
            self._db.execute("ROLLBACK")
            raise
        finally:
            self._in_block = False
        self._db.execute("COMMIT")

    # ------------------------------------------------------------------ files

    async def add_file(
        self, inbox: str, rel_path: str, kind: Kind, size: int, mtime_ns: int, state: State
    ) -> FileRecord:
        now = time.time()
        data = {"times": {"seen": now}}
        if self._next_id is None:
            (highest,) = self._db.execute("SELECT max(id) FROM files").fetchone()
            self._next_id = (highest or 0) + 1
        file_id, self._next_id = self._next_id, self._next_id + 1
        row = (file_id, inbox, _text(rel_path), kind.value, size, mtime_ns, state.value)
        # What json.dumps(data) writes, without its encoder: a scan adds files by the thousand.
        self._pending.append((*row, f'{{"times": {{"seen": {now!r}}}}}', now))
        if self._in_block or self._schedule is not None:
            self._open_turn()  # inserted with the others at the next statement or commit
            if len(self._pending) >= _PENDING_ROWS:
                self._insert_pending()  # a scan of 100k files: not all of them in memory
        else:
            self._db.execute("BEGIN")  # a write on its own commits before it returns
            self._insert_pending()
            self._db.execute("COMMIT")
        return FileRecord(file_id, inbox, rel_path, kind, size, mtime_ns, state, data=data)

    async def save(self, record: FileRecord) -> bool:
        values = [_column_value(getattr(record, name)) for name in _FILE_COLUMNS[1:]]
        self._write(_SAVE, (*values, time.time(), record.id))
        return True  # one host alone holds every file

    async def forget(self, record: FileRecord) -> None:
        """Drop a row whose file vanished before anything was sent."""
        self._write("DELETE FROM files WHERE id = ?", (record.id,))

    async def get(self, file_id: int) -> FileRecord | None:
        row = self._read("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return _file_from_row(row) if row else None

    async def active(self, inbox: str | None = None) -> list[FileRecord]:
        """Every row not yet filed (optionally of one inbox)."""
        # Named states, not ``!= 'filed'``: the index finds them without reading the history.
        query = f"SELECT * FROM files WHERE state IN ({_ACTIVE})"
        params: tuple[Any, ...] = ()
        if inbox is not None:
            query += " AND inbox = ?"
            params = (inbox,)
        return [_file_from_row(row) for row in self._read(query + " ORDER BY id", params)]

    async def active_files(self, inbox: str | None = None) -> list[ActiveFile]:
        query = (
            "SELECT id, inbox, rel_path, state, size, mtime_ns, conversation_key FROM files"
            f" WHERE state IN ({_ACTIVE})"
        )
        params: tuple[Any, ...] = ()
        if inbox is not None:
            query += " AND inbox = ?"
            params = (inbox,)
        return [
            ActiveFile(
                row[0], row[1], _untext(row[2]), State(row[3]), row[4], row[5], _untext(row[6])
            )
            for row in self._read(query + " ORDER BY id", params)
        ]

    async def in_states(self, states: Iterable[State]) -> list[FileRecord]:
        wanted = tuple(state.value for state in states)
        marks = ", ".join("?" for _ in wanted)
        rows = self._read(f"SELECT * FROM files WHERE state IN ({marks}) ORDER BY id", wanted)
        return [_file_from_row(row) for row in rows]

    async def completed_with_sha(
        self, inbox: str, sha256: str, exclude_id: int
    ) -> FileRecord | None:
        """The earliest file of this inbox with this content that reached done/."""
        row = self._read(
            "SELECT * FROM files WHERE inbox = ? AND sha256 = ? AND outcome = 'done' AND id != ?"
            " AND conversation_id IS NOT NULL ORDER BY id LIMIT 1",
            (inbox, sha256, exclude_id),
        ).fetchone()
        return _file_from_row(row) if row else None

    async def parts_of(self, inbox: str, key: str) -> list[FileRecord]:
        rows = self._read(
            "SELECT * FROM files WHERE inbox = ? AND conversation_key = ? ORDER BY id",
            (inbox, _text(key)),
        )
        return [_file_from_row(row) for row in rows]

    async def counts(self) -> dict[tuple[str, str], int]:
        """(inbox, state or ``filed_<outcome>``) -> number of files, read from the counts."""
        try:
            rows = self._read("SELECT inbox, state, files FROM file_counts WHERE files != 0")
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            # A journal from before the counts were kept, read by ``status`` (read-only)
            # before a daemon of this version opened it: its rows, counted once here.
            rows = self._read(COUNT_ROWS)
        return {(row[0], row[1]): row[2] for row in rows}

    async def recent_failures(self, limit: int = 20) -> list[FileRecord]:
        rows = self._read(
            "SELECT * FROM files WHERE outcome = 'failed' ORDER BY updated_at DESC LIMIT ?",
            (limit,),
        )
        return [_file_from_row(row) for row in rows]

    async def prune_filed(
        self,
        before: float,
        keep_twins_in: Collection[str],
        limit: int,
        after: PruneCursor | None = None,
    ) -> tuple[int, PruneCursor | None]:
        """See ``Journal.prune_filed``: up to ``limit`` filed rows examined, those not needed
        deleted in the same statement; the cursor to go on from."""
        start = after or (-1e300, 0)
        examined = self._read(PRUNE_EXAMINE, (before, *start, limit)).fetchall()
        if not examined:
            return 0, None
        ids = json.dumps([row[0] for row in examined])
        twins = json.dumps(sorted(keep_twins_in))
        deleted = self._write(PRUNE_DELETE, (ids, twins)).rowcount
        last = examined[-1]
        return deleted, ((last[1], last[0]) if len(examined) == limit else None)

    # ------------------------------------------------------------------ conversations

    async def conversation(self, inbox: str, key: str) -> ConversationRecord:
        row = self._read(
            "SELECT * FROM conversations WHERE inbox = ? AND key = ?", (inbox, _text(key))
        ).fetchone()
        if row is None:
            return ConversationRecord(inbox, key)
        return ConversationRecord(
            row["inbox"],
            _untext(row["key"]),
            row["conversation_id"],
            row["last_part_done"],
            row["last_part_assigned"],
            bool(row["rejected"]),
            json.loads(row["data"]),
        )

    async def save_conversation(self, record: ConversationRecord) -> None:
        self._write(
            "INSERT INTO conversations (inbox, key, conversation_id, last_part_done,"
            " last_part_assigned, rejected, data, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (inbox, key) DO UPDATE SET conversation_id = excluded.conversation_id,"
            " last_part_done = excluded.last_part_done,"
            " last_part_assigned = excluded.last_part_assigned, rejected = excluded.rejected,"
            " data = excluded.data, updated_at = excluded.updated_at",
            (
                record.inbox,
                _text(record.key),
                record.conversation_id,
                record.last_part_done,
                record.last_part_assigned,
                int(record.rejected),
                json.dumps(record.data),
                time.time(),
            ),
        )

    async def conversations(self) -> list[ConversationRecord]:
        rows = self._read("SELECT inbox, key FROM conversations ORDER BY inbox, key")
        return [await self.conversation(row[0], _untext(row[1])) for row in rows.fetchall()]

    # ------------------------------------------------------------------ operator commands

    async def filed_failure_at(self, inbox: str, filed_path: str) -> FileRecord | None:
        """The failure filed under ``filed_path`` (relative to the inbox's failed/), if any."""
        row = self._read(
            "SELECT * FROM files WHERE inbox = ? AND filed_path = ? AND state = 'filed'"
            " AND outcome = 'failed' ORDER BY id DESC LIMIT 1",
            (inbox, _text(filed_path)),
        ).fetchone()
        return _file_from_row(row) if row else None

    async def mark_retried(self, record: FileRecord, when: float | None = None) -> None:
        """The operator sent this failure back to its inbox: keep the row, stop counting it."""
        record.outcome = "retried"
        record.stamp("retried", when)
        await self.save(record)

    # ------------------------------------------------------------------ settings

    async def setting(self, name: str) -> str | None:
        row = self._read("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    async def put_setting(self, name: str, value: str) -> None:
        self._write(
            "INSERT INTO settings (name, value, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (name, value, time.time()),
        )


def _column_value(value: Any) -> Any:
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, StrEnum):
        return value.value
    return _text(value)


def _text(value: Any) -> Any:
    """A name as SQLite can keep it losslessly: TEXT when it is UTF-8, else its bytes (a BLOB).

    File names are decoded with surrogateescape, which SQLite's UTF-8 cannot store. The same
    name always maps to the same stored value, so lookups by name still match.
    """
    if isinstance(value, str) and not is_utf8(value):
        return os.fsencode(value)
    return value


def _untext(value: Any) -> Any:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _file_from_row(row: sqlite3.Row) -> FileRecord:
    values = {name: _untext(row[name]) for name in _FILE_COLUMNS}
    values["kind"] = Kind(values["kind"])
    values["state"] = State(values["state"])
    values["data"] = json.loads(values["data"])
    return FileRecord(**values)
