"""The configuration chooses the journal: SQLite in state_dir without journal.url, the shared
PostgreSQL with it; operators find no journal in a database no daemon has set up yet."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pg_harness import Database

from daemon.config.model import ClusterSettings, Config, SymblSettings
from daemon.journal import SqliteJournal
from daemon.journal.opening import JournalUnavailable, open_for_operator, open_journal
from daemon.journal.postgres import PostgresJournal


def config_for(tmp_path: Path, database: Database | None, **journal: object) -> Config:
    return Config(
        source=tmp_path / "config.yaml",
        symbl=SymblSettings(base_url="http://127.0.0.1:9", app_id="a", app_secret="s"),
        state_dir=tmp_path / "state",
        profiles={},
        inboxes=(),
        journal=database.journal_settings(**journal) if database else None,
        cluster=ClusterSettings(host_id="host-a"),
    )


class TestChoice:
    """journal.url decides the store."""

    async def test_sqlite_without_a_url(self, tmp_path: Path) -> None:
        config = config_for(tmp_path, None)
        assert await open_for_operator(config) is None  # no daemon has run yet
        journal = await open_journal(config)
        assert isinstance(journal, SqliteJournal)
        assert journal.location == str(tmp_path / "state" / "journal.sqlite3")
        await journal.close()

    async def test_postgres_with_a_url(self, tmp_path: Path, pg_database: Database) -> None:
        config = config_for(tmp_path, pg_database)
        assert await open_for_operator(config) is None  # the schema is made by a daemon
        journal = await open_journal(config)
        assert isinstance(journal, PostgresJournal) and journal.host_id == "host-a"
        await journal.close()
        reader = await open_for_operator(config)
        assert isinstance(reader, PostgresJournal)
        await reader.close()


class TestRefusals:
    """What cannot be used is said once, with where and why, never with the password."""

    async def test_wrong_password(self, tmp_path: Path, pg_database: Database) -> None:
        config = config_for(tmp_path, pg_database, password="bad-password-991")
        for opening in (open_journal, open_for_operator):
            with pytest.raises(JournalUnavailable) as caught:
                await opening(config)
            message = str(caught.value)
            assert message.startswith(f"postgresql://symbl@127.0.0.1:{pg_database.port}/")
            assert "authentication failed" in message
            assert "bad-password-991" not in message

    async def test_newer_schema(self, tmp_path: Path, pg_database: Database) -> None:
        config = config_for(tmp_path, pg_database)
        await (await open_journal(config)).close()
        with pg_database.connect() as connection:
            connection.execute(
                "INSERT INTO schema_version (version, name, applied_by) VALUES (77, 'x', 'z')"
            )
        with pytest.raises(JournalUnavailable, match="newer than this symbl-inbox knows"):
            await open_journal(dataclasses.replace(config))
