"""The PostgreSQL journal keeps what the daemon writes, for every host that shares it: names of
any bytes, transactions that commit or roll back as a whole, settings, and clear refusals."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import pytest
from pg_harness import Database, PostgresServer

from daemon.journal.migrations import SchemaTooNew
from daemon.journal.pgconnect import Failure, Unavailable
from daemon.journal.postgres import PostgresJournal, SchemaNotReady
from daemon.logs import masker
from daemon.model import Kind, State

NAMES = [
    os.fsdecode(b"caf\xe9.wav"),  # Latin-1, not UTF-8
    "line\nbreak\x1b[31m.wav",
    "caf\u00e9 \U0001f3a4.wav",
    "d" * 251 + ".wav",
]


@pytest.fixture
async def journal(pg_database: Database) -> AsyncIterator[PostgresJournal]:
    opened = await PostgresJournal.open(pg_database.journal_settings(), "host-a")
    yield opened
    await opened.close()


class TestRecords:
    """Files and conversations come back as they were saved."""

    @pytest.mark.parametrize("name", NAMES)
    async def test_names_round_trip(self, journal: PostgresJournal, name: str) -> None:
        record = await journal.add_file("inbox", f"sub/{name}", Kind.AUDIO, 1, 1, State.WAITING)
        record.conversation_key = name
        record.filed_path = f"sub/{name}"
        record.state, record.outcome = State.FILED, "failed"
        await journal.save(record)
        [back] = await journal.in_states((State.FILED,))
        assert os.fsencode(back.rel_path) == os.fsencode(f"sub/{name}")
        assert back.conversation_key == name
        assert await journal.filed_failure_at("inbox", f"sub/{name}") is not None
        assert [r.id for r in await journal.parts_of("inbox", name)] == [back.id]
        conversation = await journal.conversation("inbox", name)
        conversation.conversation_id = "c-1"
        await journal.save_conversation(conversation)
        assert [c.key for c in await journal.conversations()] == [name]

    async def test_a_record_keeps_every_field(self, journal: PostgresJournal) -> None:
        record = await journal.add_file("in", "a.url", Kind.URL, 10, 123456789012345, State.READY)
        record.profile, record.sha256, record.part, record.job_id = "p", "ab" * 32, 3, "j"
        record.reason = "job_failed"
        record.data["params"] = {"languageCode": "en-US", "nested": [1, 2.5, None]}
        record.stamp("submitted", 1700000000.25)
        await journal.save(record)
        assert await journal.get(record.id) == record
        assert await journal.get(record.id + 1000) is None

    async def test_settings_are_kept_and_replaced(self, journal: PostgresJournal) -> None:
        assert await journal.setting("speed") is None
        await journal.put_setting("speed", "1.5")
        await journal.put_setting("speed", "2.0")
        assert await journal.setting("speed") == "2.0"


class TestTransactions:
    """A block's writes commit together or not at all, and every task sees them meanwhile."""

    async def test_an_exception_rolls_the_block_back(self, journal: PostgresJournal) -> None:
        kept = await journal.add_file("in", "kept.wav", Kind.AUDIO, 1, 1, State.WAITING)
        with pytest.raises(RuntimeError):
            async with journal.transaction():
                await journal.forget(kept)
                await journal.add_file("in", "lost.wav", Kind.AUDIO, 1, 1, State.WAITING)
                raise RuntimeError("rolled back")
        assert [r.rel_path for r in await journal.active()] == ["kept.wav"]

    async def test_other_tasks_see_what_the_block_wrote(self, journal: PostgresJournal) -> None:
        """As on SQLite's one connection: a stage that reads a record another stage just
        saved inside a block (the admitter's batches) finds it saved, before the commit."""
        written, read = asyncio.Event(), asyncio.Event()
        seen: list[State | None] = []

        async def elsewhere(file_id: int) -> None:
            await written.wait()
            record = await journal.get(file_id)
            seen.append(record.state if record else None)
            read.set()

        record = await journal.add_file("in", "a.wav", Kind.AUDIO, 1, 1, State.WAITING)
        task = asyncio.create_task(elsewhere(record.id))
        async with journal.transaction():
            record.state = State.READY
            await journal.save(record)
            written.set()
            await read.wait()
        await task
        assert seen == [State.READY]

    async def test_writes_of_other_tasks_meanwhile_share_the_commit(
        self, journal: PostgresJournal
    ) -> None:
        started, finish = asyncio.Event(), asyncio.Event()

        async def elsewhere() -> None:
            await started.wait()
            await journal.add_file("in", "other-task.wav", Kind.AUDIO, 1, 1, State.WAITING)
            finish.set()

        task = asyncio.create_task(elsewhere())
        with pytest.raises(RuntimeError):
            async with journal.transaction():
                await journal.add_file("in", "in-block.wav", Kind.AUDIO, 1, 1, State.WAITING)
                started.set()
                await finish.wait()
                raise RuntimeError("rolled back")
        await task
        assert await journal.active() == []
        await journal.add_file("in", "after.wav", Kind.AUDIO, 1, 1, State.WAITING)
        assert [r.rel_path for r in await journal.active()] == ["after.wav"]

    async def test_tasks_started_in_the_block_join_it_while_it_lasts(
        self, journal: PostgresJournal
    ) -> None:
        block_over = asyncio.Event()

        async def started_inside(name: str, wait: bool) -> None:
            if wait:
                await block_over.wait()
            await journal.add_file("in", name, Kind.AUDIO, 1, 1, State.WAITING)

        with pytest.raises(RuntimeError):
            async with journal.transaction():
                during = asyncio.create_task(started_inside("during.wav", wait=False))
                after = asyncio.create_task(started_inside("after.wav", wait=True))
                await during
                raise RuntimeError("rolled back")
        block_over.set()
        await after
        assert [r.rel_path for r in await journal.active()] == ["after.wav"]

    async def test_the_block_commits_at_its_end(
        self, journal: PostgresJournal, pg_database: Database
    ) -> None:
        async with journal.transaction():
            for n in range(3):
                await journal.add_file("in", f"{n}.wav", Kind.AUDIO, 1, 1, State.WAITING)
            with pg_database.connect() as outside:
                assert outside.execute("SELECT count(*) FROM files").fetchone() == (0,)
        with pg_database.connect() as outside:
            assert outside.execute("SELECT count(*) FROM files").fetchone() == (3,)


class TestSharing:
    """Two hosts on one database see each other's records; each row says who recorded it."""

    async def test_connections_are_named_after_the_host(
        self, journal: PostgresJournal, pg_database: Database
    ) -> None:
        await journal.active()
        with pg_database.connect() as connection:
            names = connection.execute(
                "SELECT DISTINCT application_name FROM pg_stat_activity WHERE datname = %s"
                " AND application_name LIKE 'symbl-inbox%%'",
                (pg_database.name,),
            ).fetchall()
        assert names == [("symbl-inbox host-a",)]

    async def test_a_cluster_hosts_idle_transactions_end_and_the_urls_options_stay(
        self, pg_database: Database
    ) -> None:
        # An operator's own server options in the URL are kept beside the daemon's.
        url = pg_database.url_without_password + "?options=-c%20statement_timeout%3D7000"
        settings = pg_database.journal_settings(url=url)
        opened = await PostgresJournal.open(settings, "host-b", idle_transaction_seconds=2.5)
        try:
            async with opened.pool.connection() as connection:
                cursor = await connection.execute(
                    "SELECT current_setting('idle_in_transaction_session_timeout'),"
                    " current_setting('statement_timeout')"
                )
                assert await cursor.fetchone() == ("2500ms", "7s")
        finally:
            await opened.close()

    async def test_two_hosts(self, pg_database: Database, journal: PostgresJournal) -> None:
        other = await PostgresJournal.open(pg_database.journal_settings(), "host-b")
        try:
            mine = await journal.add_file("share", "a.wav", Kind.AUDIO, 1, 1, State.READY)
            theirs = await other.add_file("share", "b.wav", Kind.AUDIO, 1, 1, State.READY)
            assert [r.id for r in await other.active("share")] == [mine.id, theirs.id]
            assert await journal.counts() == {("share", "ready"): 2}
            assert await journal.counts_by_host() == {
                ("share", "ready", "host-a"): 1,
                ("share", "ready", "host-b"): 1,
            }
        finally:
            await other.close()


class TestReconnecting:
    """Connections the server dropped (a restart, an administrator) are replaced unseen."""

    async def test_reads_and_saves_after_the_server_cut_every_connection(
        self, journal: PostgresJournal, pg_database: Database, postgres_server: PostgresServer
    ) -> None:
        record = await journal.add_file("in", "a.wav", Kind.AUDIO, 1, 1, State.WAITING)
        assert postgres_server.terminate_connections(pg_database.name) >= 1
        record.state = State.READY
        await journal.save(record)
        assert postgres_server.terminate_connections(pg_database.name) >= 1
        assert [r.state for r in await journal.active()] == [State.READY]


class TestOpening:
    """Opening says plainly what is wrong, and never shows the password."""

    async def test_location_names_the_database_not_the_password(
        self, journal: PostgresJournal, pg_database: Database
    ) -> None:
        assert journal.location == (
            f"postgresql://symbl@127.0.0.1:{pg_database.port}/{pg_database.name}"
        )
        assert pg_database.password not in journal.location

    async def test_a_wrong_password(self, pg_database: Database) -> None:
        masker.register(["wrong-password-123"])
        settings = pg_database.journal_settings(password="wrong-password-123")
        with pytest.raises(Unavailable) as caught:
            await PostgresJournal.open(settings, "host-a")
        assert caught.value.failure is Failure.AUTHENTICATION
        assert "wrong-password-123" not in str(caught.value)

    async def test_a_reader_finds_no_journal_yet(self, pg_database: Database) -> None:
        with pytest.raises(SchemaNotReady, match="empty"):
            await PostgresJournal.open(pg_database.journal_settings(), "host-a", migrate=False)

    async def test_a_newer_schema_is_refused(self, pg_database: Database) -> None:
        await (await PostgresJournal.open(pg_database.journal_settings(), "host-a")).close()
        with pg_database.connect() as connection:
            connection.execute(
                "INSERT INTO schema_version (version, name, applied_by) VALUES (999, 'x', 'z')"
            )
        for migrate in (True, False):
            with pytest.raises(SchemaTooNew):
                await PostgresJournal.open(pg_database.journal_settings(), "h", migrate=migrate)
