"""Names as the kernel gives them, shown safely; the kinds of directory entries; the flags."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Callable

NAME_MAX = 255
TEMP_PREFIX = ".symbl-inbox-tmp-"
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
RENAME_NOREPLACE = 1
COPY_CHUNK = 1024 * 1024
SUFFIX_ROOM = 24  # bytes kept free for a record's or companion's suffix in shortened names


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
    room = NAME_MAX - max(len(os.fsencode(suffix)), SUFFIX_ROOM) - len(digest) - 1
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
