"""What the daemon is doing right now, as one snapshot: stalls, inboxes, uploads in flight.

The journal holds what lasts; this holds what is live and would be lost with the process
(a 429 pause, an upload at 40 %, credentials refused a minute ago). The HTTP endpoint, the
status page and the metrics read it through ``daemon.http.view.Observed``; ``symbl-inbox
status`` is another process, so the daemon also writes the snapshot to ``live.json`` in its
runtime folder.

Why a file and not a question to the daemon's HTTP endpoint: ``status`` must work without an
``http:`` section, and it must show a full state folder, which is exactly when nothing more
can be written there. The runtime folder is systemd's ``RuntimeDirectory=`` (a tmpfs under
``/run``), so the file is still written while ``state_dir`` is full. The file is replaced
atomically (write a temporary name, then rename), so a reader never sees half of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from daemon.files.records import iso
from daemon.logs import get_logger
from daemon.stalls import Stall, StallKind

log = get_logger("symbl_inbox.live")

LIVE_NAME = "live.json"
LIVE_WRITE_SECONDS = 1.0
LIVE_REFRESH_SECONDS = 15.0
RUNTIME_DIRECTORY_ENV = "RUNTIME_DIRECTORY"
# systemd's RuntimeDirectory=symbl-inbox (see systemd/symbl-inbox.service).
DEFAULT_RUNTIME_DIR = Path("/run/symbl-inbox")
# While one of these is in force no file moves forward at all: /healthz answers 503.
STOPS_ALL_WORK = frozenset(
    {StallKind.CREDENTIALS_REFUSED, StallKind.API_UNREACHABLE, StallKind.STATE_FULL}
)


@dataclass(frozen=True)
class UploadProgress:
    """One upload in flight: bytes sent of the file's size."""

    inbox: str
    file: str
    started: float
    sent: int
    total: int

    def as_json(self, now: float) -> dict[str, Any]:
        return {
            "inbox": self.inbox,
            "file": self.file,
            "startedAt": iso(self.started),
            "ageSeconds": round(max(0.0, now - self.started), 1),
            "bytesSent": self.sent,
            "bytesTotal": self.total,
        }


class UploadMeters:
    """The uploads in flight and how far each got; the client reports bytes as it sends them."""

    def __init__(self) -> None:
        self._meters: dict[int, list[Any]] = {}

    def begin(self, key: int, inbox: str, file: str, total: int) -> Callable[[int], None]:
        """Start a meter; returns the progress callback for ``SymblClient.submit_file``."""
        meter: list[Any] = [inbox, file, time.time(), 0, total]
        self._meters[key] = meter

        def progress(sent: int) -> None:
            meter[3] = sent

        return progress

    def end(self, key: int) -> None:
        self._meters.pop(key, None)

    def snapshot(self) -> tuple[UploadProgress, ...]:
        return tuple(
            UploadProgress(inbox, file, started, sent, total)
            for inbox, file, started, sent, total in self._meters.values()
        )


@dataclass(frozen=True)
class LiveState:
    """A snapshot of the running daemon; every field is a plain value."""

    updated: float
    pid: int
    started: bool
    """The startup scan is done."""
    stopping: bool
    stalls: tuple[Stall, ...] = ()
    inboxes: Mapping[str, bool] = field(default_factory=dict)
    """Inbox id -> watched right now."""
    polled: Mapping[str, str] = field(default_factory=dict)
    """Inbox id -> the kernel limit (sysctl) that has it polled instead of watched."""
    uploads: tuple[UploadProgress, ...] = ()
    # For the metrics only (live.json keeps what ``status`` shows).
    uploading: int = 0
    """Uploads running now."""
    jobs: int = 0
    """Submitted jobs being followed until completed or failed."""
    credentials_rejected: bool = False
    pause_seconds: float = 0.0
    """Seconds left of a 429 pause."""

    def stops_all_work(self) -> list[Stall]:
        return [stall for stall in self.stalls if stall.kind in STOPS_ALL_WORK]

    def as_json(self) -> dict[str, Any]:
        return {
            "updated": self.updated,
            "pid": self.pid,
            "started": self.started,
            "stopping": self.stopping,
            "stalls": [stall_json(stall) for stall in self.stalls],
            "inboxes": dict(self.inboxes),
            "polled": dict(self.polled),
            "uploads": [upload.as_json(self.updated) for upload in self.uploads],
        }


def stall_json(stall: Stall) -> dict[str, Any]:
    """The contract shape: ``kind``, ``since`` (ISO 8601, UTC), ``message``; plus ``subject``."""
    found: dict[str, Any] = {
        "kind": stall.kind.value,
        "since": iso(stall.since),
        "message": stall.message,
    }
    if stall.subject is not None:
        found["subject"] = stall.subject
    return found


# ---------------------------------------------------------------- the file


def runtime_dir(state_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where ``live.json`` lives: ``$RUNTIME_DIRECTORY`` (systemd), else ``/run/symbl-inbox``
    when it exists, else ``state_dir`` (a daemon started by hand, outside systemd)."""
    env = os.environ if environ is None else environ
    given = env.get(RUNTIME_DIRECTORY_ENV, "").split(":")[0]
    if given:
        return Path(given)
    if DEFAULT_RUNTIME_DIR.is_dir():
        return DEFAULT_RUNTIME_DIR
    return state_dir


def write_live(folder: Path, state: LiveState) -> OSError | None:
    """Replace ``folder/live.json`` atomically; the error instead of raising it."""
    path = folder / LIVE_NAME
    temporary = folder / f".{LIVE_NAME}.{os.getpid()}"
    try:
        data = json.dumps(state.as_json(), ensure_ascii=False).encode()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        temporary.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return exc
    return None


def read_live(folder: Path) -> dict[str, Any] | None:
    """The last snapshot the daemon wrote, as JSON, or None when there is none (or it is torn)."""
    try:
        data = json.loads((folder / LIVE_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def remove_live(folder: Path) -> None:
    with contextlib.suppress(OSError):
        (folder / LIVE_NAME).unlink()


def age_of(data: Mapping[str, Any], now: float | None = None) -> float:
    updated = data.get("updated")
    if not isinstance(updated, int | float):
        return float("inf")
    return (time.time() if now is None else now) - float(updated)


async def keep_live(folder: Path, snapshot: Callable[[], LiveState], stop: asyncio.Event) -> None:
    """Keep live.json current: when something changed, and every few seconds regardless."""
    last: dict[str, Any] | None = None
    written_at = 0.0
    failing = False
    while not stop.is_set():
        state = snapshot()
        shown = {**state.as_json(), "updated": None}
        for upload in shown["uploads"]:
            upload.pop("ageSeconds", None)
        if shown != last or time.monotonic() - written_at >= LIVE_REFRESH_SECONDS:
            error = write_live(folder, state)
            if error is None:
                last, written_at, failing = shown, time.monotonic(), False
            elif not failing:
                failing = True
                log.warning("live_state_unwritable", folder=str(folder), error=str(error))
        await asyncio.sleep(LIVE_WRITE_SECONDS)
