"""Checks on the folders a configuration names: inboxes, their done/ and failed/, the state dir.

``layout_problems`` needs only the paths; the other checks look at (and, when asked, create)
folders on disk. Every check returns problems rather than raising, so they are all told at once.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

from daemon.params import ParamProblem

COPY_COST = (
    "files are copied, fsynced and deleted instead of renamed: slower, "
    "and briefly uses twice the space"
)
FILING_KINDS = ("done", "failed")


@dataclass(frozen=True)
class InboxFolders:
    """One inbox's folders, absolute and resolved, with where they were written."""

    index: int
    path: Path
    done: Path
    failed: Path
    recursive: bool
    exclude: tuple[str, ...]

    def loc(self, key: str) -> tuple[str | int, ...]:
        return ("inboxes", self.index, key)

    @property
    def name(self) -> str:
        return f"inboxes[{self.index}]"

    def filing(self) -> Iterator[tuple[str, Path]]:
        yield "done", self.done
        yield "failed", self.failed

    def watches(self, folder: Path) -> bool:
        """Whether the watcher of this inbox would see files in ``folder``."""
        if folder == self.path:
            return True
        if not (self.recursive and folder.is_relative_to(self.path)):
            return False
        return not _excluded(PurePosixPath(folder.relative_to(self.path).as_posix()), self.exclude)


def _excluded(relative: PurePosixPath, patterns: Sequence[str]) -> bool:
    # A pattern that matches a folder (``archive``, ``archive/``, ``archive/**``) excludes it.
    candidates = [relative, *relative.parents[:-1]]
    texts = [form for path in candidates for form in (path.as_posix(), path.as_posix() + "/")]
    return any(fnmatchcase(text, pattern) for text in texts for pattern in patterns)


def layout_problems(inboxes: Sequence[InboxFolders]) -> list[ParamProblem]:
    """Inboxes that overlap, and done/failed folders that an inbox would pick files up from.

    Folders are looked up by path, and only recursive inboxes are asked whether they would see
    one: a thousand inboxes are checked in milliseconds, not a million comparisons.
    """
    problems: list[ParamProblem] = []
    first_at: dict[Path, InboxFolders] = {}
    for inbox in inboxes:
        first_at.setdefault(inbox.path, inbox)
    recursive = [inbox for inbox in inboxes if inbox.recursive]
    for inbox in inboxes:
        problems.extend(_overlapping_inbox(inbox, first_at, recursive))
        if inbox.done == inbox.failed:
            problems.append(ParamProblem(inbox.loc("failed"), f"same folder as {inbox.name}.done"))
        for kind, folder in inbox.filing():
            problems.extend(_watched_filing(inbox, kind, folder, first_at, recursive))
    return problems


def _overlapping_inbox(
    inbox: InboxFolders, first_at: dict[Path, InboxFolders], recursive: Sequence[InboxFolders]
) -> Iterator[ParamProblem]:
    first = first_at[inbox.path]
    if first is not inbox:
        yield ParamProblem(inbox.loc("path"), f"same folder as {first.name}.path")
        return
    for other in recursive:
        if other.path != inbox.path and other.watches(inbox.path):
            yield ParamProblem(inbox.loc("path"), _inside_message(other))
            return


def _watched_filing(
    inbox: InboxFolders,
    kind: str,
    folder: Path,
    first_at: dict[Path, InboxFolders],
    recursive: Sequence[InboxFolders],
) -> Iterator[ParamProblem]:
    # The first inbox (in configuration order) whose folder this is, or that would see it.
    same = first_at.get(folder)
    # An inbox never picks up from its own done/ and failed/, wherever they are.
    seeing = next((o for o in recursive if o is not inbox and o.watches(folder)), None)
    if same is not None and (seeing is None or same.index <= seeing.index):
        whose = "this inbox's own folder" if same is inbox else f"the folder of {same.name}"
        yield ParamProblem(inbox.loc(kind), f"must not be {whose}")
    elif seeing is not None:
        yield ParamProblem(inbox.loc(kind), _inside_message(seeing))


def _inside_message(other: InboxFolders) -> str:
    return (
        f"lies inside {other.name} ({other.path}), which is recursive; "
        f"move it or add it to {other.name}.exclude"
    )


def inbox_problems(inbox: InboxFolders) -> list[ParamProblem]:
    """The inbox must be a folder this user can list, read and write."""
    problem = _folder_problem(inbox.path, must_exist=True)
    return [ParamProblem(inbox.loc("path"), problem)] if problem else []


def filing_problems(inbox: InboxFolders) -> list[ParamProblem]:
    """done/ and failed/ may be missing (they are created) but not unusable."""
    return symlink_problems(inbox) + [
        ParamProblem(inbox.loc(kind), problem)
        for kind, folder in inbox.filing()
        if (problem := _folder_problem(folder, must_exist=False))
    ]


def state_dir_problems(state_dir: Path) -> list[ParamProblem]:
    problem = _folder_problem(state_dir, must_exist=False)
    return [ParamProblem(("state_dir",), problem)] if problem else []


def _folder_problem(folder: Path, *, must_exist: bool) -> str | None:
    if not folder.exists():
        return f"{folder} does not exist" if must_exist else None
    if not folder.is_dir():
        return f"{folder} is not a folder"
    if not os.access(folder, os.R_OK | os.W_OK | os.X_OK):
        return f"{folder} is not readable and writable by this user (uid {os.getuid()})"
    return None


def create_folder(folder: Path, loc: tuple[str | int, ...]) -> list[ParamProblem]:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return [ParamProblem(loc, f"cannot create {folder}: {exc.strerror or exc}")]
    return []


def create_filing_folders(inbox: InboxFolders) -> list[ParamProblem]:
    return [
        problem
        for kind, folder in inbox.filing()
        for problem in create_folder(folder, inbox.loc(kind))
    ]


def filesystem_warnings(inbox: InboxFolders) -> list[ParamProblem]:
    """done/ or failed/ on another filesystem works, but costs; say what it costs."""
    try:
        inbox_device = inbox.path.stat().st_dev
        devices = [(kind, folder, folder.stat().st_dev) for kind, folder in inbox.filing()]
    except OSError:
        return []
    return [
        ParamProblem(
            inbox.loc(kind), f"{folder} is on another filesystem than {inbox.path}: {COPY_COST}"
        )
        for kind, folder, device in devices
        if device != inbox_device
    ]


def trust_warnings(inbox: InboxFolders) -> list[ParamProblem]:
    """done/ or failed/ inside an inbox that others may write, without the sticky bit.

    There, whoever drops files can also rename, replace or delete done/ and failed/ and what
    was filed in them. The daemon notices a swapped folder and stops filing into it, but the
    safe layout is a sticky inbox (``chmod +t``) or done/ and failed/ outside the inbox.
    """
    foreign = [
        ParamProblem(
            inbox.loc(kind),
            f"{folder} is owned by uid {owner}: the daemon files only into folders of its own "
            f"user (uid {os.geteuid()}) or root, and stops filing there",
        )
        for kind, folder in inbox.filing()
        if (owner := _owner(folder)) is not None and owner not in (os.geteuid(), 0)
    ]
    try:
        mode = inbox.path.stat().st_mode
    except OSError:
        return foreign
    if not mode & (stat.S_IWGRP | stat.S_IWOTH) or mode & stat.S_ISVTX:
        return foreign
    who = "everyone" if mode & stat.S_IWOTH else "its group"
    return foreign + [
        ParamProblem(
            inbox.loc(kind),
            f"{folder} lies inside {inbox.path}, which {who} may write and which has no sticky "
            "bit: droppers can rename or replace it and what is filed there. Make the inbox "
            f"sticky (chmod +t {inbox.path}) or move {kind} outside it",
        )
        for kind, folder in inbox.filing()
        if folder.is_relative_to(inbox.path)
    ]


def resolve_outside(path: Path, inbox: Path) -> Path:
    """``path`` with its symlinks resolved, except those that lie below ``inbox``.

    A folder below an inbox is taken as written: the daemon reaches it from the inbox without
    following symlinks, so one a dropper planted there is never where it files.
    """
    current = Path(path.anchor)
    for part in path.parts[1:]:
        candidate = current / part
        current = candidate if candidate.is_relative_to(inbox) else candidate.resolve()
    return current


def symlink_problems(inbox: InboxFolders) -> list[ParamProblem]:
    """done/ or failed/ below the inbox that is a symlink: the daemon would never file there."""
    return [
        ParamProblem(
            inbox.loc(kind),
            f"{folder} is a symbolic link inside the inbox; the daemon never follows symlinks "
            "there: make it a real folder, or name the folder it points to",
        )
        for kind, folder in inbox.filing()
        if folder.is_relative_to(inbox.path) and folder.is_symlink()
    ]


def _owner(folder: Path) -> int | None:
    try:
        return folder.lstat().st_uid
    except OSError:
        return None
