"""Watching the inboxes: one inotify instance for all, and polling where the kernel says no.

``Watches`` places the watches of every inbox on the shared instance (``daemon.files.watch``).
When the kernel refuses the instance (``fs.inotify.max_user_instances``) or a watch
(``fs.inotify.max_user_watches``), the inbox is polled instead: its watches go back to the
others, one warning names the limit (once per limit, however many inboxes meet it), each inbox
says ``inbox_watching`` with ``mode: poll``, and ``status`` lists it. A polled inbox asks for
its watch again every ``rescan_seconds``. ``InboxRuntime`` is what the daemon keeps per inbox.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from daemon.config.model import Inbox
from daemon.files.intake import InboxFilter, TrackedFile
from daemon.files.watch import Listener, SharedWatcher, WatchLimitReached
from daemon.fsboundary import Folder
from daemon.fsboundary.walk import Entered
from daemon.logs import get_logger

log = get_logger("symbl_inbox.watching")

# What to suggest when a limit is reached: generous, and far below what the kernel allows.
SUGGESTED_LIMITS = {"fs.inotify.max_user_instances": 1024, "fs.inotify.max_user_watches": 524288}

_LOW64 = (1 << 64) - 1


def signature(info: os.stat_result) -> int:
    """A file's size, mtime and inode as one int: exact, and (unlike a tuple) never tracked by
    the garbage collector, which would otherwise walk 100,000 of them after each rescan."""
    return info.st_size << 128 | (info.st_mtime_ns & _LOW64) << 64 | info.st_ino & _LOW64


@dataclass
class InboxRuntime:
    """What the daemon keeps in memory for one inbox."""

    inbox: Inbox
    filter: InboxFilter
    mode: str = "inotify"
    """``inotify`` or ``poll``, as configured (``auto`` resolved from the mount table)."""
    fallback: str | None = None
    """The kernel limit (its sysctl) that has this inbox polled instead of watched, if any."""
    watching: bool = False
    """The inbox's folder is watched by the shared inotify instance."""
    available: bool = False
    tracked: dict[str, TrackedFile] = field(default_factory=dict)
    next_rescan: float = 0.0
    retry_watch_at: float = 0.0
    retrying: bool = False
    """A polled inbox got its watch back; its walk watches the rest before it says so."""
    seen: dict[str, int] = field(default_factory=dict)
    """Journaled files found by the last scan: one unchanged since is passed over."""
    journaled: dict[str, tuple[int, int]] = field(default_factory=dict)
    """(size, mtime_ns) the journal held at start for each file not yet filed: the first scan
    passes over those unchanged without reading their rows (then this is emptied)."""
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    scanned: asyncio.Event = field(default_factory=asyncio.Event)
    """The first scan is done (or the inbox could not be scanned)."""
    scanner: asyncio.Task[None] | None = None

    @property
    def polled(self) -> bool:
        return self.mode == "poll" or self.fallback is not None

    @property
    def scan_every(self) -> float:
        return self.inbox.poll_interval_seconds if self.polled else self.inbox.rescan_seconds


def log_mode(runtime: InboxRuntime) -> None:
    """``inbox_watching``: how the inbox is watched now, and the limit that has it polled."""
    mode = "poll" if runtime.polled else "inotify"
    if runtime.fallback is None:
        log.info("inbox_watching", inbox=runtime.inbox.key, mode=mode)
    else:
        log.info("inbox_watching", inbox=runtime.inbox.key, mode=mode, limit=runtime.fallback)


class Watches:
    """The shared inotify instance (made on first use) and the fallback at its limits."""

    def __init__(self, listener: Listener) -> None:
        self._listener = listener
        self._watcher: SharedWatcher | None = None
        self._warned: set[str] = set()  # the kernel limits already warned about

    def shared(self) -> SharedWatcher:
        if self._watcher is None:
            self._watcher = SharedWatcher(asyncio.get_running_loop(), self._listener)
        return self._watcher

    def forget(self, key: str) -> None:
        """Stop watching inbox ``key`` (removed, or unavailable)."""
        if self._watcher is not None:
            self._watcher.forget(key)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()

    def watch_folder(self, runtime: InboxRuntime, rel: str, fd: int) -> None:
        """Watch a folder of the inbox; at a kernel limit the inbox is polled instead."""
        try:
            self.shared().watch(runtime.inbox.key, rel, fd)
        except WatchLimitReached as limit:
            self.fall_back(runtime, limit)
            return
        runtime.watching = True

    def fall_back(self, runtime: InboxRuntime, limit: WatchLimitReached) -> None:
        """Poll the inbox instead of watching it: warned once per limit, listed by ``status``."""
        inbox = runtime.inbox
        self.shared().forget(inbox.key)  # the watches it had go to other inboxes
        was_watched = runtime.watching
        runtime.watching = False
        runtime.fallback = limit.sysctl
        runtime.retry_watch_at = time.monotonic() + inbox.rescan_seconds
        if limit.sysctl not in self._warned:
            self._warned.add(limit.sysctl)
            suggested = SUGGESTED_LIMITS.get(limit.sysctl, "a higher value")
            log.warning(
                "inotify_limit_reached",
                limit=limit.sysctl,
                value=limit.value,
                inbox=inbox.key,
                message=(
                    f"the kernel's limit {limit.sysctl} ({limit.value}) is reached: this inbox, "
                    "and any other that cannot be watched, is polled every "
                    "poll_interval_seconds instead (symbl-inbox status lists them). Raise the "
                    f"limit (sysctl -w {limit.sysctl}={suggested}, and the same in a file "
                    "under /etc/sysctl.d/); polled inboxes are watched again within "
                    "rescan_seconds"
                ),
            )
        if was_watched and runtime.available and not runtime.retrying:
            log_mode(runtime)
        runtime.retrying = False
        runtime.wake.set()  # its next scan comes after poll_interval_seconds, not rescan_seconds

    def retry(self, runtime: InboxRuntime, folder: Folder) -> None:
        """A polled inbox is watched again once the kernel grants a watch (every rescan_seconds)."""
        now = time.monotonic()
        if runtime.fallback is None or runtime.mode != "inotify" or now < runtime.retry_watch_at:
            return
        runtime.retry_watch_at = now + runtime.inbox.rescan_seconds
        try:
            self.shared().watch(runtime.inbox.key, "", folder.fd)
        except WatchLimitReached:
            return
        except OSError as exc:
            log.debug("inbox_watch_failed", inbox=runtime.inbox.key, error=str(exc))
            return
        # Said once the walk has watched every folder too; a sub-folder refused means polled still.
        runtime.fallback, runtime.watching, runtime.retrying = None, True, True

    def entered(self, runtime: InboxRuntime) -> Entered | None:
        """What a walk of a watched recursive inbox does with each folder it opens: watch it."""
        if not (runtime.inbox.recursive and runtime.watching):
            return None

        def entered(rel: str, fd: int) -> None:
            if rel == "" or not runtime.watching:
                return  # the inbox itself is watched by ``bring_up``
            try:
                self.watch_folder(runtime, rel, fd)
            except OSError as exc:  # gone meanwhile: its parent's events tell
                log.debug(
                    "folder_watch_failed", inbox=runtime.inbox.key, folder=rel, error=str(exc)
                )

        return entered


def make_filter(inbox: Inbox) -> InboxFilter:
    """What of the inbox's folder is its files: not done/ and failed/, nor what it excludes."""
    return InboxFilter(
        root=inbox.path,
        recursive=inbox.recursive,
        skip_dirs=(inbox.done, inbox.failed),
        exclude=inbox.exclude,
    )


def quiet_since(runtime: InboxRuntime, mtime_ns: int) -> bool:
    """A file untouched for longer than the settle window, as a scan finds it, has watched
    that window already: its mtime says nothing changed in it."""
    return time.time() - mtime_ns / 1e9 >= runtime.inbox.settle_seconds


# What becomes of a file once it has settled: handed to admission with its size and mtime.
Settled = Callable[[InboxRuntime, TrackedFile, int, int], None]


def folder_present(runtime: InboxRuntime) -> bool:
    """Whether the inbox's folder is there. For a watched inbox, whether its path exists is
    enough (a quarter of the cost of a stat, for a thousand inboxes): a folder moved away is an
    event, and the maintenance tick looks at what stands in its place."""
    if runtime.watching:
        return os.access(runtime.inbox.path, os.F_OK)
    return runtime.inbox.path.is_dir()
