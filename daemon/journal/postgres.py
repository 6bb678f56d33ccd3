"""The journal in PostgreSQL, shared by the daemons of several hosts (``journal: {url: ...}``).

The same records as the SQLite journal (``sqlite.py``), in the tables of the project's own
migrations (``migrations/``), keyed by the inbox's configured id: one share is mounted at
different paths on different hosts. Names (paths, conversation keys) are stored as the file
system's bytes, so any name survives and is found again.

Every write is one statement, sent in one network round trip, and committed when it returns
(autocommit). While a ``transaction()`` block is open, every statement of this process runs in
it, on one connection, as on SQLite's one connection: the writes share one commit, an exception
rolls them all back, and a task that reads what another wrote meanwhile sees it. Outside
blocks, tasks use the pool's connections side by side.

``files.host_id`` names the host that holds a file: the host that first recorded it. A plain
``save`` never changes it, so the cluster's claims (later migrations) own that column. With
``this_host_only`` (a daemon in a cluster), ``active`` and ``in_states`` list only the files
this host holds, and ``save`` writes only a row this host holds: once another host took a file
over, this host's late writes are refused and logged, never applied.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, LiteralString

import psycopg
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool

from daemon.config.model import JournalSettings
from daemon.journal import migrations, pg_upkeep
from daemon.journal.pgconnect import APPLICATION_NAME, connect, connection_kwargs, explain
from daemon.journal.pgrows import (
    FILE_COLUMNS,
    column_value,
    conversation_from_row,
    file_from_row,
    name_bytes,
)
from daemon.logs import get_logger
from daemon.model import ActiveFile, ConversationRecord, FileRecord, Kind, PruneCursor, State

log = get_logger("symbl_inbox.journal")

# Connections the daemon keeps open: writes are short, so a few serve many tasks.
POOL_MIN, POOL_MAX = 1, 8
_SELECT_FILES: LiteralString = (
    "SELECT id, inbox, rel_path, kind, size, mtime_ns, state, profile, sha256, conversation_key,"
    " part, conversation_id, job_id, outcome, reason, filed_path, data FROM files"
)
_SAVE: LiteralString = (
    "UPDATE files SET inbox = %s, rel_path = %s, kind = %s, size = %s, mtime_ns = %s,"
    " state = %s, profile = %s, sha256 = %s, conversation_key = %s, part = %s,"
    " conversation_id = %s, job_id = %s, outcome = %s, reason = %s, filed_path = %s, data = %s,"
    " updated_at = clock_timestamp() WHERE id = %s"
)
_OWNED: LiteralString = " AND host_id = %s RETURNING id"
_SELECT_CONVERSATIONS: LiteralString = (
    "SELECT inbox, key, conversation_id, last_part_done, last_part_assigned, rejected, data"
    " FROM conversations"
)
Connection = psycopg.AsyncConnection[tuple[Any, ...]]


def application_name(host_id: str) -> str:
    """``symbl-inbox HOST``: what the server shows for this host's connections (63 bytes)."""
    return f"{APPLICATION_NAME} {host_id}".encode()[:63].decode(errors="ignore")


class _Held:
    """The connection of the ``transaction()`` block in force; ``open`` is False once it ended."""

    def __init__(self) -> None:
        self.connection: Connection | None = None
        self.ready = asyncio.Event()  # set once the connection is there, or the block failed
        self.open = True
        self.users = 0  # statements of other tasks running on it now
        self.idle = asyncio.Event()
        self.idle.set()
        self.finished = asyncio.Event()  # committed or rolled back: the pool sees the outcome


class SchemaNotReady(Exception):
    """The database has no journal yet, or one this code must not use; the message says."""


class PostgresJournal:
    """The journal in a PostgreSQL database (see ``daemon.journal.base.Journal``).

    Open it with ``await PostgresJournal.open(settings, host_id)``: that also brings the schema
    up to date (``migrate=False`` for readers such as ``status``, which only check it).
    """

    def __init__(
        self, settings: JournalSettings, pool: AsyncConnectionPool[Connection], host_id: str
    ) -> None:
        self.settings = settings
        self.host_id = host_id
        self._pool = pool
        # The transaction() block in force, which every statement of this process joins.
        self._held: _Held | None = None
        self.on_full: Callable[[Exception], None] | None = None
        # A daemon of a cluster works on the files it holds only (see the module's docstring).
        self.this_host_only = False

    @classmethod
    async def open(
        cls,
        settings: JournalSettings,
        host_id: str,
        *,
        migrate: bool = True,
        pool_max: int = POOL_MAX,
        idle_transaction_seconds: float | None = None,
    ) -> PostgresJournal:
        """Connect, then migrate the schema (or, without ``migrate``, check it is usable).
        A transaction of the pool's left idle ``idle_transaction_seconds`` is ended by the
        server (a cluster's lease: rows a cut-off host locked are free for its takeover).

        Raises ``pgconnect.Unavailable`` when the server cannot be reached or refuses us,
        ``migrations.SchemaTooNew`` for a database a newer symbl-inbox migrated, and
        ``SchemaNotReady`` when a reader finds no schema or an older one.
        """
        async with await connect(settings) as connection:
            if migrate:
                applied = await migrations.migrate(connection, host_id)
                if applied:
                    log.info(
                        "journal_migrated",
                        location=settings.location,
                        applied=[str(migration) for migration in applied],
                    )
            else:
                state = await migrations.schema_state(connection)
                if state.unknown:
                    raise migrations.SchemaTooNew(state.too_new_message())
                if state.pending:
                    raise SchemaNotReady(
                        f"the journal at {settings.location} is {state.describe()}"
                    )
        pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
            settings.url,
            # Named after the host in pg_stat_activity, for the database's administrators.
            kwargs={
                "autocommit": True,
                **connection_kwargs(
                    settings,
                    application_name(host_id),
                    idle_transaction_seconds=idle_transaction_seconds,
                ),
            },
            min_size=POOL_MIN,
            max_size=max(POOL_MIN, pool_max),
            timeout=settings.connect_timeout_seconds,
            name=f"journal-{host_id}",
            open=False,
        )
        try:
            await pool.open(wait=True, timeout=settings.connect_timeout_seconds)
        except psycopg.Error as exc:
            await pool.close()
            raise explain(exc, settings) from None
        return cls(settings, pool, host_id)

    @property
    def location(self) -> str:
        return self.settings.location

    # ------------------------------------------------------------------ transactions

    def commit_per_turn(self, schedule: Callable[[Callable[[], None]], object]) -> None:
        """Nothing to batch: each write is committed in the round trip that sends it."""

    async def commit(self) -> None:
        """Nothing is pending outside ``transaction()``: every write has committed."""

    async def try_commit(self) -> bool:
        return True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Group many writes into one commit; an exception inside rolls all of them back.

        As on SQLite's one connection, while a block is open every statement of this journal
        (from any task) runs in it: a task reading what the block wrote sees it, before the
        commit as after. A block opened while another is in force joins it.
        """
        while self._held is not None and not self._held.open:
            await self._held.finished.wait()  # one ending now: begin after its COMMIT
        if self._held is not None:
            yield
            return
        held = self._held = _Held()
        try:
            async with self._pool.connection() as connection, connection.transaction():
                held.connection = connection
                held.ready.set()
                try:
                    yield
                finally:
                    # No statement joins from now on; those of other tasks that run on this
                    # connection now finish before the COMMIT. Statements that come meanwhile
                    # wait for the COMMIT, then read through the pool what it committed.
                    held.open = False
                    await held.idle.wait()
        finally:
            held.open = False
            held.ready.set()
            if self._held is held:
                self._held = None
            held.finished.set()

    async def close(self) -> None:
        await self._pool.close()

    @property
    def pool(self) -> AsyncConnectionPool[Connection]:
        """The pool, for the cluster's own statements (claims, slots, heartbeats)."""
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A connection: the enclosing ``transaction()``'s, else one lent by the pool."""
        held = self._held
        if held is not None:
            await held.ready.wait()
            if not held.open:
                await held.finished.wait()
            elif held.connection is not None:
                held.users += 1
                held.idle.clear()
                try:
                    yield held.connection
                finally:
                    held.users -= 1
                    if held.users == 0:
                        held.idle.set()
                return
        async with self._pool.connection() as connection:
            yield connection

    async def _write(
        self, query: LiteralString, params: tuple[Any, ...], *, again: bool = True
    ) -> list[tuple[Any, ...]] | None:
        """One statement's rows; a full disk on the server goes to ``on_full`` (the write is
        lost, as SQLite loses a turn's writes: None), anything else is raised."""
        try:
            return await self._run(query, params, again=again)
        except (psycopg.errors.DiskFull, psycopg.errors.OutOfMemory) as exc:
            if self.on_full is None:
                raise
            self.on_full(exc)
            return None

    async def _rows(self, query: LiteralString, params: tuple[Any, ...] = ()) -> list[Any]:
        return await self._run(query, params, again=True)

    async def _run(
        self, query: LiteralString, params: tuple[Any, ...], *, again: bool
    ) -> list[Any]:
        """Run one statement. A pooled connection the server dropped since its last use (a
        restart, an idle timeout) fails on first use: ``again`` sends the statement once more
        on a fresh one. Only where sending it twice does no harm, and never in a block."""
        for attempt in (1, 2):
            async with self.connection() as connection:
                try:
                    cursor = await connection.execute(query, params)
                    return await cursor.fetchall() if cursor.description else []
                except psycopg.OperationalError:
                    lost = connection.broken or connection.closed
                    retry = again and attempt == 1 and lost and self._held is None
                    if not retry:
                        raise
            # The others idle in the pool went the same way, most likely: check them all.
            await self._pool.check()
            log.info("journal_reconnected", location=self.location)
        raise AssertionError("unreachable")  # the second attempt returned or raised

    async def _files(self, where: LiteralString, params: tuple[Any, ...] = ()) -> list[FileRecord]:
        return [file_from_row(row) for row in await self._rows(_SELECT_FILES + where, params)]

    # ------------------------------------------------------------------ files

    async def add_file(
        self, inbox: str, rel_path: str, kind: Kind, size: int, mtime_ns: int, state: State
    ) -> FileRecord:
        record = FileRecord(0, inbox, rel_path, kind, size, mtime_ns, state)
        record.stamp("seen")
        rows = await self._write(
            "INSERT INTO files (inbox, rel_path, kind, size, mtime_ns, state, data, host_id)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (
                inbox,
                name_bytes(rel_path),
                kind.value,
                size,
                mtime_ns,
                state.value,
                Json(record.data),
                self.host_id,
            ),
            again=False,  # sent twice, it might record the file twice
        )
        if rows:
            record.id = int(rows[0][0])
        return record

    async def save(self, record: FileRecord) -> bool:
        values = [column_value(name, getattr(record, name)) for name in FILE_COLUMNS[1:]]
        if not self.this_host_only:
            await self._write(_SAVE, (*values, record.id))
            return True
        written = await self._write(_SAVE + _OWNED, (*values, record.id, self.host_id))
        if written is None or written:  # None: lost to a full disk, not refused
            return True
        log.warning(
            "file_write_refused",
            inbox=record.inbox,
            file=record.rel_path,
            state=record.state,
            message="another host holds this file now; this host leaves it alone",
        )
        return False

    async def forget(self, record: FileRecord) -> None:
        """Drop a row whose file vanished before anything was sent."""
        await self._write("DELETE FROM files WHERE id = %s", (record.id,))

    async def get(self, file_id: int) -> FileRecord | None:
        found = await self._files(" WHERE id = %s", (file_id,))
        return found[0] if found else None

    async def active(self, inbox: str | None = None) -> list[FileRecord]:
        """Every row not yet filed (optionally of one inbox), oldest first."""
        if self.this_host_only:
            return await self._files(
                " WHERE state <> 'filed' AND host_id = %s AND inbox = coalesce(%s, inbox)"
                " ORDER BY id",
                (self.host_id, inbox),
            )
        if inbox is None:
            return await self._files(" WHERE state <> 'filed' ORDER BY id")
        return await self._files(" WHERE state <> 'filed' AND inbox = %s ORDER BY id", (inbox,))

    async def in_states(self, states: Iterable[State]) -> list[FileRecord]:
        wanted = [state.value for state in states]
        if self.this_host_only:
            return await self._files(
                " WHERE state = ANY(%s) AND host_id = %s ORDER BY id", (wanted, self.host_id)
            )
        return await self._files(" WHERE state = ANY(%s) ORDER BY id", (wanted,))

    async def completed_with_sha(
        self, inbox: str, sha256: str, exclude_id: int
    ) -> FileRecord | None:
        """The earliest file of this inbox with this content that reached done/."""
        found = await self._files(
            " WHERE inbox = %s AND sha256 = %s AND outcome = 'done' AND id <> %s"
            " AND conversation_id IS NOT NULL ORDER BY id LIMIT 1",
            (inbox, sha256, exclude_id),
        )
        return found[0] if found else None

    async def parts_of(self, inbox: str, key: str) -> list[FileRecord]:
        return await self._files(
            " WHERE inbox = %s AND conversation_key = %s ORDER BY id", (inbox, name_bytes(key))
        )

    async def counts(self) -> dict[tuple[str, str], int]:
        """(inbox, state or ``filed_<outcome>``) -> number of files, read from the counts kept
        beside the rows (``pg_upkeep``), never by counting rows."""
        await self._fold_counts()
        rows = await self._rows(pg_upkeep.READ_COUNTS)
        return {(str(inbox), str(state)): int(n) for inbox, state, n in rows}

    async def _fold_counts(self) -> None:
        """Fold the changes appended since the last fold, unless another host is at it."""
        async with self._pool.connection() as connection, connection.transaction():
            cursor = await connection.execute(pg_upkeep.TRY_FOLD_LOCK, (pg_upkeep.FOLD_LOCK,))
            row = await cursor.fetchone()
            if row and row[0]:
                await connection.execute(pg_upkeep.FOLD)

    async def active_files(self, inbox: str | None = None) -> list[ActiveFile]:
        """``active`` without the records' data: one light row per file, oldest first."""
        if inbox is None:
            rows = await self._rows(pg_upkeep.ACTIVE_FILES + " ORDER BY id")
        else:
            rows = await self._rows(
                pg_upkeep.ACTIVE_FILES + " AND inbox = %s ORDER BY id", (inbox,)
            )
        return [pg_upkeep.active_file(row) for row in rows]

    async def prune_filed(
        self,
        before: float,
        keep_twins_in: Collection[str],
        limit: int,
        after: PruneCursor | None = None,
    ) -> tuple[int, PruneCursor | None]:
        """See ``Journal.prune_filed``: up to ``limit`` filed rows examined, those not needed
        deleted; the cursor to go on from. The counts' changes are folded on the way."""
        examined = await self._rows(
            pg_upkeep.PRUNE_EXAMINE, pg_upkeep.prune_examine_params(before, after, limit)
        )
        if not examined:
            await self._fold_counts()
            return 0, None
        ids = [int(row[0]) for row in examined]
        deleted = await self._delete_unneeded(ids, keep_twins_in)
        last = examined[-1]
        return deleted, ((float(last[1]), int(last[0])) if len(examined) == limit else None)

    async def _delete_unneeded(self, ids: list[int], keep_twins_in: Collection[str]) -> int:
        async with self.connection() as connection:
            cursor = await connection.execute(
                pg_upkeep.PRUNE_DELETE, pg_upkeep.prune_delete_params(ids, keep_twins_in)
            )
            return cursor.rowcount

    async def counts_by_host(self) -> dict[tuple[str, str, str | None], int]:
        """(inbox, state or ``filed_<outcome>``, host holding it) -> number of files."""
        await self._fold_counts()
        rows = await self._rows(pg_upkeep.READ_COUNTS_BY_HOST)
        return {(str(i), str(s), h or None): int(n) for i, s, h, n in rows}

    async def recent_failures(self, limit: int = 20) -> list[FileRecord]:
        return await self._files(
            " WHERE outcome = 'failed' ORDER BY updated_at DESC, id DESC LIMIT %s", (limit,)
        )

    # ------------------------------------------------------------------ conversations

    async def conversation(self, inbox: str, key: str) -> ConversationRecord:
        rows = await self._rows(
            _SELECT_CONVERSATIONS + " WHERE inbox = %s AND key = %s", (inbox, name_bytes(key))
        )
        return conversation_from_row(rows[0]) if rows else ConversationRecord(inbox, key)

    async def save_conversation(self, record: ConversationRecord) -> None:
        await self._write(
            "INSERT INTO conversations (inbox, key, conversation_id, last_part_done,"
            " last_part_assigned, rejected, data) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (inbox, key) DO UPDATE SET conversation_id = excluded.conversation_id,"
            " last_part_done = excluded.last_part_done,"
            " last_part_assigned = excluded.last_part_assigned, rejected = excluded.rejected,"
            " data = excluded.data, updated_at = clock_timestamp()",
            (
                record.inbox,
                name_bytes(record.key),
                record.conversation_id,
                record.last_part_done,
                record.last_part_assigned,
                record.rejected,
                Json(record.data),
            ),
        )

    async def conversations(self) -> list[ConversationRecord]:
        rows = await self._rows(_SELECT_CONVERSATIONS + " ORDER BY inbox, key")
        return [conversation_from_row(row) for row in rows]

    # ------------------------------------------------------------------ settings

    async def setting(self, name: str) -> str | None:
        rows = await self._rows("SELECT value FROM settings WHERE name = %s", (name,))
        return str(rows[0][0]) if rows else None

    async def put_setting(self, name: str, value: str) -> None:
        await self._write(
            "INSERT INTO settings (name, value) VALUES (%s, %s) ON CONFLICT (name)"
            " DO UPDATE SET value = excluded.value, updated_at = clock_timestamp()",
            (name, value),
        )

    # ------------------------------------------------------------------ operator commands

    async def filed_failure_at(self, inbox: str, filed_path: str) -> FileRecord | None:
        """The failure filed under ``filed_path`` (relative to the inbox's failed/), if any."""
        found = await self._files(
            " WHERE inbox = %s AND filed_path = %s AND state = 'filed' AND outcome = 'failed'"
            " ORDER BY id DESC LIMIT 1",
            (inbox, name_bytes(filed_path)),
        )
        return found[0] if found else None

    async def mark_retried(self, record: FileRecord, when: float | None = None) -> None:
        """The operator sent this failure back to its inbox: keep the row, stop counting it."""
        record.outcome = "retried"
        record.stamp("retried", when)
        await self.save(record)


if TYPE_CHECKING:  # checked against the protocol, as the other stores are
    from daemon.journal.base import Journal

    _POSTGRES: type[Journal] = PostgresJournal
