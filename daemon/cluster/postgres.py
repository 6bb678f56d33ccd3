"""Hosts that share one PostgreSQL journal agree here: one owner per file, leased job slots.

The tables are the cluster's migration (``daemon/journal/migrations/0010_*``). Every write a
host makes about a file or a slot carries its ownership and its lease in the statement itself
(``WHERE owner = me AND my lease holds``), so a host that was cut off for longer than its lease
finds its writes refused rather than undoing another host's work. Wake-ups travel by
``LISTEN/NOTIFY`` on a connection of their own; polling stays the safety net.

Times are the database server's (``now()``), never compared across hosts' clocks; only this
host's own idea of its lease uses its monotonic clock, from the moment a renewal was sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool

from daemon.cluster.base import Adopted, HostHolding, SlotAnswer, Wakeups
from daemon.logs import get_logger

log = get_logger("symbl_inbox.cluster")

JOBS_CHANNEL = "symbl_inbox_jobs"
SLOTS_CHANNEL = "symbl_inbox_slots"
# When no slot is free and no pause runs, ask again after this long at the latest (a freed
# slot's NOTIFY usually wakes the waiting hosts long before).
SLOT_POLL_SECONDS = 0.5
# A shared cap learned from 429s is probed upwards again once they stopped for this long.
CAP_PROBE_SECONDS = 30.0

T = TypeVar("T")

_LEASE_HOLDS = "EXISTS (SELECT 1 FROM cluster_hosts WHERE host_id = %(me)s AND lease_until > now())"


def account_key(base_url: str, app_id: str) -> str:
    """The account a host submits to, named without its app id (a hash of it and the URL)."""
    digest = hashlib.sha256(f"{base_url.rstrip('/')}\0{app_id}".encode()).hexdigest()
    return digest[:16]


def _name(rel_path: str) -> bytes:
    return os.fsencode(rel_path)


class PostgresCoordinator:
    """The Coordinator of a daemon that shares a PostgreSQL journal with other hosts."""

    def __init__(
        self,
        url: str,
        *,
        connect: dict[str, Any] | None = None,
        host_id: str,
        lease_seconds: float,
        heartbeat_seconds: float,
        account: str,
        max_jobs: int,
    ) -> None:
        self._url = url
        # Password, timeout, application name: beside the URL, never inside a printed string.
        self._connect = dict(connect or {})
        self._host_id = host_id
        self.lease_seconds = lease_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._account = account
        self._max_jobs = max_jobs
        # A statement that hangs (the network dropped) gives up well within one lease.
        self._timeout = max(1.0, min(lease_seconds / 3, 10.0))
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=4,
            open=False,
            kwargs={**self._connect_kwargs(), "autocommit": True},
            timeout=self._timeout,
            reconnect_timeout=0,  # never give up reconnecting: a cut-off host comes back
        )
        self._lease_until = 0.0  # monotonic; 0 until the first renewal
        self._mine: set[int] = set()
        self._elsewhere: set[tuple[str, str]] = set()
        self._cap_below_max = False
        self._listener: asyncio.Task[None] | None = None
        self._wakeups = Wakeups()

    def _connect_kwargs(self) -> dict[str, Any]:
        timeout = max(1, int(self._timeout))
        return {
            **self._connect,
            "connect_timeout": min(self._connect.get("connect_timeout", timeout), timeout),
        }

    # ------------------------------------------------------------------ lifecycle

    @property
    def host_id(self) -> str:
        return self._host_id

    @property
    def shared(self) -> bool:
        return True

    async def start(self, wakeups: Wakeups) -> None:
        self._wakeups = wakeups
        await self._pool.open(wait=True, timeout=self._timeout * 3)
        await self.heartbeat()
        await self._run(self._prepare_account)
        self._mine = set(
            await self._run(
                self._column,
                "SELECT file_id FROM cluster_claims WHERE owner = %(me)s AND file_id IS NOT NULL",
                {},
            )
        )
        self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        await self._pool.close(timeout=self._timeout)

    async def _prepare_account(self, conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(
            "INSERT INTO cluster_accounts (account, job_cap) VALUES (%s, %s) "
            "ON CONFLICT (account) DO NOTHING",
            (self._account, self._max_jobs),
        )
        await conn.execute(
            "INSERT INTO cluster_slots (account, slot) "
            "SELECT %s, n FROM generate_series(0, %s - 1) AS n ON CONFLICT DO NOTHING",
            (self._account, self._max_jobs),
        )
        # Slots this host held when it stopped, for files that hold no job now (filed, gone,
        # or not yet sent), are free; a job still running keeps its slot.
        await conn.execute(
            "UPDATE cluster_slots s SET owner = NULL, file_id = NULL, taken_at = NULL"
            " WHERE s.owner = %s AND NOT EXISTS (SELECT 1 FROM files f WHERE f.id = s.file_id"
            " AND f.state IN ('uploading', 'submitted'))",
            (self._host_id,),
        )

    # ------------------------------------------------------------------ plumbing

    async def _run(self, work: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``work(connection, *args)`` on a pooled connection, within the statement timeout."""

        async def attempt() -> T:
            async with self._pool.connection() as conn:
                return await work(conn, *args)

        return await asyncio.wait_for(attempt(), self._timeout)

    def _params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"me": self._host_id, "account": self._account, **params}

    async def _column(
        self, conn: psycopg.AsyncConnection[Any], query: str, params: dict[str, Any]
    ) -> list[Any]:
        cursor = await conn.execute(query.encode(), self._params(params))
        return [row[0] for row in await cursor.fetchall()]

    async def _rows(
        self, conn: psycopg.AsyncConnection[Any], query: str, params: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        cursor = await conn.execute(query.encode(), self._params(params))
        return list(await cursor.fetchall())

    async def _column_of(self, query: str, **params: Any) -> list[Any]:
        return await self._run(self._column, query, params)

    # ------------------------------------------------------------------ lease

    def lease_valid(self) -> bool:
        return time.monotonic() < self._lease_until

    async def heartbeat(self) -> list[int]:
        sent = time.monotonic()
        held = await self._column_of(
            "WITH beat AS ("
            " INSERT INTO cluster_hosts (host_id, lease_until)"
            " VALUES (%(me)s, now() + make_interval(secs => %(lease)s))"
            " ON CONFLICT (host_id) DO UPDATE SET heartbeat_at = now(),"
            " lease_until = EXCLUDED.lease_until RETURNING host_id)"
            " SELECT file_id FROM cluster_claims, beat"
            " WHERE owner = beat.host_id AND file_id IS NOT NULL",
            lease=self.lease_seconds,
        )
        was_valid = self.lease_valid()
        self._lease_until = sent + self.lease_seconds
        if not was_valid and sent > 0 and self._mine:
            log.info("cluster_lease_renewed", host=self._host_id)
        lost = sorted(self._mine - set(held))
        self._mine -= set(lost)
        return lost

    # ------------------------------------------------------------------ files

    def owns(self, file_id: int) -> bool:
        return file_id in self._mine

    def known_elsewhere(self, inbox: str, rel_path: str) -> bool:
        return (inbox, rel_path) in self._elsewhere

    def forget_elsewhere(self) -> None:
        """Before a rescan: every file is claimed again (its owner may have filed it)."""
        self._elsewhere.clear()

    async def claim(self, inbox: str, rel_path: str) -> bool:
        if not self.lease_valid():
            return False
        won = await self._column_of(
            "INSERT INTO cluster_claims (inbox, rel_path, owner)"
            f" SELECT %(inbox)s, %(path)s, %(me)s WHERE {_LEASE_HOLDS}"
            " ON CONFLICT (inbox, rel_path) DO UPDATE SET owner = EXCLUDED.owner,"
            " claimed_at = now(),"
            " file_id = CASE WHEN cluster_claims.owner = EXCLUDED.owner"
            " THEN cluster_claims.file_id END"
            " WHERE cluster_claims.owner = EXCLUDED.owner OR (cluster_claims.file_id IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM cluster_hosts h"
            " WHERE h.host_id = cluster_claims.owner AND h.lease_until > now()))"
            " RETURNING owner",
            inbox=inbox,
            path=_name(rel_path),
        )
        if won:
            self._elsewhere.discard((inbox, rel_path))
            return True
        self._elsewhere.add((inbox, rel_path))
        return False

    async def bind(self, inbox: str, rel_path: str, file_id: int) -> None:
        bound = await self._column_of(
            "UPDATE cluster_claims SET file_id = %(file)s"
            " WHERE inbox = %(inbox)s AND rel_path = %(path)s AND owner = %(me)s"
            f" AND {_LEASE_HOLDS} RETURNING file_id",
            inbox=inbox,
            path=_name(rel_path),
            file=file_id,
        )
        if bound:
            self._mine.add(file_id)

    async def confirm(self, file_id: int) -> bool:
        if not self.lease_valid():
            return False
        held = await self._column_of(
            f"SELECT 1 FROM cluster_claims WHERE file_id = %(file)s AND owner = %(me)s"
            f" AND {_LEASE_HOLDS}",
            file=file_id,
        )
        if not held:
            self._mine.discard(file_id)
        return bool(held)

    async def release(self, file_id: int) -> None:
        self._mine.discard(file_id)
        await self._column_of(
            "WITH slot AS (UPDATE cluster_slots SET owner = NULL, file_id = NULL,"
            " taken_at = NULL WHERE account = %(account)s AND file_id = %(file)s"
            " AND owner = %(me)s RETURNING slot)"
            " DELETE FROM cluster_claims WHERE file_id = %(file)s AND owner = %(me)s"
            " RETURNING (SELECT count(*) FROM slot)",
            file=file_id,
        )

    # ------------------------------------------------------------------ job slots

    async def take_slot(self, file_id: int) -> SlotAnswer:
        if not self.lease_valid():
            return SlotAnswer(False, self.heartbeat_seconds, "lease")
        rows = await self._run(
            self._rows,
            # The file must be ours and our lease valid; a slot this file holds already (its
            # upload is tried again, or it was taken over with its job) is kept.
            "WITH mine AS (SELECT 1 FROM cluster_claims WHERE file_id = %(file)s"
            f" AND owner = %(me)s AND {_LEASE_HOLDS}),"
            " held AS (SELECT slot FROM cluster_slots WHERE account = %(account)s"
            " AND file_id = %(file)s AND owner = %(me)s AND EXISTS (SELECT 1 FROM mine)),"
            " free AS (SELECT s.slot FROM cluster_slots s JOIN cluster_accounts a"
            " ON a.account = s.account WHERE s.account = %(account)s AND s.owner IS NULL"
            " AND s.slot < LEAST(a.job_cap, %(max)s) AND a.pause_until <= now()"
            " AND NOT EXISTS (SELECT 1 FROM held) AND EXISTS (SELECT 1 FROM mine)"
            " ORDER BY s.slot LIMIT 1 FOR UPDATE OF s SKIP LOCKED),"
            " taken AS (UPDATE cluster_slots s SET owner = %(me)s, file_id = %(file)s,"
            " taken_at = now() FROM free WHERE s.account = %(account)s AND s.slot = free.slot"
            " RETURNING s.slot)"
            " SELECT (SELECT slot FROM held), (SELECT slot FROM taken),"
            " extract(epoch FROM GREATEST(pause_until, now()) - now())::float8, job_cap,"
            " EXISTS (SELECT 1 FROM mine)"
            " FROM cluster_accounts WHERE account = %(account)s",
            {"file": file_id, "max": self._max_jobs},
        )
        if not rows:
            return SlotAnswer(False, SLOT_POLL_SECONDS, "no account row")
        held, taken, pause, cap, mine = rows[0]
        self._cap_below_max = int(cap) < self._max_jobs
        if held is not None or taken is not None:
            return SlotAnswer(True)
        if not mine:
            self._mine.discard(file_id)
            return SlotAnswer(False, 0.0, "lost")
        if pause > 0:
            return SlotAnswer(False, float(pause), "paused")
        return SlotAnswer(False, SLOT_POLL_SECONDS, "full")

    async def free_slot(self, file_id: int) -> None:
        await self._column_of(
            "WITH freed AS (UPDATE cluster_slots SET owner = NULL, file_id = NULL,"
            " taken_at = NULL WHERE account = %(account)s AND file_id = %(file)s"
            " AND owner = %(me)s RETURNING slot),"
            # A slot freed for certain ends a 429 pause, as one host's own job does.
            " unpaused AS (UPDATE cluster_accounts SET pause_until = now()"
            " WHERE account = %(account)s AND pause_until > now()"
            " AND EXISTS (SELECT 1 FROM freed) RETURNING 1)"
            " SELECT pg_notify(%(channel)s, %(account)s) FROM freed",
            file=file_id,
            channel=SLOTS_CHANNEL,
        )

    async def rate_limited(self, job_cap: int, pause_seconds: float) -> None:
        self._cap_below_max = True
        await self._column_of(
            "UPDATE cluster_accounts SET last_rate_limit = now(),"
            " job_cap = LEAST(job_cap, GREATEST(1, %(cap)s)),"
            " pause_until = GREATEST(pause_until, now() + make_interval(secs => %(pause)s))"
            " WHERE account = %(account)s RETURNING job_cap",
            cap=job_cap,
            pause=pause_seconds,
        )

    async def submitted(self) -> None:
        if not self._cap_below_max:
            return
        await self._column_of(
            "UPDATE cluster_accounts SET job_cap = job_cap + 1 WHERE account = %(account)s"
            " AND job_cap < %(max)s"
            " AND last_rate_limit < now() - make_interval(secs => %(quiet)s) RETURNING job_cap",
            max=self._max_jobs,
            quiet=CAP_PROBE_SECONDS,
        )

    # ------------------------------------------------------------------ hosts

    async def adopt(self, inboxes: Iterable[str]) -> list[Adopted]:
        if not self.lease_valid():
            return []
        rows = await self._run(self._adopt, sorted(inboxes))
        adopted = [Adopted(int(file_id), str(host)) for file_id, host in rows]
        self._mine.update(item.file_id for item in adopted)
        for host in sorted({item.from_host for item in adopted}):
            log.warning(
                "cluster_host_taken_over",
                host=host,
                files=sum(1 for item in adopted if item.from_host == host),
                message=f"host {host} stopped renewing its lease: its files are ours now",
            )
        return adopted

    async def _adopt(
        self, conn: psycopg.AsyncConnection[Any], inboxes: list[str]
    ) -> list[tuple[Any, ...]]:
        params = self._params({"inboxes": inboxes})
        async with conn.transaction():
            cursor = await conn.execute(
                "SELECT host_id FROM cluster_hosts WHERE lease_until < now()"
                " AND host_id <> %(me)s FOR UPDATE SKIP LOCKED",
                params,
            )
            dead = [row[0] for row in await cursor.fetchall()]
            if not dead:
                return []
            params["dead"] = dead
            cursor = await conn.execute(
                "WITH moved AS (SELECT inbox, rel_path, owner FROM cluster_claims"
                " WHERE owner = ANY(%(dead)s) AND inbox = ANY(%(inboxes)s)"
                " AND file_id IS NOT NULL FOR UPDATE)"
                " UPDATE cluster_claims c SET owner = %(me)s, claimed_at = now() FROM moved"
                " WHERE (c.inbox, c.rel_path) = (moved.inbox, moved.rel_path)"
                f" AND {_LEASE_HOLDS} RETURNING c.file_id, moved.owner",
                params,
            )
            adopted = list(await cursor.fetchall())
            params["files"] = [file_id for file_id, _ in adopted]
            # Slots go with their files: a job still running counts against the account.
            await conn.execute(
                "UPDATE cluster_slots SET owner = %(me)s WHERE account = %(account)s"
                " AND owner = ANY(%(dead)s) AND file_id = ANY(%(files)s)",
                params,
            )
            # The journal's rows follow: the dead host's late writes to them are refused.
            await conn.execute(
                "UPDATE files SET host_id = %(me)s WHERE id = ANY(%(files)s)", params
            )
            # A claim without a record: the host died before writing it; whoever sees the
            # file next claims it anew.
            await conn.execute(
                "DELETE FROM cluster_claims WHERE owner = ANY(%(dead)s) AND file_id IS NULL",
                params,
            )
            # A slot of a dead host whose file nobody holds any more is free.
            await conn.execute(
                "UPDATE cluster_slots s SET owner = NULL, file_id = NULL, taken_at = NULL"
                " WHERE s.owner = ANY(%(dead)s) AND NOT EXISTS (SELECT 1 FROM cluster_claims c"
                " WHERE c.file_id = s.file_id)",
                params,
            )
            await conn.execute(
                "UPDATE cluster_hosts SET adopted = adopted + %(count)s WHERE host_id = %(me)s",
                {**params, "count": len(adopted)},
            )
            return adopted

    async def note_reupload(self, file_id: int) -> None:
        await self._column_of(
            "UPDATE cluster_hosts SET reuploads_after_takeover = reuploads_after_takeover + 1"
            " WHERE host_id = %(me)s RETURNING reuploads_after_takeover",
        )

    async def holdings(self) -> list[HostHolding]:
        return holdings_from(
            await self._run(self._rows, HOLDINGS_QUERY, {}),
        )

    # ------------------------------------------------------------------ wake-ups

    async def announce_job_ended(self, job_id: str) -> None:
        await self._column_of(
            "SELECT pg_notify(%(channel)s, %(job)s)", channel=JOBS_CHANNEL, job=job_id
        )

    async def _listen(self) -> None:
        """Wake-ups from other hosts, on a connection of its own; reconnects until closed."""
        delay = 1.0
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._url, **self._connect_kwargs(), autocommit=True
                )
                async with conn:
                    await conn.execute(f"LISTEN {JOBS_CHANNEL}")
                    await conn.execute(f"LISTEN {SLOTS_CHANNEL}")
                    delay = 1.0
                    # Whatever was freed while nobody listened is looked at once.
                    self._wakeups.slot_freed()
                    async for note in conn.notifies():
                        if note.channel == JOBS_CHANNEL:
                            self._wakeups.job_ended(note.payload)
                        elif note.payload == self._account:
                            self._wakeups.slot_freed()
            except (psycopg.Error, OSError) as exc:
                log.debug("cluster_listen_lost", error=str(exc), retry_seconds=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.heartbeat_seconds)


HOLDINGS_QUERY = (
    "SELECT h.host_id, h.lease_until > now(),"
    " extract(epoch FROM now() - h.heartbeat_at)::float8,"
    " (SELECT count(*) FROM cluster_claims c WHERE c.owner = h.host_id AND c.file_id IS NOT NULL),"
    " (SELECT count(*) FROM cluster_slots s WHERE s.owner = h.host_id),"
    " h.reuploads_after_takeover, h.adopted"
    " FROM cluster_hosts h ORDER BY h.host_id"
)


def holdings_from(rows: Iterable[tuple[Any, ...]]) -> list[HostHolding]:
    return [
        HostHolding(str(host), bool(alive), float(age), int(files), int(slots), int(re), int(ad))
        for host, alive, age, files, slots, re, ad in rows
    ]
