"""``check-config`` and ``migrate`` against a real PostgreSQL, run as an operator runs them:
what is wrong is said plainly, the schema is applied once even by several hosts at once, and
the database password never shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pg_harness import Database, free_port

from daemon.journal.migrations import known_migrations, latest_version

# Every version the project ships (the journal's own and the cluster's).
LATEST = latest_version()
VERSIONS = [migration.version for migration in known_migrations()]

PASSWORD_VARIABLE = "SYMBL_TEST_DB_PASSWORD"


def write_config(root: Path, url: str, *, password_file: Path | None = None) -> Path:
    (root / "inbox").mkdir(parents=True, exist_ok=True)
    config = root / "config.yaml"
    journal = f"journal:\n  url: {url}\n  connect_timeout_seconds: 3\n"
    if password_file is not None:
        journal += f"  password_file: {password_file}\n"
    config.write_text(
        "symbl:\n  app_id: test-app\n  app_secret: s3cret-value-for-tests\n"
        f"state_dir: {root / 'state'}\n"
        "profiles:\n  default: {}\n"
        f"inboxes:\n  - path: {root / 'inbox'}\n    id: sales\n    profile: default\n"
        f"{journal}"
        "cluster:\n  host_id: host-a\n"
    )
    return config


def run(config: Path, *args: str, password: str = "") -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", PASSWORD_VARIABLE: password},
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


@pytest.fixture
def config(tmp_path: Path, pg_database: Database) -> Path:
    """The database's password comes from the environment, through ``${VAR}`` in the URL."""
    url = pg_database.url_without_password.replace("symbl@", f"symbl:${{{PASSWORD_VARIABLE}}}@")
    return write_config(tmp_path, url)


def schema_versions(database: Database) -> list[object]:
    with database.connect() as connection:
        return [row[0] for row in connection.execute("SELECT version FROM schema_version")]


class TestCheckConfig:
    """``check-config`` connects and says whether the daemon can use the database."""

    def test_an_empty_database_is_fine(self, config: Path, pg_database: Database) -> None:
        result = run(config, "check-config", password=pg_database.password)
        assert result.returncode == 0, result.stderr
        assert result.stderr.splitlines() == [
            f"journal: postgresql://symbl@127.0.0.1:{pg_database.port}/{pg_database.name}: "
            f"reachable; schema empty: the schema (version {LATEST}) is created at start or by "
            "`symbl-inbox migrate`"
        ]
        assert f"  url: {pg_database.url_without_password}\n  password: '***'\n" in result.stdout
        assert pg_database.password not in result.stdout + result.stderr

    def test_wrong_password(self, tmp_path: Path, pg_database: Database) -> None:
        secret = tmp_path / "db-password"
        secret.write_text("not-the-password-42\n")
        config = write_config(tmp_path, pg_database.url_without_password, password_file=secret)
        result = run(config, "check-config")
        assert result.returncode == 1
        assert "authentication failed" in result.stderr
        assert 'password authentication failed for user "symbl"' in result.stderr
        assert "not-the-password-42" not in result.stdout + result.stderr

    def test_password_from_a_file(self, tmp_path: Path, pg_database: Database) -> None:
        secret = tmp_path / "db-password"
        secret.write_text(pg_database.password + "\n")
        config = write_config(tmp_path, pg_database.url_without_password, password_file=secret)
        result = run(config, "check-config")
        assert result.returncode == 0, result.stderr
        assert "reachable; schema empty" in result.stderr
        assert pg_database.password not in result.stdout + result.stderr

    def test_no_password(self, tmp_path: Path, pg_database: Database) -> None:
        result = run(write_config(tmp_path, pg_database.url_without_password), "check-config")
        assert result.returncode == 1
        assert "authentication failed (fe_sendauth: no password supplied)" in result.stderr

    def test_unreachable(self, tmp_path: Path, pg_database: Database) -> None:
        url = pg_database.url_with(password=pg_database.password, port=free_port())
        result = run(write_config(tmp_path, url), "check-config")
        assert result.returncode == 1
        assert "cannot reach the server (Connection refused" in result.stderr
        assert "check the host and port in journal.url" in result.stderr
        assert pg_database.password not in result.stdout + result.stderr

    def test_missing_database(self, tmp_path: Path, pg_database: Database) -> None:
        url = pg_database.url_with(password=pg_database.password, dbname="no_such_db")
        result = run(write_config(tmp_path, url), "check-config")
        assert result.returncode == 1
        assert 'database "no_such_db" does not exist; create it' in result.stderr

    def test_after_migrate_up_to_date(self, config: Path, pg_database: Database) -> None:
        assert run(config, "migrate", password=pg_database.password).returncode == 0
        result = run(config, "check-config", password=pg_database.password)
        assert result.returncode == 0
        assert result.stderr.rstrip().endswith(f"reachable; schema at version {LATEST}, up to date")

    def test_newer_schema(self, config: Path, pg_database: Database) -> None:
        assert run(config, "migrate", password=pg_database.password).returncode == 0
        with pg_database.connect() as connection:
            connection.execute(
                "INSERT INTO schema_version (version, name, applied_by)"
                " VALUES (500, 'later', 'host-z')"
            )
        result = run(config, "check-config", password=pg_database.password)
        assert result.returncode == 1
        assert "schema the journal's schema is at version 500, newer than this" in result.stderr


class TestMigrate:
    """``migrate`` applies what is missing and says so; nothing to do the second time."""

    def test_applies_then_nothing_to_do(self, config: Path, pg_database: Database) -> None:
        where = f"postgresql://symbl@127.0.0.1:{pg_database.port}/{pg_database.name}"
        first = run(config, "migrate", password=pg_database.password)
        assert first.returncode == 0, first.stderr
        assert first.stdout.splitlines() == [
            *(f"{where}: applied {migration}" for migration in known_migrations()),
            f"{where}: schema now at version {LATEST}",
        ]
        again = run(config, "migrate", password=pg_database.password)
        assert again.stdout.splitlines() == [
            f"{where}: schema at version {LATEST}, up to date; nothing to do"
        ]
        assert sorted(schema_versions(pg_database)) == VERSIONS

    def test_hosts_migrating_at_once(self, config: Path, pg_database: Database) -> None:
        env = {"PATH": "/usr/bin:/bin", PASSWORD_VARIABLE: pg_database.password}
        command = [sys.executable, "-m", "daemon", "--config", str(config), "migrate"]
        processes = [
            subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            for _ in range(4)
        ]
        outputs = [process.communicate(timeout=60) for process in processes]
        assert [process.returncode for process in processes] == [0, 0, 0, 0], outputs
        applied = [out for out, _ in outputs if b"applied 0001" in out]
        assert len(applied) == 1
        assert sorted(schema_versions(pg_database)) == VERSIONS

    def test_unreachable(self, tmp_path: Path, pg_database: Database) -> None:
        url = pg_database.url_with(password=pg_database.password, port=free_port())
        result = run(write_config(tmp_path, url), "migrate")
        assert result.returncode == 1
        assert result.stderr.startswith("cannot migrate postgresql://symbl@127.0.0.1:")
        assert pg_database.password not in result.stdout + result.stderr

    def test_sqlite_has_nothing_to_migrate(self, tmp_path: Path) -> None:
        (tmp_path / "inbox").mkdir()
        config = tmp_path / "config.yaml"
        config.write_text(
            "symbl:\n  app_id: a\n  app_secret: s3cret-value-for-tests\n"
            f"state_dir: {tmp_path / 'state'}\nprofiles:\n  default: {{}}\n"
            f"inboxes:\n  - path: {tmp_path / 'inbox'}\n    profile: default\n"
        )
        result = run(config, "migrate")
        assert result.returncode == 0
        assert "nothing to migrate" in result.stdout


class TestOperatorCommands:
    """``status`` on a shared journal: none yet, or out of reach, said plainly."""

    def test_status_before_any_daemon(self, config: Path, pg_database: Database) -> None:
        result = run(config, "status", password=pg_database.password)
        assert result.returncode == 0, result.stderr
        assert (
            f"Journal: none yet at postgresql://symbl@127.0.0.1:{pg_database.port}/"
            f"{pg_database.name} (no daemon has set up its tables)"
        ) in result.stdout

    def test_status_out_of_reach(self, tmp_path: Path, pg_database: Database) -> None:
        url = pg_database.url_with(password=pg_database.password, port=free_port())
        result = run(write_config(tmp_path, url), "status")
        assert result.returncode == 1
        assert result.stderr.startswith("cannot read the journal in postgresql://symbl@")
        assert "cannot reach the server" in result.stderr
        assert pg_database.password not in result.stdout + result.stderr
