"""The daemon on a shared PostgreSQL journal (journal.url), as a real process against the
emulator: files reach done/ and failed/ as with SQLite, the records live in the database under
the inbox's id and this host's id, the operator commands read them there, a SIGKILL loses
nothing, and an unusable database stops the start with a clear reason and no password."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from e2e_harness import DaemonHarness, sha256_of, wait_until
from pg_harness import Database, PostgresServer, free_port

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav
from daemon.journal.migrations import known_migrations

PASSWORD_VARIABLE = "SYMBL_E2E_DB_PASSWORD"


def shared_harness(
    make: Callable[..., DaemonHarness], database: Database, **options: Any
) -> DaemonHarness:
    """A daemon whose journal is ``database``; the password comes from the environment."""
    url = database.url_without_password.replace("symbl@", f"symbl:${{{PASSWORD_VARIABLE}}}@")
    return make(
        inbox_options={"id": "sales"},
        extra={"journal": {"url": url}, "cluster": {"host_id": "host-a"}},
        **options,
    )


def start(harness: DaemonHarness, database: Database) -> None:
    harness.start(env={PASSWORD_VARIABLE: database.password})


def cli(harness: DaemonHarness, database: Database, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "daemon", "--config", str(harness.config_path), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", PASSWORD_VARIABLE: database.password},
    )
    assert "Traceback" not in result.stderr, result.stderr
    assert database.password not in result.stdout + result.stderr
    return result


def rows(database: Database, query: str) -> list[tuple[Any, ...]]:
    with database.connect() as connection:
        return connection.execute(query).fetchall()  # type: ignore[arg-type]  # tests' own SQL


class TestSharedJournal:
    """One daemon on PostgreSQL does what it does on SQLite, and the journal shows it."""

    def test_files_are_filed_and_recorded_in_postgres(
        self, harness_factory: Callable[..., DaemonHarness], pg_database: Database
    ) -> None:
        harness = shared_harness(harness_factory, pg_database)
        for index in range(3):
            (harness.inbox / f"call-{index}.wav").write_bytes(make_wav(0.05 + index / 1000))
        (harness.inbox / "notes.wav").write_bytes(b"this is not audio at all")
        start(harness, pg_database)
        harness.wait_filed(4)

        assert set(harness.results()) == {"call-0.wav", "call-1.wav", "call-2.wav"}
        assert harness.errors()["notes.wav"]["reason"] == "not_audio"
        wait_until(
            lambda: len(rows(pg_database, "SELECT 1 FROM files WHERE state = 'filed'")) == 4,
            15,
            "the journal to say filed",
        )
        assert rows(
            pg_database,
            "SELECT inbox, host_id, outcome, count(*) FROM files GROUP BY 1, 2, 3 ORDER BY 3",
        ) == [("sales", "host-a", "done", 3), ("sales", "host-a", "failed", 1)]

        status = json.loads(cli(harness, pg_database, "status", "--json").stdout)
        assert status["journal"] == (
            f"postgresql://symbl@127.0.0.1:{pg_database.port}/{pg_database.name}"
        )
        [inbox] = status["inboxes"]
        assert (inbox["path"], inbox["counts"]["filed_done"]) == ("sales", 3)
        assert inbox["counts"]["filed_failed"] == 1
        [host] = status["hosts"]
        assert host["host"] == "host-a"
        assert (host["counts"]["filed_done"], host["counts"]["filed_failed"]) == (3, 1)
        text = cli(harness, pg_database, "status").stdout
        assert "host-a" in text
        conversations = json.loads(cli(harness, pg_database, "conversations", "--json").stdout)
        assert conversations == {"conversations": []}

        retried = cli(harness, pg_database, "retry", str(harness.failed / "notes.wav"))
        assert retried.returncode == 0, retried.stderr
        assert rows(pg_database, "SELECT outcome FROM files WHERE outcome = 'retried'") == [
            ("retried",)
        ]
        assert harness.stop() == 0

    def test_sigkill_mid_run_loses_nothing(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
        pg_database: Database,
    ) -> None:
        server = emulator_factory(job_seconds=0.5, seed=3)
        harness = shared_harness(
            harness_factory,
            pg_database,
            emulator=server,
            symbl_options={"max_concurrent_jobs": 5, "max_concurrent_uploads": 2},
        )
        expected = {}
        for index in range(30):
            data = make_wav(0.05 + index / 4000)
            (harness.inbox / f"kill-{index:02}.wav").write_bytes(data)
            expected[f"kill-{index:02}.wav"] = sha256_of(data)
        start(harness, pg_database)
        wait_until(lambda: len(server.state.submissions) >= 8, 30, "some files sent")
        harness.kill()
        start(harness, pg_database)
        harness.wait_filed(30, timeout=90)
        assert harness.stop() == 0

        results = harness.results()
        assert set(results) == set(expected)
        assert {name: result["sha256"] for name, result in results.items()} == expected
        uploads = harness.submissions_by_sha()
        assert set(uploads) == set(expected.values())
        # At most the uploads in flight at the kill went twice (the at-least-once window).
        assert sum(count - 1 for count in uploads.values()) <= 2


class TestStartingTogether:
    """Hosts that start at the same moment on an empty database: one creates the schema,
    every one starts."""

    def test_three_daemons_at_once(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator: EmulatorServer,
        pg_database: Database,
    ) -> None:
        url = pg_database.url_without_password.replace("symbl@", f"symbl:${{{PASSWORD_VARIABLE}}}@")
        harnesses = [
            harness_factory(
                emulator=emulator,
                inbox_options={"id": f"inbox-{index}"},
                extra={"journal": {"url": url}, "cluster": {"host_id": f"host-{index}"}},
            )
            for index in range(3)
        ]
        for harness in harnesses:  # all at once: nobody waits for another to be ready
            with open(harness.log_path, "wb") as log:
                harness.process = subprocess.Popen(
                    [sys.executable, "-m", "daemon", "--config", str(harness.config_path), "run"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={"PATH": "/usr/bin:/bin", PASSWORD_VARIABLE: pg_database.password},
                )
        try:
            wait_until(
                lambda: all(h.event_count("daemon_ready") == 1 or h.exited() for h in harnesses),
                30,
                "three daemons ready",
            )
            assert [h.event_count("daemon_ready") for h in harnesses] == [1, 1, 1]
            assert sum(h.event_count("journal_migrated") for h in harnesses) == 1
            versions = rows(pg_database, "SELECT version FROM schema_version ORDER BY version")
            assert versions == [(migration.version,) for migration in known_migrations()]
        finally:
            for harness in harnesses:
                harness.stop()


class TestJobCap:
    """Taking the next file awaits the database: the job cap still holds, no 429 from it."""

    def test_a_backlog_at_the_accounts_limit(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
        pg_database: Database,
    ) -> None:
        server = emulator_factory(job_seconds=0.3, max_jobs=10, seed=5)
        harness = shared_harness(
            harness_factory,
            pg_database,
            emulator=server,
            symbl_options={"max_concurrent_jobs": 10, "max_concurrent_uploads": 4},
        )
        for index in range(80):
            (harness.inbox / f"cap-{index:02}.wav").write_bytes(make_wav(0.05 + index / 4000))
        start(harness, pg_database)
        harness.wait_filed(80, timeout=90)
        assert harness.stop() == 0
        assert len(harness.results()) == 80
        assert harness.event_count("submissions_paused") == 0
        assert len(server.state.submissions) == 80


class TestDroppedConnections:
    """The database drops every connection of the daemon mid-run (a restart, an
    administrator): the daemon carries on and files everything (an admission batch caught
    by the cut is looked at again 30 s later)."""

    # Two cuts can each send an admission batch to its 30 s second look, on top of the run:
    # the 120 s default would end the test while wait_filed still has time left.
    @pytest.mark.timeout(300)
    def test_connections_cut_mid_run(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
        pg_database: Database,
        postgres_server: PostgresServer,
    ) -> None:
        server = emulator_factory(job_seconds=0.5, seed=9)
        harness = shared_harness(
            harness_factory,
            pg_database,
            emulator=server,
            symbl_options={"max_concurrent_jobs": 5, "max_concurrent_uploads": 2},
        )
        for index in range(30):
            (harness.inbox / f"cut-{index:02}.wav").write_bytes(make_wav(0.05 + index / 4000))
        start(harness, pg_database)
        for sent in (5, 15):
            wait_until(lambda n=sent: len(server.state.submissions) >= n, 60, f"{sent} sent")
            assert postgres_server.terminate_connections(pg_database.name) >= 1
        harness.wait_filed(30, timeout=120)
        assert harness.stop() == 0
        assert sorted(harness.results()) == [f"cut-{index:02}.wav" for index in range(30)]
        # A submission whose answer was lost with the connection may go twice (at least once).
        assert len(server.state.submissions) <= 32


class TestUnusableDatabase:
    """A database the daemon cannot use ends the start (exit 1) saying why."""

    def run_daemon(self, harness: DaemonHarness, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(harness.config_path), "run"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", PASSWORD_VARIABLE: password},
        )

    def test_wrong_password(
        self, harness_factory: Callable[..., DaemonHarness], pg_database: Database
    ) -> None:
        harness = shared_harness(harness_factory, pg_database)
        result = self.run_daemon(harness, "not-the-password-77")
        assert result.returncode == 1
        assert "journal_unreadable" in result.stdout
        assert "authentication failed" in result.stdout
        assert "not-the-password-77" not in result.stdout + result.stderr

    def test_unreachable(
        self, harness_factory: Callable[..., DaemonHarness], pg_database: Database
    ) -> None:
        harness = harness_factory(
            inbox_options={"id": "sales"},
            extra={
                "journal": {
                    "url": pg_database.url_with(password=None, port=free_port()),
                    "password": f"${{{PASSWORD_VARIABLE}}}",
                    "connect_timeout_seconds": 2,
                }
            },
        )
        result = self.run_daemon(harness, pg_database.password)
        assert result.returncode == 1
        assert "cannot reach the server" in result.stdout
        assert pg_database.password not in result.stdout + result.stderr
