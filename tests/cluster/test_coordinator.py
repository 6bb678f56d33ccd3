"""Hosts sharing one PostgreSQL agree through the coordinator: one owner per file, the job cap
as leased slot rows, a shared 429 pause, takeover of a dead host's files, wake-ups by NOTIFY.

Each test runs two or three coordinators (hosts) against a real throwaway PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import pytest
from async_waiting import wait_until
from pg_harness import Database
from structlog.testing import capture_logs

from daemon.cluster.base import Wakeups
from daemon.cluster.postgres import PostgresCoordinator, account_key
from daemon.journal.migrations import migrate
from daemon.journal.postgres import PostgresJournal
from daemon.model import Kind, State

ACCOUNT = account_key("http://127.0.0.1:1", "app")


async def migrated(database: Database) -> None:
    async with await psycopg.AsyncConnection.connect(database.url, autocommit=True) as conn:
        await migrate(conn, "test")


@asynccontextmanager
async def host(
    database: Database,
    name: str,
    *,
    lease: float = 5.0,
    max_jobs: int = 2,
    wakeups: Wakeups | None = None,
) -> AsyncIterator[PostgresCoordinator]:
    coordinator = PostgresCoordinator(
        database.url,
        host_id=name,
        lease_seconds=lease,
        heartbeat_seconds=lease / 3,
        account=ACCOUNT,
        max_jobs=max_jobs,
    )
    await coordinator.start(wakeups or Wakeups())
    try:
        yield coordinator
    finally:
        await coordinator.close()


def expire(database: Database, name: str) -> None:
    """The host stopped heartbeating long ago (as a kill -9 leaves it, one lease later)."""
    with database.connect() as conn:
        conn.execute(
            "UPDATE cluster_hosts SET lease_until = now() - interval '1 second' WHERE host_id = %s",
            (name,),
        )


async def owned(coordinator: PostgresCoordinator, *file_ids: int) -> None:
    """The host claimed these files (named after their ids) and wrote their records."""
    for file_id in file_ids:
        assert await coordinator.claim("sales", f"{file_id}.wav")
        await coordinator.bind("sales", f"{file_id}.wav", file_id)


@pytest.fixture
async def db(pg_database: Database) -> Database:
    await migrated(pg_database)
    return pg_database


class TestClaims:
    """A file of a shared inbox has exactly one owner."""

    async def test_only_one_of_three_hosts_claims_a_file(self, db: Database) -> None:
        async with host(db, "a") as a, host(db, "b") as b, host(db, "c") as c:
            won = await asyncio.gather(*(h.claim("sales", "x.wav") for h in (a, b, c)))
            assert sorted(won) == [False, False, True]
            losers = [h for h, w in zip((a, b, c), won, strict=True) if not w]
            assert all(h.known_elsewhere("sales", "x.wav") for h in losers)

    async def test_the_owner_claims_again_and_keeps_its_record(self, db: Database) -> None:
        async with host(db, "a") as a:
            assert await a.claim("sales", "x.wav")
            await a.bind("sales", "x.wav", 7)
            assert await a.claim("sales", "x.wav")
            assert a.owns(7) and await a.confirm(7)

    async def test_a_released_file_may_be_claimed_again(self, db: Database) -> None:
        async with host(db, "a") as a, host(db, "b") as b:
            assert await a.claim("sales", "x.wav")
            await a.bind("sales", "x.wav", 7)
            assert not await b.claim("sales", "x.wav")
            await a.release(7)
            assert await b.claim("sales", "x.wav")
            assert not a.owns(7)

    async def test_the_same_path_in_another_inbox_is_another_file(self, db: Database) -> None:
        async with host(db, "a") as a, host(db, "b") as b:
            assert await a.claim("sales", "x.wav")
            assert await b.claim("support", "x.wav")

    async def test_names_that_are_not_utf8_are_claimed(self, db: Database) -> None:
        name = b"caf\xe9.wav".decode("utf-8", "surrogateescape")
        async with host(db, "a") as a, host(db, "b") as b:
            assert await a.claim("sales", name)
            assert not await b.claim("sales", name)


class TestLease:
    """A host whose lease ran out loses its files to a live host and stops touching them."""

    async def test_a_dead_hosts_files_are_adopted_with_their_slots(self, db: Database) -> None:
        async with host(db, "a") as a, host(db, "b") as b:
            assert await a.claim("sales", "x.wav")
            await a.bind("sales", "x.wav", 7)
            assert (await a.take_slot(7)).granted
            expire(db, "a")
            adopted = await b.adopt(["sales"])
            assert [(item.file_id, item.from_host) for item in adopted] == [(7, "a")]
            assert b.owns(7) and await b.confirm(7)
            # The job may still run at Symbl: its slot moved with the file, still taken.
            assert (await b.take_slot(7)).granted
            holdings = {h.host_id: h for h in await b.holdings()}
            assert holdings["b"].slots == 1 and holdings["b"].files == 1
            assert holdings["b"].adopted == 1 and not holdings["a"].alive

    async def test_only_hosts_mounting_the_inbox_adopt(self, db: Database) -> None:
        async with host(db, "a") as a, host(db, "b") as b:
            assert await a.claim("sales", "x.wav")
            await a.bind("sales", "x.wav", 7)
            expire(db, "a")
            assert await b.adopt(["support"]) == []
            assert [item.file_id for item in await b.adopt(["sales"])] == [7]

    async def test_a_live_hosts_files_are_not_adopted(self, db: Database) -> None:
        async with host(db, "a") as a, host(db, "b") as b:
            assert await a.claim("sales", "x.wav")
            await a.bind("sales", "x.wav", 7)
            assert await b.adopt(["sales"]) == []

    async def test_a_host_back_after_takeover_learns_what_it_lost(self, db: Database) -> None:
        async with host(db, "a") as a, host(db, "b") as b:
            assert await a.claim("sales", "x.wav")
            await a.bind("sales", "x.wav", 7)
            expire(db, "a")
            await b.adopt(["sales"])
            assert not await a.confirm(7)  # its writes are refused now
            assert await a.heartbeat() == [] and not a.owns(7)

    async def test_the_heartbeat_reports_files_lost_meanwhile(self, db: Database) -> None:
        async with host(db, "a") as a, host(db, "b") as b:
            assert await a.claim("sales", "x.wav")
            await a.bind("sales", "x.wav", 7)
            expire(db, "a")
            await b.adopt(["sales"])
            assert await a.heartbeat() == [7]

    async def test_a_claim_without_a_record_of_a_dead_host_is_free(self, db: Database) -> None:
        async with host(db, "a") as a, host(db, "b") as b:
            assert await a.claim("sales", "x.wav")
            expire(db, "a")
            assert await b.claim("sales", "x.wav")

    async def test_an_expired_lease_claims_nothing(self, db: Database) -> None:
        async with host(db, "a", lease=1.0) as a:
            await owned(a, 1)
            expire(db, "a")
            await wait_until(lambda: not a.lease_valid(), 5.0)
            assert not await a.claim("sales", "x.wav")
            assert not (await a.take_slot(1)).granted


class TestSlots:
    """The account's job cap holds across hosts; the learned cap and the pause are shared."""

    async def test_three_hosts_never_hold_more_slots_than_the_cap(self, db: Database) -> None:
        async with (
            host(db, "a", max_jobs=5) as a,
            host(db, "b", max_jobs=5) as b,
            host(db, "c", max_jobs=5) as c,
        ):
            ids = {h: [n * 10 + i for i in range(4)] for n, h in enumerate((a, b, c))}
            for h, files in ids.items():
                await owned(h, *files)
            answers = await asyncio.gather(*(h.take_slot(f) for h, fs in ids.items() for f in fs))
            assert sum(answer.granted for answer in answers) == 5
            refused = [answer for answer in answers if not answer.granted]
            assert all(answer.why == "full" for answer in refused)

    async def test_a_freed_slot_is_taken_by_another_host(self, db: Database) -> None:
        freed = asyncio.Event()
        async with (
            host(db, "a", max_jobs=1) as a,
            host(db, "b", max_jobs=1, wakeups=Wakeups(slot_freed=freed.set)) as b,
        ):
            await owned(a, 1)
            await owned(b, 2)
            assert (await a.take_slot(1)).granted
            assert not (await b.take_slot(2)).granted
            await wait_until(freed.is_set)  # the listener's first wake-up, once it listens
            freed.clear()
            await a.free_slot(1)
            await wait_until(freed.is_set)
            assert (await b.take_slot(2)).granted

    async def test_a_429_pauses_every_host_and_lowers_the_cap(self, db: Database) -> None:
        async with host(db, "a", max_jobs=4) as a, host(db, "b", max_jobs=4) as b:
            await owned(a, 1, 4)
            await owned(b, 2, 3)
            assert (await a.take_slot(1)).granted
            await a.rate_limited(job_cap=2, pause_seconds=30)
            answer = await b.take_slot(2)
            assert not answer.granted and answer.why == "paused"
            assert 25 < answer.retry_seconds <= 30
            await a.free_slot(1)  # a job ended: the pause ends with it
            assert (await b.take_slot(2)).granted
            assert (await b.take_slot(3)).granted
            assert not (await a.take_slot(4)).granted  # the learned cap: 2

    async def test_a_released_file_frees_its_slot(self, db: Database) -> None:
        async with host(db, "a", max_jobs=1) as a, host(db, "b", max_jobs=1) as b:
            assert await a.claim("sales", "x.wav")
            await a.bind("sales", "x.wav", 7)
            assert (await a.take_slot(7)).granted
            await a.release(7)
            await owned(b, 8)
            assert (await b.take_slot(8)).granted

    async def test_a_file_of_another_host_gets_no_slot(self, db: Database) -> None:
        async with host(db, "a") as a, host(db, "b") as b:
            await owned(a, 1)
            answer = await b.take_slot(1)
            assert not answer.granted and answer.why == "lost"


class TestWakeups:
    """A webhook that reaches one host wakes the host that follows the job."""

    async def test_a_job_ended_announced_by_one_host_reaches_the_others(self, db: Database) -> None:
        heard: list[str] = []
        async with host(db, "a") as a, host(db, "b", wakeups=Wakeups(job_ended=heard.append)):

            async def announced() -> bool:
                # The listener connects in the background: announce until it hears.
                await a.announce_job_ended("job-1")
                return "job-1" in heard

            await wait_until(announced)


class TestOwnedWrites:
    """A host's late write to a file another host took over is refused, never applied."""

    async def test_a_dead_hosts_late_save_is_refused(self, db: Database) -> None:
        journal_a = await PostgresJournal.open(db.journal_settings(), "a")
        journal_b = await PostgresJournal.open(db.journal_settings(), "b")
        journal_a.this_host_only = journal_b.this_host_only = True
        try:
            async with host(db, "a") as a, host(db, "b") as b:
                assert await a.claim("sales", "x.wav")
                record = await journal_a.add_file(
                    "sales", "x.wav", Kind.AUDIO, 1, 1, State.UPLOADING
                )
                await a.bind("sales", "x.wav", record.id)
                expire(db, "a")
                [adopted] = await b.adopt(["sales"])
                taken = await journal_b.get(adopted.file_id)
                assert taken is not None
                taken.state = State.READY
                assert await journal_b.save(taken)
                record.state, record.job_id = State.SUBMITTED, "late-job"
                with capture_logs() as logged:
                    assert not await journal_a.save(record), "the late host is told"
                assert [e["event"] for e in logged] == ["file_write_refused"]
                again = await journal_b.get(record.id)
                assert again is not None and again.state is State.READY and not again.job_id
                # Each host lists only what it holds as its work.
                assert [r.id for r in await journal_b.active("sales")] == [record.id]
                assert await journal_a.active() == []
                assert await journal_a.in_states((State.READY,)) == []
        finally:
            await journal_a.close()
            await journal_b.close()


class TestCutOffInATransaction:
    """A host cut off in the middle of a journal transaction does not hold its takeover up."""

    async def test_the_rows_it_locked_are_taken_over_once_it_idled_a_lease(
        self, db: Database
    ) -> None:
        # As a cluster host opens its journal: a transaction idle for a lease is ended.
        journal_a = await PostgresJournal.open(
            db.journal_settings(), "a", idle_transaction_seconds=1.0
        )
        try:
            async with host(db, "a") as a, host(db, "b") as b:
                assert await a.claim("sales", "x.wav")
                record = await journal_a.add_file("sales", "x.wav", Kind.AUDIO, 1, 1, State.WAITING)
                await a.bind("sales", "x.wav", record.id)
                expire(db, "a")
                adopted: list[int] = []

                async def taken_over() -> bool:
                    with contextlib.suppress(TimeoutError):  # waits on a's lock meanwhile
                        adopted.extend(item.file_id for item in await b.adopt(["sales"]))
                    return bool(adopted)

                with pytest.raises(psycopg.errors.IdleInTransactionSessionTimeout):
                    async with journal_a.transaction():
                        record.state = State.READY
                        await journal_a.save(record)  # its row is locked; then a goes silent
                        await wait_until(taken_over, 10.0)
                assert adopted == [record.id]
            with db.connect() as conn:
                row = conn.execute(
                    "SELECT state, host_id FROM files WHERE id = %s", (record.id,)
                ).fetchone()
            assert row == ("waiting", "b"), "a's unfinished transaction was not kept"
        finally:
            await journal_a.close()
