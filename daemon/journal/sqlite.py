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
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from daemon.fsboundary import is_utf8
from daemon.model import ACTIVE_STATES, ConversationRecord, FileRecord, Kind, PruneCursor, State

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
-- The status page and /metrics read these on the event loop: latest failures in O(limit),
-- counts from the index alone rather than from every row's data.
CREATE INDEX IF NOT EXISTS files_failures ON files(outcome, updated_at);
CREATE INDEX IF NOT EXISTS files_counts ON files(inbox, state, outcome);
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
"""

# What ``counts`` reads: files by inbox and state (``filed_<outcome>`` once filed), kept with
# every change of state in the same transaction, so that a scrape never counts the rows. New
# rows are counted by the code that inserts them, a batch at a time (a trigger per row doubled
# the cost of journaling a backlog); changes and deletions by these triggers. Pruning filed
# rows does not lower their count: the filed counts are every file filed since the journal
# began.
_COUNT_KEY = (
    "CASE WHEN {0}.state = 'filed' THEN 'filed_' || coalesce({0}.outcome, '') ELSE {0}.state END"
)
_COUNTS_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS file_counts (
    inbox TEXT NOT NULL,
    state TEXT NOT NULL,
    files INTEGER NOT NULL,
    PRIMARY KEY (inbox, state)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS files_counted_on_update AFTER UPDATE OF inbox, state, outcome ON files
WHEN OLD.inbox IS NOT NEW.inbox OR OLD.state IS NOT NEW.state OR OLD.outcome IS NOT NEW.outcome
BEGIN
    UPDATE file_counts SET files = files - 1
        WHERE inbox = OLD.inbox AND state = {_COUNT_KEY.format("OLD")};
    INSERT INTO file_counts (inbox, state, files) VALUES (NEW.inbox, {_COUNT_KEY.format("NEW")}, 1)
        ON CONFLICT (inbox, state) DO UPDATE SET files = files + 1;
END;
CREATE TRIGGER IF NOT EXISTS files_counted_on_delete AFTER DELETE ON files
WHEN OLD.state != 'filed'
BEGIN
    UPDATE file_counts SET files = files - 1
        WHERE inbox = OLD.inbox AND state = {_COUNT_KEY.format("OLD")};
END;
"""
_COUNT_ROWS = f"SELECT inbox, {_COUNT_KEY.format('files')}, COUNT(*) FROM files GROUP BY 1, 2"
# A journal from before the counts were kept is counted once, when first opened to write.
_COUNT_EVERY_ROW = f"INSERT INTO file_counts (inbox, state, files) {_COUNT_ROWS};"
_COUNT_NEW = (
    "INSERT INTO file_counts (inbox, state, files) VALUES (?, ?, ?)"
    " ON CONFLICT (inbox, state) DO UPDATE SET files = files + excluded.files"
)
_INSERT_FILE = (
    "INSERT INTO files (id, inbox, rel_path, kind, size, mtime_ns, state, data, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Retention, oldest filed rows first from a cursor; then those of them nothing needs. What stays
# is what ``Journal.prune_filed`` promises: a conversation's latest filed part, and the first
# done file of each content in the inboxes named (a JSON list).
_PRUNE_EXAMINE = (
    "SELECT id, updated_at FROM files INDEXED BY files_filed_at"
    " WHERE state = 'filed' AND updated_at < ? AND (updated_at, id) > (?, ?)"
    " ORDER BY updated_at, id LIMIT ?"
)
_PRUNE_DELETE = """
DELETE FROM files AS f WHERE f.id IN (SELECT value FROM json_each(?))
AND NOT (
    f.conversation_key IS NOT NULL AND f.id = (
        SELECT max(g.id) FROM files AS g
        WHERE g.inbox = f.inbox AND g.conversation_key = f.conversation_key AND g.state = 'filed'
    )
)
AND NOT (
    f.outcome = 'done' AND f.conversation_id IS NOT NULL AND f.sha256 IS NOT NULL
    AND f.inbox IN (SELECT value FROM json_each(?))
    AND f.id = (
        SELECT min(g.id) FROM files AS g
        WHERE g.inbox = f.inbox AND g.sha256 = f.sha256 AND g.outcome = 'done'
            AND g.conversation_id IS NOT NULL
    )
)
"""

_FILE_COLUMNS = tuple(f.name for f in fields(FileRecord))
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
                + _COUNTS_SCHEMA
                + ("" if counted else _COUNT_EVERY_ROW)
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
            journal.counts()
        except sqlite3.DatabaseError as exc:
            raise JournalDamaged(_DAMAGED.format(path=path, error=exc)) from exc
        return journal

    @classmethod
    def in_state_dir(cls, state_dir: Path, *, readonly: bool = False) -> SqliteJournal:
        return cls(state_dir / JOURNAL_NAME, readonly=readonly)

    def close(self) -> None:
        self.commit()
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

    def commit(self) -> None:
        """Commit what the current turn wrote (nothing to do when every write commits itself)."""
        try:
            self._insert_pending()
        finally:
            self._commit_scheduled = False
        if self._db.in_transaction:
            self._db.execute("COMMIT")

    def try_commit(self) -> bool:
        """``commit``, but a full disk goes to ``on_full`` instead of raising: False then.

        SQLite rolls the transaction back when a COMMIT finds the disk full: what the turn
        wrote is not kept. Rows written again later (every save writes the whole row) are
        whole again; a file whose first row was lost is still followed by the running daemon.
        """
        try:
            self.commit()
        except sqlite3.OperationalError as exc:
            if self.on_full is None or exc.sqlite_errorcode != sqlite3.SQLITE_FULL:
                raise
            self.on_full(exc)
            return False
        return True

    def _commit_turn(self) -> None:
        self.try_commit()

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
        self._db.executemany(_INSERT_FILE, rows)
        added = Counter((row[1], row[6]) for row in rows)
        self._db.executemany(_COUNT_NEW, [(*key, count) for key, count in added.items()])

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group many writes into one commit (startup scans of large backlogs)."""
        self.commit()
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

    def add_file(
        self, inbox: str, rel_path: str, kind: Kind, size: int, mtime_ns: int, state: State
    ) -> FileRecord:
        now = time.time()
        data = {"times": {"seen": now}}
        if self._next_id is None:
            (highest,) = self._db.execute("SELECT max(id) FROM files").fetchone()
            self._next_id = (highest or 0) + 1
        file_id, self._next_id = self._next_id, self._next_id + 1
        row = (file_id, inbox, _text(rel_path), kind.value, size, mtime_ns, state.value)
        self._pending.append((*row, json.dumps(data), now))
        if self._in_block or self._schedule is not None:
            self._open_turn()  # inserted with the others at the next statement or commit
        else:
            self._db.execute("BEGIN")  # a write on its own commits before it returns
            self._insert_pending()
            self._db.execute("COMMIT")
        return FileRecord(file_id, inbox, rel_path, kind, size, mtime_ns, state, data=data)

    def save(self, record: FileRecord) -> None:
        assignments = ", ".join(f"{name} = ?" for name in _FILE_COLUMNS[1:])
        values = [_column_value(getattr(record, name)) for name in _FILE_COLUMNS[1:]]
        self._write(
            f"UPDATE files SET {assignments}, updated_at = ? WHERE id = ?",
            (*values, time.time(), record.id),
        )

    def forget(self, record: FileRecord) -> None:
        """Drop a row whose file vanished before anything was sent."""
        self._write("DELETE FROM files WHERE id = ?", (record.id,))

    def get(self, file_id: int) -> FileRecord | None:
        row = self._read("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return _file_from_row(row) if row else None

    def active(self, inbox: str | None = None) -> list[FileRecord]:
        """Every row not yet filed (optionally of one inbox)."""
        # Named states, not ``!= 'filed'``: the index finds them without reading the history.
        query = f"SELECT * FROM files WHERE state IN ({_ACTIVE})"
        params: tuple[Any, ...] = ()
        if inbox is not None:
            query += " AND inbox = ?"
            params = (inbox,)
        return [_file_from_row(row) for row in self._read(query + " ORDER BY id", params)]

    def in_states(self, states: Iterable[State]) -> list[FileRecord]:
        wanted = tuple(state.value for state in states)
        marks = ", ".join("?" for _ in wanted)
        rows = self._read(f"SELECT * FROM files WHERE state IN ({marks}) ORDER BY id", wanted)
        return [_file_from_row(row) for row in rows]

    def completed_with_sha(self, inbox: str, sha256: str, exclude_id: int) -> FileRecord | None:
        """The earliest file of this inbox with this content that reached done/."""
        row = self._read(
            "SELECT * FROM files WHERE inbox = ? AND sha256 = ? AND outcome = 'done' AND id != ?"
            " AND conversation_id IS NOT NULL ORDER BY id LIMIT 1",
            (inbox, sha256, exclude_id),
        ).fetchone()
        return _file_from_row(row) if row else None

    def parts_of(self, inbox: str, key: str) -> list[FileRecord]:
        rows = self._read(
            "SELECT * FROM files WHERE inbox = ? AND conversation_key = ? ORDER BY id",
            (inbox, _text(key)),
        )
        return [_file_from_row(row) for row in rows]

    def counts(self) -> dict[tuple[str, str], int]:
        """(inbox, state or ``filed_<outcome>``) -> number of files, read from the counts."""
        try:
            rows = self._read("SELECT inbox, state, files FROM file_counts WHERE files != 0")
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            # A journal from before the counts were kept, read by ``status`` (read-only)
            # before a daemon of this version opened it: its rows, counted once here.
            rows = self._read(_COUNT_ROWS)
        return {(row[0], row[1]): row[2] for row in rows}

    def recent_failures(self, limit: int = 20) -> list[FileRecord]:
        rows = self._read(
            "SELECT * FROM files WHERE outcome = 'failed' ORDER BY updated_at DESC LIMIT ?",
            (limit,),
        )
        return [_file_from_row(row) for row in rows]

    def prune_filed(
        self,
        before: float,
        keep_twins_in: Collection[str],
        limit: int,
        after: PruneCursor | None = None,
    ) -> tuple[int, PruneCursor | None]:
        """See ``Journal.prune_filed``: up to ``limit`` filed rows examined, those not needed
        deleted in the same statement; the cursor to go on from."""
        start = after or (-1e300, 0)
        examined = self._read(_PRUNE_EXAMINE, (before, *start, limit)).fetchall()
        if not examined:
            return 0, None
        ids = json.dumps([row[0] for row in examined])
        twins = json.dumps(sorted(keep_twins_in))
        deleted = self._write(_PRUNE_DELETE, (ids, twins)).rowcount
        last = examined[-1]
        return deleted, ((last[1], last[0]) if len(examined) == limit else None)

    # ------------------------------------------------------------------ conversations

    def conversation(self, inbox: str, key: str) -> ConversationRecord:
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

    def save_conversation(self, record: ConversationRecord) -> None:
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

    def conversations(self) -> list[ConversationRecord]:
        rows = self._read("SELECT inbox, key FROM conversations ORDER BY inbox, key")
        return [self.conversation(row[0], _untext(row[1])) for row in rows.fetchall()]

    # ------------------------------------------------------------------ operator commands

    def filed_failure_at(self, inbox: str, filed_path: str) -> FileRecord | None:
        """The failure filed under ``filed_path`` (relative to the inbox's failed/), if any."""
        row = self._read(
            "SELECT * FROM files WHERE inbox = ? AND filed_path = ? AND state = 'filed'"
            " AND outcome = 'failed' ORDER BY id DESC LIMIT 1",
            (inbox, _text(filed_path)),
        ).fetchone()
        return _file_from_row(row) if row else None

    def mark_retried(self, record: FileRecord, when: float | None = None) -> None:
        """The operator sent this failure back to its inbox: keep the row, stop counting it."""
        record.outcome = "retried"
        record.stamp("retried", when)
        self.save(record)


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
