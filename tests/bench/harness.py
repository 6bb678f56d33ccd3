"""What the benchmarks share: the daemon as a real process, its log, the emulator's records.

``DaemonProcess`` writes a configuration, starts ``python -m daemon --config X run --log-format
json`` and reads its JSON log lines on a thread, so a benchmark can wait for events (``file_filed``
and friends) with a deadline. Its CPU time and peak RSS come from ``/proc`` while it runs and from
``wait4`` once it has stopped. Every wait here is bounded in time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from client_rss import APP_ID, APP_SECRET, REPO

from daemon.files.samples import make_wav

MIB = 1024 * 1024
STOP_SECONDS = 30.0
READY_SECONDS = 60.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the emulator's side


def token(base_url: str) -> str:
    """An access token from the emulator, as any client gets one."""
    body = {"type": "application", "appId": APP_ID, "appSecret": APP_SECRET}
    answer = httpx.post(f"{base_url}/oauth2/token:generate", json=body, timeout=10)
    answer.raise_for_status()
    value: str = answer.json()["accessToken"]
    return value


def submissions(base_url: str) -> list[dict[str, Any]]:
    """Every submission the emulator accepted so far (method, params, received_at, ...)."""
    answer = httpx.get(f"{base_url}/_emulator/submissions", timeout=10)
    answer.raise_for_status()
    records: list[dict[str, Any]] = answer.json()
    return records


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, step: float = 0.02
) -> float:
    """Poll ``condition`` until it holds; the ``time.time()`` it first held. Bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return time.time()
        time.sleep(step)  # the conditions live in other processes: nothing to block on
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


# ---------------------------------------------------------------- files


def write_wavs(folder: Path, count: int, seconds: float = 0.5, prefix: str = "f") -> list[Path]:
    """``count`` small mono WAVs named ``{prefix}00001.wav``...; the same bytes in each."""
    folder.mkdir(parents=True, exist_ok=True)
    audio = make_wav(seconds)
    paths = [folder / f"{prefix}{index:05d}.wav" for index in range(1, count + 1)]
    for path in paths:
        path.write_bytes(audio)
    return paths


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (``share`` 0.99 of 100 values is the 99th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.4999)))
    return ordered[rank - 1]


def journal_rows(state_dir: Path, counted: str = "*") -> int:
    """Rows in the journal's ``files`` table (``counted``: e.g. ``DISTINCT inbox``), read-only;
    0 before the journal exists."""
    path = state_dir / "journal.sqlite3"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            (count,) = db.execute(f"SELECT count({counted}) FROM files").fetchone()
    except sqlite3.OperationalError:
        return 0  # the schema is not there yet
    return int(count)


# ---------------------------------------------------------------- the daemon


@dataclass
class InboxSpec:
    """One inbox of the benchmark configuration; done/ and failed/ are its subfolders."""

    path: Path
    watch: str = "auto"
    settle_seconds: float = 0.5
    poll_interval_seconds: float = 1.0
    rescan_seconds: float = 300.0
    # ``id``: the same inbox on several hosts that share a journal.
    inbox_id: str | None = None

    def as_yaml(self) -> dict[str, Any]:
        return {
            **({"id": self.inbox_id} if self.inbox_id else {}),
            "path": str(self.path),
            "profile": "bench",
            "done": str(self.path / "done"),
            "failed": str(self.path / "failed"),
            "watch": self.watch,
            "settle_seconds": self.settle_seconds,
            "poll_interval_seconds": self.poll_interval_seconds,
            "rescan_seconds": self.rescan_seconds,
        }


@dataclass
class DaemonOptions:
    max_concurrent_jobs: int = 50
    max_concurrent_uploads: int = 4
    poll_initial_seconds: float = 1.0
    poll_max_seconds: float = 30.0
    poll_backoff_factor: float = 1.5
    # Port of the webhook endpoint, or None to follow jobs by polling alone.
    http_port: int | None = None
    # More settings of the benchmark's profile (e.g. ``stereo: downmix``).
    profile: dict[str, Any] = field(default_factory=dict)
    # The daemon's log_level, when not its default (info).
    log_level: str | None = None
    # The ``journal:`` section (e.g. ``keep_filed_days``), when not the defaults.
    journal: dict[str, Any] | None = None
    # More top-level settings (e.g. ``journal`` and ``cluster`` for several hosts).
    extra: dict[str, Any] = field(default_factory=dict)


def config_text(
    base_url: str, state_dir: Path, inboxes: list[InboxSpec], opts: DaemonOptions
) -> str:
    """The daemon's YAML configuration (JSON is YAML) for these inboxes."""
    config: dict[str, Any] = {
        "symbl": {
            "base_url": base_url,
            "app_id": APP_ID,
            "app_secret": APP_SECRET,
            "max_concurrent_jobs": opts.max_concurrent_jobs,
            "max_concurrent_uploads": opts.max_concurrent_uploads,
        },
        "state_dir": str(state_dir),
        "tracking": {
            "poll_initial_seconds": opts.poll_initial_seconds,
            "poll_max_seconds": opts.poll_max_seconds,
            "poll_backoff_factor": opts.poll_backoff_factor,
        },
        "profiles": {"bench": {"params": {"languageCode": "en-US"}, **opts.profile}},
        "inboxes": [inbox.as_yaml() for inbox in inboxes],
        **opts.extra,
    }
    if opts.log_level is not None:
        config["log_level"] = opts.log_level
    if opts.journal is not None:
        config["journal"] = opts.journal
    if opts.http_port is not None:
        address = f"127.0.0.1:{opts.http_port}"
        config["http"] = {"listen": address, "public_url": f"http://{address}"}
    return json.dumps(config, indent=2)


@dataclass
class LogEvent:
    event: str
    timestamp: float
    fields: dict[str, Any] = field(default_factory=dict)


class DaemonProcess:
    """``symbl-inbox run`` as a child process, with its log events collected as they come."""

    def __init__(
        self,
        workdir: Path,
        base_url: str,
        inboxes: list[InboxSpec],
        options: DaemonOptions | None = None,
        env: dict[str, str] | None = None,
        prefix: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self._env = env
        self._prefix = prefix  # wraps the command (e.g. a user namespace with its own limits)
        self.state_dir = workdir / "state"
        self.config_path = workdir / "config.yaml"
        self.log_path = workdir / "daemon.log"
        self.inboxes = inboxes
        self.options = options or DaemonOptions()
        self._base_url = base_url
        self._events: list[LogEvent] = []
        self._changed = threading.Condition()
        self._process: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self.started_at = 0.0
        self.peak_rss_mib: float | None = None  # VmHWM, known once stopped

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        for inbox in self.inboxes:
            for folder in (inbox.path, inbox.path / "done", inbox.path / "failed"):
                folder.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(
            config_text(self._base_url, self.state_dir, self.inboxes, self.options)
        )
        command = [*self._prefix, sys.executable, "-m", "daemon", "--config", str(self.config_path)]
        command += ["run", "--log-format", "json"]
        # A file, not a pipe: a reader that falls behind must never slow the daemon down.
        with (
            open(self.log_path, "wb") as stdout,
            open(self.workdir / "daemon.stderr", "wb") as stderr,
        ):
            self.started_at = time.time()
            self._process = subprocess.Popen(
                command,
                cwd=REPO,
                stdout=stdout,
                stderr=stderr,
                env=None if self._env is None else {**os.environ, **self._env},
            )
        self._reader = threading.Thread(target=self._read_log, name="daemon-log", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after ``STOP_SECONDS``; ``peak_rss_mib`` is the daemon's VmHWM
        just before.

        Not ``ru_maxrss`` from ``wait4``: Linux keeps a process's peak from before ``execve``,
        when the child was still this benchmark's copy, so ru_maxrss reported the benchmark's
        own peak (108.8 MiB for both the downmix and the conversion rows of one run, whose
        daemons peaked at 70-odd MiB).
        """
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(OSError, KeyError):
            self.peak_rss_mib = self.vm_hwm_mib()
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                if self.peak_rss_mib is None:  # gone before it could be asked
                    self.peak_rss_mib = usage.ru_maxrss / 1024
                break
            if time.monotonic() > deadline:
                process.kill()
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                break
            time.sleep(0.05)  # waiting for a child to exit; wait4 with WNOHANG cannot block
        if self._reader is not None:
            self._reader.join(timeout=5)

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is said to anyone; then reaped."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=STOP_SECONDS)

    def stderr_tail(self, lines: int = 20) -> str:
        path = self.workdir / "daemon.stderr"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # ------------------------------------------------------------ the log

    def _read_log(self) -> None:
        """Follow the log file until the daemon has exited and every line is read."""
        pending = b""
        with open(self.log_path, "rb") as log:
            while True:
                exited = self._exited()
                chunk = log.read()
                if chunk:
                    *lines, pending = (pending + chunk).split(b"\n")
                    self._take(lines)
                elif exited:
                    return
                else:
                    time.sleep(0.005)  # a growing file has nothing to block on

    def _take(self, lines: list[bytes]) -> None:
        events = []
        for raw in lines:
            try:
                data = json.loads(raw)
            except ValueError:
                continue
            stamp = data.pop("timestamp", None)
            moment = datetime.fromisoformat(stamp).timestamp() if stamp else time.time()
            events.append(LogEvent(str(data.pop("event", "")), moment, data))
        with self._changed:
            self._events.extend(events)
            self._changed.notify_all()

    def events(self, name: str) -> list[LogEvent]:
        with self._changed:
            return [event for event in self._events if event.event == name]

    def count(self, name: str) -> int:
        return len(self.events(name))

    def wait_for(self, name: str, count: int = 1, timeout: float = READY_SECONDS) -> list[LogEvent]:
        """Block until ``count`` events called ``name`` were logged; those events."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [event for event in self._events if event.event == name]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._exited():
                    raise TimeoutError(
                        f"the daemon logged {len(found)} of {count} {name} events"
                        f" in {timeout:.0f} s\n{self.stderr_tail()}"
                    )
                self._changed.wait(min(remaining, 0.5))

    def _exited(self) -> bool:
        """Whether the daemon has exited; never reaps it, so that ``wait4`` still can."""
        process = self._process
        if process is None or process.returncode is not None:
            return process is not None
        try:
            found = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return found is not None

    # ------------------------------------------------------------ /proc

    def _status_kib(self, key: str) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def vm_hwm_mib(self) -> float:
        """Peak resident set so far (VmHWM)."""
        return self._status_kib("VmHWM") / 1024

    def cpu_ns_all_threads(self) -> int:
        """Nanoseconds on a CPU, summed over live threads (schedstat: finer than clock ticks)."""
        total = 0
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue  # a thread that just ended
        return total

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the whole process (every thread) so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / CLOCK_TICKS


@contextmanager
def running_daemon(
    workdir: Path,
    base_url: str,
    inboxes: list[InboxSpec],
    options: DaemonOptions | None = None,
    *,
    wait_ready: bool = True,
    env: dict[str, str] | None = None,
    prefix: tuple[str, ...] = (),
) -> Iterator[DaemonProcess]:
    """A started daemon (ready, unless told not to wait); stopped on the way out, come what may.

    ``env`` adds environment variables for the daemon (e.g. to profile it).
    """
    daemon = DaemonProcess(workdir, base_url, inboxes, options, env, prefix)
    daemon.start()
    try:
        if wait_ready:
            daemon.wait_for("daemon_ready")
        yield daemon
    finally:
        daemon.stop()
