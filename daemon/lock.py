"""One daemon per state directory: an exclusive lock that also tells ``status`` who holds it."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "symbl-inbox.lock"


class AlreadyRunning(Exception):
    """Another daemon holds the state directory."""


class StateLock:
    """Held for the daemon's lifetime; the kernel releases it if the process dies."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(fd)
            holder = running_pid(self.path.parent)
            raise AlreadyRunning(
                f"another symbl-inbox (pid {holder}) is running on {self.path.parent}"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def running_pid(state_dir: Path) -> int | None:
    """The pid of the daemon holding ``state_dir``, or None if nobody holds it."""
    path = state_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        text = path.read_text().strip()
        return int(text) if text.isdigit() else -1
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
