"""Filesystem events, from watchdog threads to the daemon's event loop.

The watchdog threads only hand paths to the loop (``call_soon_threadsafe``); everything else
happens on the loop. Inotify cannot see changes made by other machines on network
filesystems, so ``watch: auto`` polls there, judged from the mount table.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserverVFS

from daemon.config.model import Inbox

# Filesystem types whose changes can come from elsewhere, where inotify stays silent.
_REMOTE_TYPES = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "davfs",
     "ncpfs", "lustre", "gpfs", "beegfs", "vboxsf", "vmhgfs", "virtiofs", "fuse"}
)  # fmt: skip

# Watchdog holds each "moved out" event for 0.5 s to pair it with a "moved in", and queues every
# later event behind it; filing moves files out of the inbox all the time, so new files were seen
# half a second late. Pairing is of no use here: a move is "new file there, old one gone".
try:
    from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
except ImportError:  # older watchdog has no such queue
    pass
else:
    InotifyMoveEventGrouper.delay = 0.0

# (inbox key, absolute path, deleted?) -> None, called on the event loop.
EventSink = Callable[[str, str, bool], None]


def filesystem_type(path: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> str | None:
    """The type of the filesystem ``path`` lives on, from the longest matching mount point."""
    try:
        lines = mountinfo.read_text().splitlines()
    except OSError:
        return None
    target = str(path.resolve())
    best, best_type = "", None
    for line in lines:
        fields = line.split()
        if " - " not in line or len(fields) < 5:
            continue
        mount_point = fields[4].replace("\\040", " ")
        fs_type = line.split(" - ", 1)[1].split()[0]
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fs_type
    return best_type


def needs_polling(fs_type: str | None) -> bool:
    if fs_type is None:
        return False
    return fs_type in _REMOTE_TYPES or fs_type.startswith("fuse.")


def watch_mode(inbox: Inbox) -> str:
    """``inotify`` or ``poll`` for this inbox, resolving ``auto`` from the mount table."""
    if inbox.watch != "auto":
        return inbox.watch
    return "poll" if needs_polling(filesystem_type(inbox.path)) else "inotify"


class _Forwarder(FileSystemEventHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, inbox_key: str, sink: EventSink) -> None:
        self._loop = loop
        self._inbox_key = inbox_key
        self._sink = sink

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type in ("opened", "closed_no_write"):
            return
        deleted = event.event_type == "deleted"
        path = event.dest_path if event.event_type == "moved" else event.src_path
        self._send(os.fsdecode(path), deleted)
        if event.event_type == "moved":
            self._send(os.fsdecode(event.src_path), True)

    def _send(self, path: str, deleted: bool) -> None:
        # The loop may have closed during shutdown; nothing is lost, the next scan catches up.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._sink, self._inbox_key, path, deleted)


class InboxWatcher:
    """One observer thread for one inbox; started and stopped by the daemon."""

    def __init__(self, inbox: Inbox, loop: asyncio.AbstractEventLoop, sink: EventSink) -> None:
        self.inbox = inbox
        self.mode = watch_mode(inbox)
        self._loop = loop
        self._sink = sink
        self._observer: BaseObserver | None = None

    @property
    def running(self) -> bool:
        return self._observer is not None and self._observer.is_alive()

    def start(self) -> None:
        """Begin watching; OSError (inbox missing or unmounted) passes to the caller to retry."""
        observer: BaseObserver = (
            # lstat: the polling snapshot never descends into a dropper's symlink (a link to
            # "/" or two links to "." would have it walk the whole disk, or for ever).
            PollingObserverVFS(
                os.lstat, os.scandir, polling_interval=self.inbox.poll_interval_seconds
            )
            if self.mode == "poll"
            else Observer()
        )
        handler = _Forwarder(self._loop, self.inbox.key, self._sink)
        observer.schedule(handler, str(self.inbox.path), recursive=self.inbox.recursive)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        if self._observer is None:
            return
        self._observer.stop()
        self._observer.join(timeout=5)
        self._observer = None


class OverflowAlarm(logging.Handler):
    """Watchdog reports a kernel event-queue overflow only in its log; turn that into a rescan."""

    _LOGGER = "watchdog.observers.inotify_c"

    def __init__(self, loop: asyncio.AbstractEventLoop, on_overflow: Callable[[], object]) -> None:
        super().__init__(logging.WARNING)
        self._loop = loop
        self._on_overflow = on_overflow

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._on_overflow)

    def install(self) -> None:
        # Watchdog's own log lines would otherwise reach stderr raw; ours say what matters.
        logging.getLogger("watchdog").addHandler(logging.NullHandler())
        logging.getLogger(self._LOGGER).addHandler(self)

    def remove(self) -> None:
        logging.getLogger(self._LOGGER).removeHandler(self)
