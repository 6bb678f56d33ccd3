"""Shared fixtures: a running Symbl emulator on a free loopback port, stopped at teardown;
a real proxy and a throwaway CA for the network tests."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pg_harness
import proxy_harness
import pytest
import trustme
from proxy_harness import Tinyproxy

from daemon.emulator import EmulatorServer, EmulatorSettings

FAST_DEFAULTS: dict[str, Any] = {"job_seconds": 0.3, "seed": 1}


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon honours HTTPS_PROXY and company: a developer's own proxy settings must not
    route the tests' loopback traffic; the proxy tests set them where they mean to."""
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)


@pytest.fixture
def emulator_factory() -> Iterator[Callable[..., EmulatorServer]]:
    """``emulator_factory(**settings)`` starts an emulator with fast defaults plus overrides."""
    started: list[EmulatorServer] = []

    def start(**overrides: Any) -> EmulatorServer:
        server = EmulatorServer(EmulatorSettings(**{**FAST_DEFAULTS, **overrides}))
        server.start()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        server.stop()


@pytest.fixture
def emulator(emulator_factory: Callable[..., EmulatorServer]) -> EmulatorServer:
    """A started emulator with fast jobs (0.3 s) and seeded fault choices."""
    return emulator_factory()


@pytest.fixture
def tinyproxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    """Debian's tinyproxy on a free loopback port, without authentication."""
    with Tinyproxy(tmp_path / "proxy") as proxy:
        yield proxy


@pytest.fixture
def authority() -> trustme.CA:
    """A throwaway certificate authority, standing in for a company's private CA."""
    return trustme.CA()


@pytest.fixture
def tls_emulator(tmp_path: Path, authority: trustme.CA) -> Iterator[EmulatorServer]:
    """The emulator over HTTPS, its certificate signed by ``authority``."""
    with proxy_harness.tls_emulator(tmp_path, authority) as server:
        yield server


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[pg_harness.PostgresServer]:
    """A throwaway PostgreSQL for the whole session (as ``nobody`` when the tests run as root);
    tests that need one skip, saying why, where none can be started."""
    try:
        server = pg_harness.PostgresServer()
        server.start()
    except pg_harness.PostgresUnavailable as exc:
        pytest.skip(f"no PostgreSQL for this test: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_database(postgres_server: pg_harness.PostgresServer) -> Iterator[pg_harness.Database]:
    """A fresh, empty database of its own for one test, dropped afterwards."""
    database = postgres_server.create_database()
    yield database
    postgres_server.drop_database(database.name)
