"""Walking an inbox one entry at a time, so that a rescan of 100,000 files can pause anywhere.

A rescan must hand back to the event loop every few milliseconds, so ``walk`` is a generator
that lists as it goes, under the trust boundary's rules: folders are reached from the inbox's
descriptor through ``openat`` with ``O_NOFOLLOW`` only (a symlink to a folder is an entry like
any other, never a way in), and each entry's ``lstat`` is taken relative to its folder's
descriptor. It holds two descriptors per level of depth while it runs and closes them all when
it ends or is closed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Generator

from daemon.fsboundary.folders import Folder
from daemon.fsboundary.names import DIR_FLAGS

# (relative path of a folder, "" for the top, its open descriptor) -> None; called once a folder
# is open and before its entries are listed, so that a watch placed then misses nothing.
Entered = Callable[[str, int], None]


def walk(
    folder: Folder,
    recursive: bool,
    descend: Callable[[str, str], bool],
    keep: Callable[[str, str], bool],
    entered: Entered | None = None,
) -> Generator[tuple[str, os.stat_result], None, None]:
    """Every entry below ``folder`` that ``keep(rel, name)`` wants, with its lstat, as found.

    Sub-folders are entered when ``recursive`` and ``descend(rel, name)``. An entry that vanishes
    or a folder that cannot be opened is passed over; the next walk sees what is there then.
    """
    yield from _walk(os.dup(folder.fd), "", recursive, descend, keep, entered)


def _walk(
    fd: int,
    prefix: str,
    recursive: bool,
    descend: Callable[[str, str], bool],
    keep: Callable[[str, str], bool],
    entered: Entered | None,
) -> Generator[tuple[str, os.stat_result], None, None]:
    try:
        if entered is not None:
            entered(prefix.rstrip("/"), fd)
        try:
            iterator = os.scandir(fd)
        except OSError:
            return
        with iterator:
            for entry in iterator:
                rel = prefix + entry.name
                try:  # the entry's type from the listing: no system call where the kernel says
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    continue
                if is_dir:
                    if recursive and descend(rel, entry.name):
                        try:
                            child = os.open(entry.name, DIR_FLAGS, dir_fd=fd)
                        except OSError:
                            continue
                        yield from _walk(child, rel + "/", recursive, descend, keep, entered)
                    continue
                if not keep(rel, entry.name):
                    continue  # not a name the daemon takes: not even looked at
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISDIR(info.st_mode):  # else replaced by a folder since listed
                    yield rel, info
    finally:
        os.close(fd)
