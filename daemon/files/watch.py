"""Filesystem events for every inbox from one inotify instance, read on the event loop.

One instance serves all inboxes (a watch per folder), read with ``add_reader``: no thread and
no instance per inbox, so a thousand inboxes cost a thousand watches, not a thousand of the
kernel's instances (128 per user by default). Each watch is placed on a folder the daemon
opened itself (``O_DIRECTORY|O_NOFOLLOW``, sub-folders component by component) through its
``/proc/self/fd`` entry: the watch is on exactly that folder, never on whatever a path names by
then. When the kernel refuses an instance (``fs.inotify.max_user_instances``) or a watch
(``fs.inotify.max_user_watches``), ``WatchLimitReached`` says which limit, and the inbox is
polled instead (``daemon.pipeline.inboxes``). Inotify cannot see changes made by other
machines on network filesystems, so ``watch: auto`` polls there, judged from the mount table.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from daemon.config.model import Inbox
from daemon.files import inotify_events

# Filesystem types whose changes can come from elsewhere, where inotify stays silent.
_REMOTE_TYPES = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "afs", "ceph", "glusterfs", "davfs",
     "ncpfs", "lustre", "gpfs", "beegfs", "vboxsf", "vmhgfs", "virtiofs", "fuse"}
)  # fmt: skip


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


# ==================================================================== the limits


INSTANCES_SYSCTL = "fs.inotify.max_user_instances"
WATCHES_SYSCTL = "fs.inotify.max_user_watches"


# The same limits as this process's user namespace has them: a container's may be lower.
_NAMESPACE_LIMITS = {
    INSTANCES_SYSCTL: "user.max_inotify_instances",
    WATCHES_SYSCTL: "user.max_inotify_watches",
}


def sysctl_value(name: str, proc: Path = Path("/proc/sys")) -> int | None:
    """The kernel setting ``name`` (dotted, as ``sysctl`` spells it), or None if unreadable."""
    try:
        return int((proc / name.replace(".", "/")).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def limit_value(sysctl: str, proc: Path = Path("/proc/sys")) -> int | None:
    """The limit in force: the system's ``sysctl``, or the user namespace's if lower."""
    found = [sysctl_value(name, proc) for name in (sysctl, _NAMESPACE_LIMITS.get(sysctl))
             if name is not None]  # fmt: skip
    values = [value for value in found if value is not None]
    return min(values) if values else None


class WatchLimitReached(Exception):
    """The kernel refused an inotify instance or watch: ``sysctl`` names the limit."""

    def __init__(self, sysctl: str) -> None:
        self.sysctl = sysctl
        self.value = limit_value(sysctl)
        super().__init__(f"the kernel's limit {sysctl} ({self.value}) is reached")


# ==================================================================== the shared watcher


class Listener(Protocol):
    """What the watcher tells the inboxes, on the event loop."""

    def changed(self, owner: str, rel: str, gone: bool, is_dir: bool) -> None:
        """An entry ``rel`` of inbox ``owner`` was created, written, moved in or (``gone``) out."""

    def lost(self, owner: str) -> None:
        """The folder of inbox ``owner`` itself was moved away, unmounted or removed (the kernel
        tells of a removal once the last descriptor of the folder is closed: the daemon looks
        for a missing folder itself too)."""

    def overflowed(self) -> None:
        """The kernel's event queue overflowed: events were lost, every inbox must be rescanned."""


@dataclass
class _Watch:
    """One kernel watch: the inboxes it serves and where the folder lies in each."""

    where: dict[str, str]  # inbox key -> folder relative to that inbox ("" is the inbox itself)


class SharedWatcher:
    """One inotify instance for every inbox, read on the loop; watches added per folder."""

    def __init__(self, loop: asyncio.AbstractEventLoop, listener: Listener) -> None:
        self._loop = loop
        self._listener = listener
        self._instance: inotify_events.Instance | None = None
        self._watches: dict[int, _Watch] = {}
        self._by_owner: dict[str, dict[str, int]] = {}  # inbox key -> folder rel -> wd

    @property
    def is_open(self) -> bool:
        return self._instance is not None

    def open(self) -> None:
        """Create the instance, if not yet: ``WatchLimitReached`` at the instance limit."""
        if self._instance is not None:
            return
        try:
            instance = inotify_events.Instance()
        except OSError as exc:
            if exc.errno == errno.EMFILE:  # the per-user instance limit (ENFILE is system-wide)
                raise WatchLimitReached(INSTANCES_SYSCTL) from None
            raise
        self._instance = instance
        self._loop.add_reader(instance.fileno(), self._readable)

    def watch(self, owner: str, rel: str, folder_fd: int) -> None:
        """Watch the open folder ``folder_fd``, which is ``rel`` below inbox ``owner``.

        ``WatchLimitReached`` at the limit of watches (or of instances, opening the first).
        """
        self.open()
        assert self._instance is not None
        try:
            wd = self._instance.add_watch(folder_fd)
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise WatchLimitReached(WATCHES_SYSCTL) from None
            raise
        watch = self._watches.setdefault(wd, _Watch({}))
        stale = watch.where.get(owner)
        if stale is not None and stale != rel:  # the same folder, moved: known by its new place
            self._by_owner.get(owner, {}).pop(stale, None)
        watch.where[owner] = rel
        self._by_owner.setdefault(owner, {})[rel] = wd

    def watches(self, owner: str) -> int:
        return len(self._by_owner.get(owner, {}))

    def forget(self, owner: str, below: str | None = None) -> None:
        """Stop watching for inbox ``owner``: every folder, or ``below`` and what lies in it."""
        folders = self._by_owner.get(owner, {})
        for rel in [r for r in folders if below is None or r == below or r.startswith(below + "/")]:
            self._release(owner, folders.pop(rel))
        if not folders:
            self._by_owner.pop(owner, None)

    def _release(self, owner: str, wd: int) -> None:
        watch = self._watches.get(wd)
        if watch is None:
            return
        watch.where.pop(owner, None)
        if watch.where:
            return
        del self._watches[wd]
        if self._instance is not None:
            with contextlib.suppress(OSError):  # already gone with its folder
                self._instance.rm_watch(wd)

    def close(self) -> None:
        if self._instance is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop may be closed already
            self._loop.remove_reader(self._instance.fileno())
        self._instance.close()
        self._instance = None
        self._watches.clear()
        self._by_owner.clear()

    # ------------------------------------------------------------ events

    def _readable(self) -> None:
        assert self._instance is not None
        try:
            events = self._instance.read()
        except BlockingIOError:
            return
        changes: dict[tuple[str, str, bool, bool], None] = {}  # in order, each once per read
        for event in events:
            if event.mask & inotify_events.Q_OVERFLOW:
                self._listener.overflowed()
                continue
            watch = self._watches.get(event.wd)
            if watch is None:
                continue  # a watch removed while its events were queued
            if event.mask & inotify_events.SELF_GONE:
                self._folder_gone(event.wd, watch, event.mask)
                continue
            is_dir = bool(event.mask & inotify_events.ISDIR)
            gone = bool(event.mask & inotify_events.ENTRY_GONE)
            for owner, folder in list(watch.where.items()):
                rel = f"{folder}/{event.name}" if folder else event.name
                if is_dir and gone:
                    self.forget(owner, rel)  # its watches would name it by its old place
                changes[(owner, rel, gone, is_dir)] = None
        for owner, rel, gone, is_dir in changes:
            self._listener.changed(owner, rel, gone, is_dir)

    def _folder_gone(self, wd: int, watch: _Watch, mask: int) -> None:
        """A watched folder was deleted, moved or unmounted: an inbox's own folder is lost."""
        for owner, rel in list(watch.where.items()):
            if rel == "":
                self.forget(owner)
                self._listener.lost(owner)
            elif mask & inotify_events.IGNORED or mask & inotify_events.MOVE_SELF:
                self.forget(owner, rel)
        if mask & inotify_events.IGNORED:
            self._watches.pop(wd, None)
