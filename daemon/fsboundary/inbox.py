"""One inbox's folders (the inbox, its done/ and failed/), opened once, for every inbox."""

from __future__ import annotations

import errno
import os
import threading
from pathlib import Path

from daemon.fsboundary.folders import Folder
from daemon.fsboundary.names import FolderSwapped

# ==================================================================== one inbox's folders


def _foreign_folder(folder: Folder) -> str | None:
    """Why a done/ or failed/ folder may not be filed into: one owned by another user (a
    dropper could have made it) is refused; the daemon's own user or root must own it."""
    owner = os.fstat(folder.fd).st_uid
    if owner in (os.geteuid(), 0):
        return None
    return f"{folder.path} is owned by uid {owner}, not by the daemon's user"


class InboxFiles:
    """An inbox, its done/ and its failed/, opened once; the daemon's only way to them."""

    def __init__(self, path: Path, done: Path, failed: Path) -> None:
        self.path, self.done_path, self.failed_path = path, done, failed
        self._inbox: Folder | None = None
        self._targets: dict[str, Folder] = {}
        # Replaced folders stay open until ``close``: a worker thread may be using one, and a
        # closed descriptor's number could name another folder by then.
        self._retired: list[Folder] = []
        self._lock = threading.Lock()

    @property
    def inbox(self) -> Folder:
        """The inbox folder; re-opened if the configured folder was removed and made again."""
        with self._lock:
            folder = self._inbox
            if folder is not None:
                try:
                    folder.verify()
                except FolderSwapped:
                    self._retired += [folder, *self._targets.values()]
                    self._targets.clear()
                    folder = self._inbox = None
            if folder is None:
                folder = self._inbox = Folder.open(self.path)
            return folder

    def target(self, outcome: str) -> Folder:
        """done/ or failed/, checked to be the folder that was opened.

        Raises ``FolderSwapped`` while the configured path is something else; a replacement
        made by the daemon's user (or root) is adopted.
        """
        inbox = self.inbox
        path = self.done_path if outcome == "done" else self.failed_path
        with self._lock:
            folder = self._targets.get(outcome)
            if folder is not None:
                try:
                    folder.verify()
                except FolderSwapped as swapped:
                    # Put back, or made anew: only a real folder of our own user is adopted.
                    try:
                        fresh = self._open_target(path, inbox)
                    except FolderSwapped as refused:
                        message = f"{swapped.strerror}; {refused.strerror}"
                        raise FolderSwapped(refused.errno, message, str(path)) from None
                    self._retired.append(folder)
                    folder = self._targets[outcome] = fresh
                return folder
            folder = self._targets[outcome] = self._open_target(path, inbox, create=True)
            return folder

    @staticmethod
    def _open_target(path: Path, inbox: Folder, *, create: bool = False) -> Folder:
        anchor = inbox if path.is_relative_to(inbox.path) else None
        try:
            folder = Folder.open(path, anchor=anchor, create=create)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise FolderSwapped(
                    exc.errno, f"{path} is not a folder (a symlink or a file)", str(path)
                ) from None
            if exc.errno == errno.ENOENT:
                raise FolderSwapped(exc.errno, f"{path} is missing", str(path)) from None
            raise
        why = _foreign_folder(folder)
        if why is not None:
            folder.close()
            raise FolderSwapped(errno.EPERM, why, str(path))
        return folder

    def close(self) -> None:
        with self._lock:
            for folder in (self._inbox, *self._targets.values(), *self._retired):
                if folder is not None:
                    folder.close()
            self._inbox = None
            self._targets.clear()
            self._retired.clear()


class Boundaries:
    """The open folders of every inbox the daemon files for, by inbox key.

    An inbox whose folders change in the configuration gets new descriptors; one removed by a
    reload keeps its own while its files in flight are filed.
    """

    def __init__(self) -> None:
        self._open: dict[str, tuple[tuple[Path, Path, Path], InboxFiles]] = {}
        self._retired: list[InboxFiles] = []  # closed at the end, like retired folders
        self._lock = threading.Lock()  # the loop and worker threads both ask

    def of(self, key: str, path: Path, done: Path, failed: Path) -> InboxFiles:
        wanted = (path, done, failed)
        with self._lock:
            current = self._open.get(key)
            if current is not None and current[0] == wanted:
                return current[1]
            files = InboxFiles(path, done, failed)
            self._open[key] = (wanted, files)
            if current is not None:
                self._retired.append(current[1])
        return files

    def close(self) -> None:
        with self._lock:
            opened = [files for _, files in self._open.values()] + self._retired
            self._open, self._retired = {}, []
        for files in opened:
            files.close()
