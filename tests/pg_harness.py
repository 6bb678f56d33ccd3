"""A throwaway PostgreSQL server for tests: Debian's own server binaries, started per session.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as ``nobody``
(through ``setpriv``), in a folder of its own under the system's temporary folder (pytest's own
folders are private to root). It listens on a free loopback port and on a unix socket in that
folder; fsync is off, since nothing in it has to outlive the session.

Each test gets a database of its own (``CREATE DATABASE`` is quick), owned by a login role with
a password, reached over TCP with scram-sha-256 as the daemon would reach a real server; the
harness itself administers through the socket as the superuser.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
from proxy_harness import free_port
from psycopg import sql

from daemon.config.model import JournalSettings

SUPERUSER = "postgres"
ROLE = "symbl"
ROLE_PASSWORD = "pg-test-secret-7f3a"  # long enough for the log masker to register it
UNPRIVILEGED_USER = "nobody"
_START_SECONDS = 30.0


class PostgresUnavailable(Exception):
    """Why no server can be started here (the tests that need one skip with this reason)."""


def server_binaries() -> Path:
    """The folder of ``initdb``, ``pg_ctl`` and ``postgres``: Debian's newest version first."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
        reverse=True,
    )
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found (install the Debian package postgresql)"
    )


@dataclass(frozen=True)
class Database:
    """One test's database: reach it with ``url`` (password included) as role ``symbl``."""

    server: PostgresServer
    name: str
    user: str = ROLE
    password: str = ROLE_PASSWORD

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.url_with(password=self.password)

    @property
    def url_without_password(self) -> str:
        return self.url_with(password=None)

    def url_with(
        self,
        *,
        password: str | None,
        user: str | None = None,
        port: int | None = None,
        dbname: str | None = None,
    ) -> str:
        login = quote(user or self.user, safe="")
        if password is not None:
            login += ":" + quote(password, safe="")
        return f"postgresql://{login}@{self.host}:{port or self.port}/{quote(dbname or self.name)}"

    def journal_settings(self, **changes: object) -> JournalSettings:
        """``journal:`` as the configuration gives it: the URL without, the password beside."""
        settings = JournalSettings(url=self.url_without_password, password=self.password)
        return dataclasses.replace(settings, **changes)

    def connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection as the database's owner, for a test's own checks."""
        return psycopg.connect(self.url, autocommit=True)


class PostgresServer:
    """``with PostgresServer() as server: db = server.create_database()``."""

    def __init__(self, listen: Sequence[str] = ("127.0.0.1",)) -> None:
        self.bin = server_binaries()
        self.listen = tuple(listen)
        self.as_user: pwd.struct_passwd | None = None
        if os.geteuid() == 0:
            try:
                self.as_user = pwd.getpwnam(UNPRIVILEGED_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"running as root and there is no user {UNPRIVILEGED_USER!r} to run "
                    "PostgreSQL as (it refuses to run as root)"
                ) from None
            if shutil.which("setpriv") is None:
                raise PostgresUnavailable("running as root and setpriv (util-linux) is missing")
        self.folder = Path(tempfile.mkdtemp(prefix="symbl-inbox-pg-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder
        self.log_path = self.folder / "server.log"
        self.port = 0
        self._names = itertools.count(1)
        if self.as_user is not None:
            os.chown(self.folder, self.as_user.pw_uid, self.as_user.pw_gid)
        self.folder.chmod(0o700)

    # ------------------------------------------------------------------ lifecycle

    def _run(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.as_user is not None:
            command = [
                "setpriv",
                f"--reuid={self.as_user.pw_uid}",
                f"--regid={self.as_user.pw_gid}",
                "--clear-groups",
                *command,
            ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
        return subprocess.run(
            command,
            env=env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def start(self) -> None:
        password_file = self.folder / "superuser-password"
        password_file.write_text(ROLE_PASSWORD + "\n")
        if self.as_user is not None:
            os.chown(password_file, self.as_user.pw_uid, self.as_user.pw_gid)
        done = self._run(
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        password_file.unlink()
        if done.returncode != 0:
            raise PostgresUnavailable(f"initdb failed: {done.stderr.strip() or done.stdout}")
        last_error = ""
        for _ in range(5):  # a free port may be taken between choosing it and listening
            self.port = free_port()
            options = " ".join(
                [
                    f"-p {self.port}",
                    f"-k {self.socket_dir}",
                    f"-c listen_addresses={','.join(self.listen)}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=200",
                    "-c shared_buffers=32MB",
                ]
            )
            started = self._run(
                [
                    str(self.bin / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log_path),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    str(int(_START_SECONDS)),
                    "start",
                ]
            )
            if started.returncode == 0:
                break
            last_error = self.log_text()[-2000:] or started.stderr
        else:
            raise PostgresUnavailable(f"PostgreSQL did not start: {last_error}")
        with self.admin() as admin:
            admin.execute(
                sql.SQL("CREATE ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(ROLE), sql.Literal(ROLE_PASSWORD)
                )
            )

    def stop(self) -> None:
        if self.data.exists() and self.port:
            self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"])
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ administration

    @contextlib.contextmanager
    def admin(self, dbname: str = "postgres") -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """The superuser over the unix socket (trusted), autocommit."""
        with psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=SUPERUSER,
            dbname=dbname,
            autocommit=True,
        ) as connection:
            yield connection

    def create_database(self, name: str | None = None) -> Database:
        """A fresh, empty database owned by role ``symbl``."""
        name = name or f"test_{os.getpid()}_{next(self._names)}"
        with self.admin() as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                    sql.Identifier(name), sql.Identifier(ROLE)
                )
            )
        return Database(self, name)

    def drop_database(self, name: str) -> None:
        with self.admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def terminate_connections(self, dbname: str, application_name: str | None = None) -> int:
        """Cut every session to ``dbname`` (optionally only one application's); how many."""
        query = (
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()"
        )
        params: list[object] = [dbname]
        if application_name is not None:
            query += " AND application_name = %s"
            params.append(application_name)
        with self.admin() as admin:
            row = admin.execute(query, params).fetchone()
        return int(row[0]) if row else 0  # type: ignore[call-overload]  # count() is an int
