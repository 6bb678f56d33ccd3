"""The kernel's inotify, through ``inotify_simple`` (a literal ctypes wrapper), typed.

Watches are placed on folders the daemon holds open, through ``/proc/self/fd/N``: the kernel
resolves that link to the very folder the descriptor was opened on (``O_NOFOLLOW``), so no
path is looked up again and no symlink a dropper planted since can redirect the watch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import inotify_simple

_flags = inotify_simple.flags

# What an inbox folder is watched for. Not OPEN, ACCESS or CLOSE_NOWRITE: the daemon's own reads
# of the files it uploads would wake it. EXCL_UNLINK: nothing about files already unlinked.
MASK = (
    _flags.CREATE | _flags.MODIFY | _flags.ATTRIB | _flags.CLOSE_WRITE | _flags.MOVED_FROM
    | _flags.MOVED_TO | _flags.DELETE | _flags.DELETE_SELF | _flags.MOVE_SELF | _flags.ONLYDIR
    | _flags.EXCL_UNLINK
)  # fmt: skip
Q_OVERFLOW = int(_flags.Q_OVERFLOW)
ISDIR = int(_flags.ISDIR)
IGNORED = int(_flags.IGNORED)
MOVE_SELF = int(_flags.MOVE_SELF)
# The watched folder itself went away (the watch ends or names a folder elsewhere now).
SELF_GONE = int(_flags.DELETE_SELF | _flags.MOVE_SELF | _flags.UNMOUNT | _flags.IGNORED)
# An entry left the folder.
ENTRY_GONE = int(_flags.DELETE | _flags.MOVED_FROM)
# One read takes up to this much of the queue; the loop calls again while more is waiting.
READ_BYTES = 256 * 1024


@dataclass(frozen=True)
class Event:
    wd: int
    mask: int
    name: str
    """The entry's name (``os.fsdecode``: any bytes round-trip); "" for the folder itself."""


class Instance:
    """One inotify instance, non-blocking, closed on exec."""

    def __init__(self) -> None:
        self._inotify = inotify_simple.INotify(nonblocking=True)

    def fileno(self) -> int:
        return int(self._inotify.fileno())

    def add_watch(self, folder_fd: int) -> int:
        """Watch the open folder ``folder_fd``; the watch descriptor (the same for a folder
        already watched by this instance)."""
        return int(self._inotify.add_watch(f"/proc/self/fd/{folder_fd}", MASK))

    def rm_watch(self, wd: int) -> None:
        self._inotify.rm_watch(wd)

    def read(self) -> list[Event]:
        """The events queued now (``BlockingIOError`` if none)."""
        data = os.read(self.fileno(), READ_BYTES)
        return [
            Event(int(event.wd), int(event.mask), str(event.name))
            for event in inotify_simple.parse_events(data)
        ]

    def close(self) -> None:
        self._inotify.close()
