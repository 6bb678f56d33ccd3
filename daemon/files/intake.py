"""What the daemon picks up, when a file counts as written, and what its sidecar says.

Names are judged first (``classify``): audio, a sidecar, a URL drop, or something to leave alone.
Content is judged once the file is stable (``TrackedFile``), before anything is uploaded.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from daemon.fsboundary import Folder
from daemon.fsboundary.walk import Entered, walk
from daemon.params import ParamProblem, dotted, merge_params, unknown_key_message, validate_params

SIDECAR_SUFFIXES = (".yaml", ".yml")
URL_DROP_SUFFIXES = (".url.yaml", ".url.yml")
AUDIO_SUFFIXES = (".wav", ".mp3")
# Audio and video containers the API does not take: filed as ``unsupported_format``, or
# converted when the profile says ``convert: true`` (see ``daemon.files.recordings``).
OTHER_AUDIO_SUFFIXES = (
    ".m4a", ".aac", ".flac", ".ogg", ".oga", ".opus", ".wma", ".amr", ".aif", ".aiff", ".aifc",
    ".caf", ".webm", ".weba", ".mp4", ".m4b", ".mov", ".3gp", ".3g2", ".mka", ".mkv", ".wv",
    ".ape", ".ac3", ".mp2", ".au", ".snd", ".w64", ".gsm", ".spx", ".dss", ".voc",
)  # fmt: skip
# Names that writers, editors and desktops leave behind while they work, or beside everything.
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})
_IGNORED_SUFFIXES = (".part", ".tmp", "~", ".swp", ".crdownload", ".partial")
SIDECAR_KEYS = ("conversation", "part", "conversationId", "params")
URL_DROP_KEYS = ("url", *SIDECAR_KEYS)
# Parameters the daemon sets itself: a sidecar or URL drop may not set them.
DAEMON_OWNED_PARAMS = ("webhookUrl",)
# What Symbl issues as a conversationId: digits.
_CONVERSATION_ID = re.compile(r"[0-9]{1,40}")


_ANY_AUDIO = AUDIO_SUFFIXES + OTHER_AUDIO_SUFFIXES


class Candidate(StrEnum):
    AUDIO = "audio"
    SIDECAR = "sidecar"
    URL_DROP = "url_drop"


def classify(name: str) -> Candidate | None:
    """What a file name is to the daemon; None for anything it must leave untouched."""
    lowered = name.lower()
    if lowered.startswith(".") or lowered in _IGNORED_NAMES or lowered.endswith(_IGNORED_SUFFIXES):
        return None
    if lowered.endswith(URL_DROP_SUFFIXES):
        return Candidate.URL_DROP
    if lowered.endswith(SIDECAR_SUFFIXES) and lowered.rsplit(".", 1)[0].endswith(_ANY_AUDIO):
        return Candidate.SIDECAR
    if lowered.endswith(_ANY_AUDIO):
        return Candidate.AUDIO
    return None


def audio_name_of_sidecar(sidecar_name: str) -> str:
    return sidecar_name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class InboxFilter:
    """Which paths belong to an inbox: not its done/ or failed/, not excluded, not hidden."""

    root: Path
    recursive: bool
    skip_dirs: tuple[Path, ...]
    exclude: tuple[str, ...] = ()

    def relative(self, path: Path) -> str | None:
        """The path relative to the inbox if the daemon should consider it, else None."""
        try:
            rel = path.relative_to(self.root)
        except ValueError:
            return None
        parts = rel.parts
        if not parts or (len(parts) > 1 and not self.recursive):
            return None
        if any(part.startswith(".") for part in parts[:-1]):
            return None
        if any(path == skip or skip in path.parents for skip in self.skip_dirs):
            return None
        text = rel.as_posix()
        if any(fnmatch.fnmatch(text, pattern) for pattern in self.exclude):
            return None
        return text

    def scan(self, folder: Folder) -> list[tuple[str, os.stat_result, Candidate]]:
        """Every candidate entry under the inbox now, with its lstat (startup and rescans).

        Works on names below the inbox's descriptor, walking top-down and entering sub-folders
        without following symlinks; a backlog of ten thousand files makes the per-path
        ``relative`` (which must judge any path on its own) too slow here.
        """
        return list(self.walk(folder))

    def walk(
        self, folder: Folder, entered: Entered | None = None
    ) -> Generator[tuple[str, os.stat_result, Candidate], None, None]:
        """``scan``, one entry at a time (a rescan pauses between entries); ``entered`` is told
        of every folder the walk opens, before its entries are listed."""
        skip = frozenset(
            folder_path.relative_to(self.root).as_posix()
            for folder_path in self.skip_dirs
            if folder_path.is_relative_to(self.root) and folder_path != self.root
        )
        kinds: dict[str, Candidate] = {}

        def descend(rel: str, name: str) -> bool:
            return not name.startswith(".") and rel not in skip and not self._excluded(rel + "/x")

        def keep(rel: str, name: str) -> bool:
            kind = classify(name)
            if kind is None or (self.exclude and self._excluded(rel)):
                return False
            kinds[rel] = kind
            return True

        for rel, info in walk(folder, self.recursive, descend, keep, entered):
            yield rel, info, kinds.pop(rel)

    def _excluded(self, rel: str) -> bool:
        return any(fnmatch.fnmatch(rel, pattern) for pattern in self.exclude)


@dataclass(slots=True)
class TrackedFile:
    """A file seen in an inbox that is not yet known to be completely written.

    The stability rule: the file is ready when no event has come for ``settle_seconds`` and
    its size and mtime have not changed over that window, and, for a WAV whose RIFF header
    states a length, the file has reached that length. A file that keeps growing is followed
    for as long as it grows and never times out into failure. A WAV that stops short of its
    stated length for ``5 x settle_seconds`` (and at least a second) is passed on, so that the
    audio check can report it as truncated instead of waiting for ever.
    """

    record_id: int
    rel: str
    size: int
    mtime_ns: int
    last_change: float
    short_since: float | None = None

    def observe(self, size: int, mtime_ns: int, now: float) -> bool:
        """Note a stat; True if the file changed since the last one."""
        if (size, mtime_ns) == (self.size, self.mtime_ns):
            return False
        self.size, self.mtime_ns, self.last_change = size, mtime_ns, now
        self.short_since = None
        return True


def short_grace(settle_seconds: float) -> float:
    return max(1.0, 5 * settle_seconds)


# ---------------------------------------------------------------- sidecars and URL drops


@dataclass(frozen=True)
class Directions:
    """What a sidecar or a URL drop asks for; all optional except ``url`` for drops."""

    conversation: str | None = None
    part: int | None = None
    conversation_id: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    url: str | None = None
    # The sidecar's own ``params`` before merging, so a reloaded profile can be merged again.
    overrides: Mapping[str, Any] = field(default_factory=dict)


class DirectionsError(Exception):
    """A sidecar or drop file that cannot be followed; ``lines`` are pointed messages."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


def directions_from_document(
    document: Any,
    name: str,
    is_drop: bool,
    profile_params: Mapping[str, Any],
    *,
    private: bool = False,
) -> Directions:
    """Check a parsed sidecar or URL drop (a ``YamlDocument``) against the profile.

    ``private``: the file was readable by its owner only, so the messages name lines, never
    what is written on them.
    """
    problems: list[tuple[tuple[str | int, ...], str]] = []
    directions = _directions_from(document.data, is_drop, profile_params, problems)
    if problems:
        if private:
            lines = sorted({document.line_of(loc) or 0 for loc, _ in problems})
            raise DirectionsError(
                [f"{name}:{line}: not accepted (details withheld: the file is readable by its "
                 "owner only)" for line in lines]
            )  # fmt: skip
        raise DirectionsError(
            [_pointed(name, document.line_of(loc), loc, msg) for loc, msg in problems]
        )
    return directions


def _pointed(name: str, line: int | None, loc: tuple[str | int, ...], message: str) -> str:
    where = f"{name}:{line}" if line else name
    return f"{where}: {dotted(loc)}: {message}" if loc else f"{where}: {message}"


def _directions_from(
    data: Any,
    is_drop: bool,
    profile_params: Mapping[str, Any],
    problems: list[tuple[tuple[str | int, ...], str]],
) -> Directions:
    if data is None and not is_drop:
        return Directions()
    if not isinstance(data, dict):
        problems.append(((), "must be a mapping of keys like conversation, part, params"))
        return Directions()
    allowed = URL_DROP_KEYS if is_drop else SIDECAR_KEYS
    for key in data:
        if key not in allowed:
            problems.append(((str(key),), unknown_key_message(str(key), allowed)))
    conversation = _text_or_number(data, "conversation", problems)
    conversation_id = _text_or_number(data, "conversationId", problems)
    if conversation_id is not None and not _CONVERSATION_ID.fullmatch(conversation_id):
        problems.append((("conversationId",), "must be a Symbl conversationId: digits only"))
        conversation_id = None
    part = _part(data, problems)
    params = _params(data, profile_params, problems)
    url = _url(data, problems) if is_drop else None
    raw_overrides = data.get("params")
    overrides: dict[str, Any] = raw_overrides if isinstance(raw_overrides, dict) else {}
    return Directions(conversation, part, conversation_id, params, url, overrides)


def _text_or_number(
    data: dict[str, Any], key: str, problems: list[tuple[tuple[str | int, ...], str]]
) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        problems.append(((key,), "must be a non-empty string"))
        return None
    return str(value).strip()


def _part(data: dict[str, Any], problems: list[tuple[tuple[str | int, ...], str]]) -> int | None:
    value = data.get("part")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append((("part",), "must be a whole number, 1 or more (1 = the first part)"))
        return None
    return value


def _params(
    data: dict[str, Any],
    profile_params: Mapping[str, Any],
    problems: list[tuple[tuple[str | int, ...], str]],
) -> Mapping[str, Any]:
    overrides = data.get("params")
    if overrides is None:
        return dict(profile_params)
    if not isinstance(overrides, dict):
        problems.append((("params",), "must be a mapping of Symbl parameters"))
        return {}
    owned = [key for key in DAEMON_OWNED_PARAMS if key in overrides]
    for key in owned:
        problems.append((("params", key), "is set by the daemon; a sidecar may not set it"))
    if owned:
        return {}
    checked, found = validate_params(merge_params(profile_params, overrides))
    problems.extend(_under_params(problem) for problem in found)
    return checked


def _under_params(problem: ParamProblem) -> tuple[tuple[str | int, ...], str]:
    return (("params", *problem.loc), problem.message)


def _url(data: dict[str, Any], problems: list[tuple[tuple[str | int, ...], str]]) -> str | None:
    value = data.get("url")
    if value is None:
        problems.append((("url",), "is required: the public http(s) address of the audio"))
        return None
    if not isinstance(value, str) or urlparse(value).scheme not in ("http", "https"):
        problems.append((("url",), "must be an http:// or https:// address"))
        return None
    if not urlparse(value).netloc:
        problems.append((("url",), "has no host"))
        return None
    return value


def continuation_from_name(pattern: Any, name: str) -> tuple[str, int] | None:
    """(conversation key, part) when a profile's ``continuation_pattern`` matches the name."""
    if pattern is None:
        return None
    match = pattern.match(name)
    if match is None:
        return None
    try:
        part = int(match.group("part"))
    except (TypeError, ValueError):
        return None
    return match.group("conversation"), part
