"""The trust boundary: every file-system operation of the daemon on an inbox, done/ and failed/.

People who drop files are not trusted with the daemon's rights. They may replace any entry of a
folder they can write with a symlink, a FIFO, a socket, a device node or another folder, at any
moment, including between two system calls of the daemon. So:

- Folders are opened once as directory descriptors (``O_DIRECTORY|O_NOFOLLOW``); a folder inside
  an inbox is reached component by component from the inbox's descriptor, never through a
  symlink. Every stat, open, rename, link and unlink is relative to a descriptor.
- A file is trusted only after ``fstat`` on its open descriptor says it is a regular file;
  what is read, hashed and uploaded is that descriptor, never the path again. Files are opened
  with ``O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC|O_NOCTTY``, after an ``lstat``, so a FIFO never blocks.
- Symlinks and special files are never opened or followed: their directory entry is what moves.
- Moves never overwrite (``renameat2(RENAME_NOREPLACE)``); records are written under a random
  temporary name created with ``O_CREAT|O_EXCL|O_NOFOLLOW`` and renamed into place.
- done/ and failed/ are checked (device and inode) before each filing: a folder swapped since
  it was opened raises ``FolderSwapped``, and filing waits until the configured path is a real
  folder of the daemon's own user (or root) again.

Names are ``str`` decoded with ``os.fsdecode`` (surrogateescape), which round-trips any bytes
the kernel allows; ``display`` renders one for people.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import os
import secrets
import stat
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

NAME_MAX = 255
TEMP_PREFIX = ".symbl-inbox-tmp-"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_RENAME_NOREPLACE = 1
_COPY_CHUNK = 1024 * 1024
_SUFFIX_ROOM = 24  # bytes kept free for a record's or companion's suffix in shortened names


# ==================================================================== names


def display(name: str) -> str:
    """A name as people may safely see it: bytes that are not UTF-8 as ``\\xNN``, control
    characters (newlines, escape sequences) as Python escapes. Lossy; for logs and tables."""
    raw = os.fsencode(name) if isinstance(name, str) else name
    text = raw.decode("utf-8", "backslashreplace")
    out: list[str] = []
    for char in text:
        code = ord(char)
        if code < 0x20 or code == 0x7F or 0x80 <= code < 0xA0:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(char, f"\\x{code:02x}"))
        elif char in "\u2028\u2029":  # line separators to some terminals and browsers
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def is_utf8(name: str) -> bool:
    """Whether a (surrogateescape-decoded) name is valid UTF-8 as it stands."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def companion_name(name: str, suffix: str) -> tuple[str, bool]:
    """``name + suffix``, or, past NAME_MAX bytes, a shortened name that still identifies it.

    The shortened form keeps the start of the name and adds ``~`` and 12 hex digits of the
    sha256 of the whole name; the second value says whether it was shortened.
    """
    full = name + suffix
    if len(os.fsencode(full)) <= NAME_MAX:
        return full, False
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    # The same room whatever the suffix, so a file's record and transcript share one stem.
    room = NAME_MAX - max(len(os.fsencode(suffix)), _SUFFIX_ROOM) - len(digest) - 1
    head = os.fsencode(name)[:room]
    # Cut on a character boundary where the name is UTF-8, so the result reads well.
    while head and is_utf8(name) and not is_utf8(os.fsdecode(head)):
        head = head[:-1]
    return f"{os.fsdecode(head)}~{digest}{suffix}", True


def fit_name(name: str, numbered: Callable[[str], str]) -> str:
    """``numbered(name)``, with the name's stem cut first where the result would pass
    NAME_MAX bytes (its extension and the number are kept)."""
    result = numbered(name)
    over = len(os.fsencode(result)) - NAME_MAX
    if over <= 0:
        return result
    raw = os.fsencode(name)
    stem, dot, extension = raw.rpartition(b".")
    if not dot or not stem:
        stem, extension = raw, b""
    cut = stem[: max(1, len(stem) - over)]
    return numbered(os.fsdecode(cut + (b"." + extension if dot else b"")))


# ==================================================================== kinds of entries


_KINDS = (
    (stat.S_ISLNK, "symlink", "a symbolic link"),
    (stat.S_ISFIFO, "fifo", "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket", "a socket"),
    (stat.S_ISCHR, "character_device", "a character device node"),
    (stat.S_ISBLK, "block_device", "a block device node"),
    (stat.S_ISDIR, "directory", "a folder"),
)


def entry_type(mode: int) -> tuple[str, str]:
    """(machine name, words) for what a directory entry is."""
    if stat.S_ISREG(mode):
        return "regular_file", "a regular file"
    for test, name, words in _KINDS:
        if test(mode):
            return name, words
    return "unknown", "an entry of an unknown kind"


class NotRegularFile(OSError):
    """The entry is a symlink, FIFO, socket, device node or folder: never opened, never read."""

    def __init__(self, name: str, mode: int) -> None:
        self.entry_type, self.words = entry_type(mode)
        super().__init__(errno.EINVAL, f"{display(name)} is {self.words}, not a regular file")


class FolderSwapped(OSError):
    """done/ or failed/ is no longer the folder that was opened (or not a folder at all)."""


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
        result = function(src_fd, os.fsencode(src), dst_fd, os.fsencode(dst), _RENAME_NOREPLACE)
        if result == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS):
            raise OSError(code, os.strerror(code), display(src))
    if _lexists(dst_fd, dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), display(dst))
    os.rename(src, dst, src_dir_fd=src_fd, dst_dir_fd=dst_fd)


def _lexists(folder_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


# ==================================================================== folders


def _parts(rel: str) -> list[str]:
    parts = [part for part in rel.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise PermissionError(errno.EACCES, "a path leaving its folder", display(rel))
    return parts


def _open_under(root_fd: int, parts: list[str], *, create: bool = False) -> int:
    """A new descriptor of the folder ``parts`` below ``root_fd``, following no symlink."""
    current = os.dup(root_fd)
    try:
        for part in parts:
            try:
                child = _open_dir_at(current, part)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=current)
                child = _open_dir_at(current, part)
            os.close(current)
            current = child
    except BaseException:
        os.close(current)
        raise
    return current


def _open_dir_at(folder_fd: int, name: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=folder_fd)
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
            return cls(path, _open_under(anchor.fd, _parts(rel), create=create), anchor=anchor)
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):
                path.mkdir(0o755)
        return cls(path, os.open(path, _DIR_FLAGS))

    def close(self) -> None:
        with self._lock:
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1

    def current(self) -> os.stat_result:
        """What the configured path is now, reached the way ``open`` reaches it."""
        if self.anchor is not None:
            rel = self.path.relative_to(self.anchor.path).as_posix()
            parts = _parts(rel)
            parent = _open_under(self.anchor.fd, parts[:-1])
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
        parts = _parts(rel)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "no file name", display(rel))
        parent = _open_under(self.fd, parts[:-1], create=create)
        try:
            yield parent, parts[-1]
        finally:
            os.close(parent)


# ==================================================================== files


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
        fd = os.open(name, _FILE_FLAGS, dir_fd=folder_fd)
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
        chunk = checked.pread(_COPY_CHUNK, offset)
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
    folder_fd: int, name: str, data: bytes, mode: int, group: int | None, *, replace_own: bool
) -> None:
    """Write ``name`` in a folder under a fresh temporary name, then rename it into place.

    The temporary name is random and created with ``O_CREAT|O_EXCL|O_NOFOLLOW``: a planted
    file or symlink there is never written through. The rename never replaces an entry, except
    (``replace_own``) a regular file of the daemon's own user: the same record written by an
    earlier, interrupted filing.
    """
    temporary = TEMP_PREFIX + secrets.token_hex(8)
    fd = os.open(temporary, _NEW_FILE_FLAGS, mode, dir_fd=folder_fd)
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
    copied from its checked descriptor, a symlink or FIFO is made anew; then the source goes."""
    try:
        rename_noreplace(src_fd, src, dst_fd, dst)
    except FileNotFoundError:
        if not _lexists(src_fd, src):
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
    fd = os.open(temporary, _NEW_FILE_FLAGS, 0o600, dir_fd=dst_fd)
    try:
        offset = 0
        while True:
            chunk = checked.pread(_COPY_CHUNK, offset)
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


def scan_folder(
    folder: Folder,
    recursive: bool,
    descend: Callable[[str, str], bool],
    keep: Callable[[str, str], bool],
) -> list[tuple[str, os.stat_result]]:
    """Every entry below ``folder`` that ``keep(rel, name)`` wants, with its lstat.

    Sub-folders are entered (when ``recursive`` and ``descend(rel, name)``) through ``openat``
    with ``O_NOFOLLOW`` only: a symlink to a folder is an entry like any other, never a way in.
    """
    found: list[tuple[str, os.stat_result]] = []
    _scan(os.dup(folder.fd), "", recursive, descend, keep, found)
    return found


def _scan(
    fd: int,
    prefix: str,
    recursive: bool,
    descend: Callable[[str, str], bool],
    keep: Callable[[str, str], bool],
    found: list[tuple[str, os.stat_result]],
) -> None:
    try:
        with os.scandir(fd) as iterator:
            entries = list(iterator)
        for entry in entries:
            rel = prefix + entry.name
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(info.st_mode):
                if recursive and descend(rel, entry.name):
                    try:
                        child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                    except OSError:
                        continue
                    _scan(child, rel + "/", recursive, descend, keep, found)
                continue
            if keep(rel, entry.name):
                found.append((rel, info))
    except OSError:
        return
    finally:
        os.close(fd)


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
