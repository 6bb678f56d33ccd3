"""The real daemon as a subprocess, the CLI as a user runs it, and an sd_notify listener.

Everything happens in a test's own temp folder, over loopback, against the emulator fixture.
Waiting is always for a condition, with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APP_SECRET = "service-test-secret-5f1e"
DEADLINE_SECONDS = 30.0


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = DEADLINE_SECONDS) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Site:
    """One test's world: a config file, one inbox with done/ and failed/, a state directory."""

    root: Path
    base_url: str
    profiles: str = "  default:\n    params:\n      languageCode: en-US\n"
    app_secret: str = APP_SECRET
    # More lines under ``symbl:`` (proxy, ca_file...), each indented by two spaces.
    symbl_extra: str = ""

    def __post_init__(self) -> None:
        for folder in (self.inbox, self.done, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        self.write_config()

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    @property
    def done(self) -> Path:
        return self.root / "done"

    @property
    def failed(self) -> Path:
        return self.root / "failed"

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    def write_config(self) -> None:
        self.config.write_text(
            "symbl:\n"
            f"  base_url: {self.base_url}\n"
            "  app_id: service-tests\n"
            f"  app_secret: {self.app_secret}\n"
            f"{self.symbl_extra}"
            f"state_dir: {self.state_dir}\n"
            "log_level: debug\n"
            "shutdown_timeout_seconds: 5\n"
            "tracking:\n"
            "  poll_initial_seconds: 0.2\n"
            "  poll_max_seconds: 0.5\n"
            f"profiles:\n{self.profiles}"
            "inboxes:\n"
            f"  - path: {self.inbox}\n"
            "    profile: default\n"
            f"    done: {self.done}\n"
            f"    failed: {self.failed}\n"
            "    settle_seconds: 0.5\n"
        )

    def cli(
        self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """``symbl-inbox --config CONFIG ARGS...`` as a user would run it (``env``: more
        variables, e.g. HTTPS_PROXY)."""
        result = subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=DEADLINE_SECONDS * 2,
            cwd=cwd or self.root,
            env=_child_env(env),
        )
        # Whatever a command prints, the app secret is never part of it.
        assert self.app_secret not in result.stdout + result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        return result

    def cli_json(self, *args: str) -> Any:
        result = self.cli(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def filed(self, folder: Path, name: str, suffix: str) -> dict[str, Any] | None:
        """The record beside ``folder/name`` once it has been written."""
        path = folder / f"{name}{suffix}"
        if not (path.exists() and (folder / name).exists()):
            return None
        record: dict[str, Any] = json.loads(path.read_text())
        return record

    def wait_done(self, name: str) -> dict[str, Any]:
        record: dict[str, Any] = wait_for(
            lambda: self.filed(self.done, name, ".result.json"), f"{name} in done/"
        )
        return record

    def wait_failed(self, name: str) -> dict[str, Any]:
        record: dict[str, Any] = wait_for(
            lambda: self.filed(self.failed, name, ".error.json"), f"{name} in failed/"
        )
        return record


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "SYMBL_INBOX_CONFIG")
    }
    env.update(extra or {})
    return env


@dataclass
class DaemonProcess:
    """``symbl-inbox --config CONFIG run``, its log in a file, stopped with SIGTERM."""

    site: Site
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.site.root / "daemon.log"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> DaemonProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "daemon", "--config", str(self.site.config), "run"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_child_env(self.env),
                cwd=self.site.root,
            )
        return self

    def log_events(self) -> list[str]:
        events = []
        for line in self.log_path.read_text().splitlines():
            try:
                events.append(json.loads(line).get("event", ""))
            except ValueError:
                continue
        return events

    def wait_ready(self) -> None:
        wait_for(lambda: "daemon_ready" in self.log_events() or self._died(), "daemon_ready")
        assert not self._died(), self.log_path.read_text()

    def _died(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self) -> int:
        """SIGTERM and the exit code; a daemon that does not stop in time is killed and fails."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("the daemon did not stop within the deadline") from None


class NotifyListener:
    """An AF_UNIX datagram socket standing in for systemd's; collects what the daemon says."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.messages: list[tuple[float, list[str]]] = []
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.settimeout(0.1)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._closed.is_set():
            try:
                data = self._socket.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append((time.monotonic(), data.decode().split("\n")))

    def snapshot(self) -> list[tuple[float, list[str]]]:
        with self._lock:
            return list(self.messages)

    def lines(self) -> list[str]:
        return [line for _, message in self.snapshot() for line in message]

    def times_of(self, line: str) -> list[float]:
        return [when for when, message in self.snapshot() if line in message]

    def wait_for_message(self, line: str) -> list[str]:
        """The first datagram that holds ``line``."""
        message: list[str] = wait_for(
            lambda: next((m for _, m in self.snapshot() if line in m), None), f"{line!r}"
        )
        return message

    def close(self) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self._socket.close()
