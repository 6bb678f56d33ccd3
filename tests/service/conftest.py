"""Fixtures for the service tests: a site per test and daemons that are always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from service_harness import DaemonProcess, Site

from daemon.emulator import EmulatorServer


@pytest.fixture
def site(tmp_path: Path, emulator: EmulatorServer) -> Site:
    """A config, an inbox with done/ and failed/, and a state directory, against the emulator."""
    return Site(tmp_path, emulator.base_url)


@pytest.fixture
def start_daemon() -> Iterator[Callable[..., DaemonProcess]]:
    """``start_daemon(site, env={...})`` runs the real daemon; teardown stops what is left."""
    started: list[DaemonProcess] = []

    def start(site: Site, env: dict[str, str] | None = None) -> DaemonProcess:
        daemon = DaemonProcess(site, dict(env or {})).start()
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        if daemon.process is not None and daemon.process.poll() is None:
            daemon.stop()
