"""Helpers for the endpoint tests: a config on loopback, a running daemon."""

from __future__ import annotations

import io
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from async_waiting import WAIT_SECONDS, wait_until

from daemon.http.endpoint import Endpoint
from daemon.service import Daemon

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now (the config needs one before the endpoint binds)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Running:
    """A started daemon, its endpoint, an HTTP client for it and the daemon's log output."""

    daemon: Daemon
    endpoint: Endpoint
    http: httpx.AsyncClient
    root: Path
    logs: io.StringIO

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.endpoint.port}"

    def filed(self, name: str) -> Path | None:
        """The record written beside ``name`` in done/ or failed/, once it is filed."""
        for folder, suffix in (("done", ".result.json"), ("failed", ".error.json")):
            record = self.root / folder / f"{name}{suffix}"
            if record.exists():
                return record
        return None

    async def wait_filed(self, *names: str, within: float = WAIT_SECONDS) -> None:
        await wait_until(lambda: all(self.filed(name) for name in names), within)


def write_config(
    root: Path,
    base_url: str,
    port: int,
    *,
    poll_initial: float = 0.2,
    public_url: bool = False,
    webhook_secret: str | None = None,
    max_jobs: int = 50,
    inbox_id: str | None = None,
) -> Path:
    http = f"http:\n  listen: {LOOPBACK}:{port}\n"
    if public_url:
        http += f"  public_url: http://{LOOPBACK}:{port}\n"
    if webhook_secret is not None:
        http += f"  webhook_secret: {webhook_secret}\n"
    config = root / "config.yaml"
    config.write_text(
        "symbl:\n"
        f"  base_url: {base_url}\n"
        "  app_id: endpoint-test-app\n"
        "  app_secret: endpoint-test-app-secret\n"
        f"  max_concurrent_jobs: {max_jobs}\n"
        f"state_dir: {root / 'state'}\n"
        "log_level: debug\n"
        "tracking:\n"
        f"  poll_initial_seconds: {poll_initial}\n"
        f"  poll_max_seconds: {max(poll_initial, 2.0) * 3}\n"
        "profiles:\n"
        "  default:\n"
        "    params:\n"
        "      languageCode: en-US\n"
        "inboxes:\n"
        f"  - path: {root / 'inbox'}\n"
        + (f"    id: {inbox_id}\n" if inbox_id else "")
        + "    profile: default\n"
        f"    done: {root / 'done'}\n"
        f"    failed: {root / 'failed'}\n"
        "    settle_seconds: 0.2\n" + http
    )
    return config


StartDaemon = Callable[..., Awaitable[Running]]
