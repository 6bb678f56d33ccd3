"""The throwaway PostgreSQL the journal tests use runs unprivileged and gives each test its own
database, reached with a password over loopback TCP."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from pg_harness import Database, PostgresServer


class TestHarness:
    """What the other PostgreSQL tests rely on."""

    def test_a_database_of_its_own_reached_with_the_password(self, pg_database: Database) -> None:
        with pg_database.connect() as connection:
            row = connection.execute("SELECT current_database(), current_user").fetchone()
        assert row == (pg_database.name, "symbl")

    def test_a_wrong_password_is_refused(self, pg_database: Database) -> None:
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(pg_database.url_with(password="wrong-password")).close()

    def test_the_server_does_not_run_as_root(self, postgres_server: PostgresServer) -> None:
        with postgres_server.admin() as admin:
            row = admin.execute("SELECT current_setting('data_directory')").fetchone()
        assert row is not None
        assert Path(str(row[0])).stat().st_uid != 0
