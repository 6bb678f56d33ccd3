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

from daemon.fsboundary.files import (
    Checked,
    descriptor_path,
    exists_in,
    lstat_in,
    move_entry,
    open_checked,
    open_in,
    read_capped,
    record_mode,
    sha256_of,
    write_new,
)
from daemon.fsboundary.folders import (
    Folder,
    lexists,
    open_dir_at,
    open_under,
    path_parts,
    rename_noreplace,
)
from daemon.fsboundary.inbox import Boundaries, InboxFiles
from daemon.fsboundary.names import (
    COPY_CHUNK,
    DIR_FLAGS,
    FILE_FLAGS,
    NAME_MAX,
    NEW_FILE_FLAGS,
    RENAME_NOREPLACE,
    SUFFIX_ROOM,
    TEMP_PREFIX,
    FolderSwapped,
    NotRegularFile,
    companion_name,
    display,
    entry_type,
    fit_name,
    is_utf8,
)

__all__ = [
    "COPY_CHUNK",
    "DIR_FLAGS",
    "FILE_FLAGS",
    "NAME_MAX",
    "NEW_FILE_FLAGS",
    "RENAME_NOREPLACE",
    "SUFFIX_ROOM",
    "TEMP_PREFIX",
    "Boundaries",
    "Checked",
    "Folder",
    "FolderSwapped",
    "InboxFiles",
    "NotRegularFile",
    "companion_name",
    "descriptor_path",
    "display",
    "entry_type",
    "exists_in",
    "fit_name",
    "is_utf8",
    "lexists",
    "lstat_in",
    "move_entry",
    "open_checked",
    "open_dir_at",
    "open_in",
    "open_under",
    "path_parts",
    "read_capped",
    "record_mode",
    "rename_noreplace",
    "sha256_of",
    "write_new",
]
