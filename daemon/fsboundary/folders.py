"""Folders opened once as descriptors and reached component by component; renames that never
replace."""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from daemon.fsboundary.names import DIR_FLAGS, RENAME_NOREPLACE, FolderSwapped, display, entry_type

# ==================================================================== renameat2


_libc_lock = threading.Lock()
_renameat2: Callable[..., int] | None = None
_renameat2_probed = False


def _renameat2_function() -> Callable[..., int] | None:
    global _renameat2, _renameat2_probed
    with _libc_lock:
        if not _renameat2_probed:
            _renameat2_probed = True
            with contextlib.suppress(OSError, AttributeError):
                libc = ctypes.CDLL(None, use_errno=True)
                function = libc.renameat2
                function.argtypes = (
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_int,
                    ctypes.c_char_p,
                    ctypes.c_uint,
                )
                function.restype = ctypes.c_int
                _renameat2 = function
        return _renameat2


def rename_noreplace(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    """Rename an entry between two folders, never replacing one: FileExistsError instead.

    Where the filesystem cannot do that atomically (EINVAL: some network filesystems), the
    target is checked just before a plain rename: a window of microseconds, in folders that
    only the daemon should write.
    """
    function = _renameat2_function()
    if function is not None:
        result = function(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), RENAME_NOREPLACE)
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(code, os.strerror(code), display(src))
    if lexists(dst_fd, dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), display(dst))
    os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)


def lexists(folder_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


# ==================================================================== folders


def path_parts(rel: str) -> list[str]:
    parts = [part for part in rel.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise PermissionError(errno.EACCES, "a path leaving its folder", display(rel))
    return parts


def open_under(root_fd: int, parts: list[str], *, create: bool = False) -> int:
    """A new descriptor of the folder ``parts`` below ``root_fd``, following no symlink."""
    current = os.dup(root_fd)
    try:
        for part in parts:
            try:
                child = open_dir_at(current, part)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=current)
                child = open_dir_at(current, part)
            os.close(current)
            current = child
    except BaseException:
        os.close(current)
        raise
    return current


def open_dir_at(folder_fd: int, name: str) -> int:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink where a folder should be: not a way in
            raise NotADirectoryError(
                errno.ENOTDIR, "a symlink, not a folder", display(name)
            ) from None
        raise


class Folder:
    """A folder opened once; ``path`` is for messages and for checking it is still the same."""

    def __init__(self, path: Path, fd: int, *, anchor: Folder | None = None) -> None:
        self.path = path
        self.fd = fd
        self.anchor = anchor
        info = os.fstat(fd)
        self.identity = (info.st_dev, info.st_ino)
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: Path, *, anchor: Folder | None = None, create: bool = False) -> Folder:
        """Open ``path``: below ``anchor`` component by component, else as configured (the
        operator's own path may pass through symlinks; its last component may not)."""
        if anchor is not None and path.is_relative_to(anchor.path) and path != anchor.path:
            rel = path.relative_to(anchor.path).as_posix()
            return cls(path, open_under(anchor.fd, path_parts(rel), create=create), anchor=anchor)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                path.mkdir(0o755)
        return cls(path, os.open(path, DIR_FLAGS))

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1

    def current(self) -> os.stat_result:
        """What the configured path is now, reached the way ``open`` reaches it."""
        if self.anchor is not None:
            rel = self.path.relative_to(self.anchor.path).as_posix()
            parts = path_parts(rel)
            parent = open_under(self.anchor.fd, parts[:-1])
            try:
                return os.stat(parts[-1], dir_fd=parent, follow_symlinks=False)
            finally:
                os.close(parent)
        return self.path.lstat()

    def verify(self) -> None:
        """Raise ``FolderSwapped`` unless the configured path is still this very folder."""
        try:
            now = self.current()
        except OSError as exc:
            raise FolderSwapped(
                errno.ENOENT, f"{self.path} is gone ({exc.strerror})", str(self.path)
            ) from None
        if not stat.S_ISDIR(now.st_mode) or (now.st_dev, now.st_ino) != self.identity:
            words = entry_type(now.st_mode)[1]
            raise FolderSwapped(
                errno.ESTALE,
                f"{self.path} is no longer the folder the daemon opened (it is now {words})",
                str(self.path),
            )

    @contextlib.contextmanager
    def parent_of(self, rel: str, *, create: bool = False) -> Iterator[tuple[int, str]]:
        """(descriptor of the folder holding ``rel``, the entry's own name)."""
        parts = path_parts(rel)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "no file name", display(rel))
        parent = open_under(self.fd, parts[:-1], create=create)
        try:
            yield parent, parts[-1]
        finally:
            os.close(parent)
