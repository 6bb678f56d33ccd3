"""Fixtures for the endpoint tests: a real daemon with its HTTP endpoint on loopback."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import structlog
from endpoint_harness import (
    WAIT_SECONDS,
    Running,
    StartDaemon,
    free_port,
    wait_until,
    write_config,
)

from daemon.config import load_config
from daemon.emulator import EmulatorServer
from daemon.logs import configure_logging
from daemon.service import Daemon


@pytest.fixture
async def start_daemon(tmp_path: Path) -> AsyncIterator[StartDaemon]:
    """``await start_daemon(emulator, **write_config options)``: daemon ready, its endpoint up.

    The daemon starts the endpoint itself from ``http.listen``, as it does in production.
    """
    started: list[tuple[Running, asyncio.Task[int]]] = []
    logs = io.StringIO()
    configure_logging("debug", json=True, stream=logs)

    async def start(
        emulator: EmulatorServer,
        *,
        poll_initial: float = 0.2,
        public_url: bool = False,
        webhook_secret: str | None = None,
        max_jobs: int = 50,
        inbox_id: str | None = None,
    ) -> Running:
        for name in ("inbox", "done", "failed", "state"):
            (tmp_path / name).mkdir(exist_ok=True)
        path = write_config(
            tmp_path,
            emulator.base_url,
            free_port(),
            poll_initial=poll_initial,
            public_url=public_url,
            webhook_secret=webhook_secret,
            max_jobs=max_jobs,
            inbox_id=inbox_id,
        )
        daemon = Daemon(load_config(path))
        task = asyncio.create_task(daemon.run())
        await wait_until(lambda: daemon.ready_event.is_set() or task.done())
        assert not task.done(), "the daemon stopped while starting"
        endpoint = daemon.endpoint
        assert endpoint is not None, "the daemon did not start its endpoint"
        running = Running(daemon, endpoint, httpx.AsyncClient(trust_env=False), tmp_path, logs)
        started.append((running, task))
        return running

    yield start
    for running, task in started:
        await running.http.aclose()
        running.daemon.stop()
        assert await asyncio.wait_for(task, WAIT_SECONDS) == 0
    structlog.reset_defaults()
