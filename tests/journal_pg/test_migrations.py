"""The PostgreSQL journal's schema is created and upgraded by the project's own migrations,
once, even when several hosts start at the same moment; a newer schema is refused."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from pg_harness import Database

from daemon.journal.migrations import (
    Migration,
    SchemaState,
    SchemaTooNew,
    known_migrations,
    latest_version,
    migrate,
    schema_state,
)


async def connect(database: Database) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(database.url, autocommit=True)


def tables(database: Database) -> set[str]:
    with database.connect() as connection:
        rows = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {str(name) for (name,) in rows}


def versions(database: Database) -> list[tuple[object, ...]]:
    with database.connect() as connection:
        return connection.execute(
            "SELECT version, name, applied_by FROM schema_version ORDER BY version"
        ).fetchall()


class TestMigrate:
    """``migrate`` brings any database the code knows to the latest schema."""

    async def test_an_empty_database_gets_every_table(self, pg_database: Database) -> None:
        async with await connect(pg_database) as connection:
            assert (await schema_state(connection)).applied == frozenset()
            applied = await migrate(connection, "host-a")
            state = await schema_state(connection)
        assert [m.version for m in applied] == [m.version for m in known_migrations()]
        assert state.version == latest_version() and not state.pending
        assert {"files", "conversations", "settings", "schema_version"} <= tables(pg_database)
        assert versions(pg_database)[0] == (1, "files_and_conversations", "host-a")

    async def test_a_second_run_has_nothing_to_do(self, pg_database: Database) -> None:
        async with await connect(pg_database) as connection:
            await migrate(connection, "host-a")
            assert await migrate(connection, "host-b") == []
        assert {row[2] for row in versions(pg_database)} == {"host-a"}

    async def test_hosts_starting_together_apply_each_version_once(
        self, pg_database: Database
    ) -> None:
        connections = [await connect(pg_database) for _ in range(6)]
        try:
            results = await asyncio.gather(
                *(migrate(c, f"host-{i}") for i, c in enumerate(connections))
            )
        finally:
            for connection in connections:
                await connection.close()
        assert sorted(len(applied) for applied in results) == [0] * 5 + [len(known_migrations())]
        assert [row[0] for row in versions(pg_database)] == [m.version for m in known_migrations()]

    async def test_a_schema_newer_than_the_code_is_refused(self, pg_database: Database) -> None:
        async with await connect(pg_database) as connection:
            await migrate(connection, "host-a")
            await connection.execute(
                "INSERT INTO schema_version (version, name, applied_by)"
                " VALUES (9999, 'from_the_future', 'host-z')"
            )
            with pytest.raises(SchemaTooNew, match="newer than this symbl-inbox knows"):
                await migrate(connection, "host-a")
            state = await schema_state(connection)
        assert state.unknown == (9999,)
        assert "upgrade symbl-inbox" in state.describe()

    async def test_a_failed_migration_leaves_nothing_half_done(self, pg_database: Database) -> None:
        with pg_database.connect() as connection:
            connection.execute("CREATE TABLE files (squatter integer)")
        async with await connect(pg_database) as connection:
            with pytest.raises(psycopg.errors.DuplicateTable):
                await migrate(connection, "host-a")
            assert (await schema_state(connection)).applied == frozenset()
        assert "conversations" not in tables(pg_database)


class TestDescribe:
    """What ``check-config`` says about a database's schema."""

    def test_empty(self) -> None:
        assert SchemaState(frozenset()).describe().startswith("empty: the schema")

    def test_older_will_be_migrated_at_start(self) -> None:
        known = (Migration(1, "first", ""), Migration(2, "second", ""))
        state = SchemaState(frozenset({1}), known)
        assert [m.version for m in state.pending] == [2]
        assert state.describe() == (
            "at version 1, older than this symbl-inbox's 2: will be migrated at start (0002 second)"
        )

    def test_up_to_date(self) -> None:
        state = SchemaState(frozenset(m.version for m in known_migrations()))
        assert state.describe().endswith("up to date")
