"""Files opened only as the regular files they are; records written new; entries moved whole."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import stat
from dataclasses import dataclass
from typing import BinaryIO

from daemon.fsboundary.folders import Folder, lexists, rename_noreplace
from daemon.fsboundary.names import (
    COPY_CHUNK,
    FILE_FLAGS,
    NEW_FILE_FLAGS,
    TEMP_PREFIX,
    NotRegularFile,
)

# ==================================================================== files

_PROC_FDS = "/proc/self/fd"


def descriptor_path(fd: int) -> str | None:
    """A path that opens the file behind ``fd`` again: the inode it holds, never a name in a
    folder someone else can change (procfs's link); None where there is no procfs."""
    path = f"{_PROC_FDS}/{fd}"
    return path if os.path.lexists(path) else None


@dataclass
class Checked:
    """A regular file, open; ``info`` is the fstat of this descriptor."""

    fd: int
    info: os.stat_result
    name: str

    def stream(self) -> BinaryIO:
        """A seekable binary file object of its own (a dup), positioned at the start."""
        return os.fdopen(os.dup(self.fd), "rb", closefd=True)

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Checked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_checked(folder_fd: int, name: str) -> Checked:
    """Open a regular file below a folder descriptor, after lstat and before any read."""
    before = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    if not stat.S_ISREG(before.st_mode):
        raise NotRegularFile(name, before.st_mode)
    try:
        fd = os.open(name, FILE_FLAGS, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # swapped for a symlink since the lstat
            raise NotRegularFile(name, stat.S_IFLNK) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotRegularFile(name, info.st_mode)
    except BaseException:
        os.close(fd)
        raise
    return Checked(fd, info, name)


def read_capped(checked: Checked, cap: int) -> bytes:
    """The whole file if it has at most ``cap`` bytes; ValueError (with no content) if not."""
    if checked.info.st_size > cap:
        raise ValueError(f"it has {checked.info.st_size} bytes; at most {cap} are read")
    data = checked.pread(cap + 1, 0)
    if len(data) > cap:
        raise ValueError(f"it has more than {cap} bytes; at most {cap} are read")
    return data


def sha256_of(checked: Checked) -> str:
    """The sha256 of an open file's content, read in chunks by position."""
    digest = hashlib.sha256()
    offset = 0
    while True:
        chunk = checked.pread(COPY_CHUNK, offset)
        if not chunk:
            return digest.hexdigest()
        digest.update(chunk)
        offset += len(chunk)


# ==================================================================== records


def record_mode(source: os.stat_result | None) -> tuple[int, int | None]:
    """(mode, group) for a record or companion of a file: never more readable than the file.

    The owner (the daemon's user) reads and writes it; its group and everyone else may read it
    only where they could read the audio, and the group is the audio's group.
    """
    if source is None or not stat.S_ISREG(source.st_mode):
        return 0o644, None
    mode = 0o600 | (source.st_mode & 0o044)
    return mode, (source.st_gid if mode & 0o040 else None)


def write_new(
    folder_fd: int,
    name: str,
    data: bytes,
    mode: int,
    group: int | None,
    *,
    replace_own: bool,
    sync_folder: bool = True,
) -> None:
    """Write ``name`` in a folder under a fresh temporary name, then rename it into place.

    The temporary name is random and created with ``O_CREAT|O_EXCL|O_NOFOLLOW``: a planted
    file or symlink there is never written through. The rename never replaces an entry, except
    (``replace_own``) a regular file of the daemon's own user: the same record written by an
    earlier, interrupted filing. The file's data is always synced before the rename; the
    folder's entry after it unless ``sync_folder`` is False, for a caller that syncs the
    folder itself once it has put more there.
    """
    temporary = TEMP_PREFIX + secrets.token_hex(8)
    fd = os.open(temporary, NEW_FILE_FLAGS, mode, dir_fd=folder_fd)
    try:
        try:
            os.fchmod(fd, mode)
            if group is not None:
                try:
                    os.fchown(fd, -1, group)
                except PermissionError:  # not a member of that group: keep it to ourselves
                    os.fchmod(fd, mode & ~0o070)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            rename_noreplace(folder_fd, temporary, folder_fd, name)
        except FileExistsError:
            if not (replace_own and _own_regular_file(folder_fd, name)):
                raise
            os.rename(temporary, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=folder_fd)
        raise
    if sync_folder:
        os.fsync(folder_fd)


def _own_regular_file(folder_fd: int, name: str) -> bool:
    try:
        info = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid()


# ==================================================================== moves


def move_entry(src_fd: int, src: str, dst_fd: int, dst: str) -> bool:
    """Move one directory entry (the entry itself: a link moves, not its target), never
    overwriting; False if the source is already gone. Across filesystems, a regular file is
    copied from its checked descriptor, a symlink or FIFO is made anew; then the source goes.

    On return the target folder is synced, also when there was nothing to move: what was put
    there before without a sync of its own (``write_new(sync_folder=False)``) is kept then too.
    """
    try:
        rename_noreplace(src_fd, src, dst_fd, dst)
    except FileNotFoundError:
        if not lexists(src_fd, src):
            os.fsync(dst_fd)
            return False
        raise
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        _copy_entry(src_fd, src, dst_fd, dst)
        os.unlink(src, dir_fd=src_fd)
    os.fsync(dst_fd)
    return True


def _copy_entry(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
    info = os.stat(src, dir_fd=src_fd, follow_symlinks=False)
    temporary = TEMP_PREFIX + secrets.token_hex(8)
    if stat.S_ISLNK(info.st_mode):
        os.symlink(os.readlink(src, dir_fd=src_fd), temporary, dir_fd=dst_fd)
    elif stat.S_ISFIFO(info.st_mode):
        os.mkfifo(temporary, info.st_mode & 0o777, dir_fd=dst_fd)
    else:
        with open_checked(src_fd, src) as checked:
            _copy_descriptor(checked, dst_fd, temporary)
    try:
        try:
            rename_noreplace(dst_fd, temporary, dst_fd, dst)
        except FileExistsError:
            # Our own copy of this very file, left by an interrupted filing, is replaced.
            copied = os.stat(temporary, dir_fd=dst_fd, follow_symlinks=False)
            if not (_own_regular_file(dst_fd, dst) and stat.S_ISREG(copied.st_mode)):
                raise
            earlier = os.stat(dst, dir_fd=dst_fd, follow_symlinks=False)
            if (earlier.st_size, earlier.st_mtime_ns) != (copied.st_size, copied.st_mtime_ns):
                raise
            os.rename(temporary, dst, src_dir_fd=dst_fd, dst_dir_fd=dst_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dst_fd)
        raise


def _copy_descriptor(checked: Checked, dst_fd: int, temporary: str) -> None:
    fd = os.open(temporary, NEW_FILE_FLAGS, 0o600, dir_fd=dst_fd)
    try:
        offset = 0
        while True:
            chunk = checked.pread(COPY_CHUNK, offset)
            if not chunk:
                break
            view = memoryview(chunk)
            while view:
                view = view[os.write(fd, view) :]
            offset += len(chunk)
        os.fchmod(fd, checked.info.st_mode & 0o777)
        os.utime(fd, ns=(checked.info.st_atime_ns, checked.info.st_mtime_ns))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dst_fd)
        raise
    os.close(fd)


def lstat_in(folder: Folder, rel: str) -> os.stat_result:
    """lstat of ``rel`` below ``folder``, following no symlink on the way."""
    with folder.parent_of(rel) as (parent, name):
        return os.stat(name, dir_fd=parent, follow_symlinks=False)


def open_in(folder: Folder, rel: str) -> Checked:
    """``open_checked`` of ``rel`` below ``folder``."""
    with folder.parent_of(rel) as (parent, name):
        return open_checked(parent, name)


def exists_in(folder: Folder, rel: str) -> bool:
    try:
        lstat_in(folder, rel)
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True
