"""Run the real daemon as a process on real folders, against the in-process emulator."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.emulator import EmulatorServer

FAST_TRACKING = {"poll_initial_seconds": 0.1, "poll_max_seconds": 0.5, "poll_backoff_factor": 1.5}


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def without_root_privileges() -> tuple[str, ...]:
    """A command prefix under which root obeys file permissions, as the service user would.

    Root reads and writes anything; the tests of unreadable files and unwritable folders need
    the daemon to meet permissions as its unprivileged service user does.
    """
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search")


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DaemonHarness:
    """One daemon configuration in ``root``; start, stop, kill and inspect the real process."""

    def __init__(
        self,
        root: Path,
        emulator: EmulatorServer,
        *,
        inbox_options: dict[str, Any] | None = None,
        symbl_options: dict[str, Any] | None = None,
        profile: dict[str, Any] | None = None,
        extra_profiles: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.root = root
        self.emulator = emulator
        self.inbox = root / "inbox"
        self.done = root / "done"
        self.failed = root / "failed"
        self.state_dir = root / "state"
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.config_path = root / "config.yaml"
        self.log_path = root / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.write_config(inbox_options, symbl_options, profile, extra_profiles, extra)

    def write_config(
        self,
        inbox_options: dict[str, Any] | None = None,
        symbl_options: dict[str, Any] | None = None,
        profile: dict[str, Any] | None = None,
        extra_profiles: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        config: dict[str, Any] = {
            "symbl": {
                "base_url": self.emulator.base_url,
                "app_id": "test-app",
                "app_secret": "test-secret-value-42",
                **(symbl_options or {}),
            },
            "state_dir": str(self.state_dir),
            "log_level": "debug",
            "tracking": FAST_TRACKING,
            "shutdown_timeout_seconds": 5,
            "profiles": {
                "default": profile or {"params": {"languageCode": "en-US"}},
                **(extra_profiles or {}),
            },
            "inboxes": [
                {
                    "path": str(self.inbox),
                    "profile": "default",
                    "done": str(self.done),
                    "failed": str(self.failed),
                    "settle_seconds": 0.2,
                    **(inbox_options or {}),
                }
            ],
            **(extra or {}),
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    # ------------------------------------------------------------------ process

    def start(self, *, prefix: tuple[str, ...] = (), **popen: Any) -> None:
        """Start the daemon (``prefix`` wraps the command, e.g. to drop capabilities)."""
        assert self.process is None or self.process.poll() is not None
        self.starts += 1
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it for its lifetime
        env = {**os.environ, **popen.pop("env", {})}
        self.process = subprocess.Popen(
            [*prefix, sys.executable, "-m", "daemon", "--config", str(self.config_path), "run",
             "--log-format", "json"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            **popen,
        )  # fmt: skip
        log.close()
        wait_until(
            lambda: self.event_count("daemon_ready") >= self.starts or self.exited(),
            30,
            "the daemon to be ready",
        )
        assert not self.exited(), self.log_text()

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    # ------------------------------------------------------------------ inspection

    def status(self, runtime: Path) -> dict[str, Any]:
        """``symbl-inbox status --json``, reading live.json from ``runtime``."""
        done = subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(self.config_path), "status", "--json"],
            capture_output=True, text=True, timeout=30,
            env={**os.environ, "RUNTIME_DIRECTORY": str(runtime)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result: dict[str, Any] = json.loads(done.stdout)
        return result

    def status_text(self, runtime: Path) -> str:
        """``symbl-inbox status`` as printed, reading live.json from ``runtime``."""
        return subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(self.config_path), "status"],
            capture_output=True, text=True, timeout=30, check=True,
            env={**os.environ, "RUNTIME_DIRECTORY": str(runtime)},
        ).stdout  # fmt: skip

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def events(self) -> Iterator[dict[str, Any]]:
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                try:
                    yield json.loads(line)
                except ValueError:
                    continue

    def event_count(self, name: str) -> int:
        return sum(1 for event in self.events() if event.get("event") == name)

    def results(self) -> dict[str, dict[str, Any]]:
        """done/ records by the file's relative path."""
        return self._records(self.done, ".result.json")

    def errors(self) -> dict[str, dict[str, Any]]:
        """failed/ records by the file's relative path."""
        return self._records(self.failed, ".error.json")

    @staticmethod
    def _records(folder: Path, suffix: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        if not folder.exists():
            return found
        for path in folder.rglob(f"*{suffix}"):
            if path.name.startswith("."):
                continue  # the daemon's temporary name while it writes the record
            rel = path.relative_to(folder).as_posix()[: -len(suffix)]
            try:
                record = json.loads(path.read_text())
            except (ValueError, FileNotFoundError):
                continue  # renamed or half-read: the next poll reads it whole
            if not record.get("recordNameShortened") and not os.path.lexists(folder / rel):
                continue  # the record is written first; the file is filed once it follows
            found[rel] = record
        return found

    def wait_filed(self, count: int, timeout: float = 30) -> None:
        wait_until(
            lambda: len(self.results()) + len(self.errors()) >= count,
            timeout,
            f"{count} files filed (log:\n{self.log_text()[-3000:]})",
        )

    def submissions_by_sha(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.emulator.state.submissions:
            if record.sha256:
                counts[record.sha256] = counts.get(record.sha256, 0) + 1
        return counts
