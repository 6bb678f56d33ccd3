"""A settled drop examined across the trust boundary, in a worker thread, before admission.

``examine`` looks at one entry of an inbox the way ``daemon.fsboundary`` allows: lstat first, a
regular file opened with ``O_NOFOLLOW|O_NONBLOCK`` and checked with ``fstat``, the audio's head
read from that descriptor, its sidecar (or the URL drop itself) read whole only up to
``DIRECTIONS_MAX_BYTES`` and parsed by a YAML loader with limits. Nothing here touches the
journal: the daemon's loop judges the ``Examination`` (``daemon.pipeline.admitter``).

Why sidecars refuse aliases outright rather than bound their expansion: a sidecar is a handful
of keys written by hand or by a recorder; anchors and aliases serve nothing there, and without
them neither an expansion bomb nor a recursive structure can be written. Nesting is bounded too
(the deepest real sidecar, ``params.trackers[0].vocabulary[0]``, is four levels).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any

import yaml

from daemon.config.yamlsource import TextKeyLoader, YamlDocument
from daemon.files.audio import AudioInfo, AudioProblem, inspect_stream
from daemon.files.intake import SIDECAR_SUFFIXES, DirectionsError
from daemon.fsboundary import Checked, Folder, NotRegularFile, display, open_checked, read_capped

DIRECTIONS_MAX_BYTES = 64 * 1024
MAX_NESTING = 16


class LimitedLoader(TextKeyLoader):
    """The sidecar loader: no aliases, at most ``MAX_NESTING`` levels of nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in the stubs
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not accepted in sidecars and URL drops", mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # untyped in the stubs
                raise yaml.composer.ComposerError(
                    None, None, f"nested deeper than {MAX_NESTING} levels", mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@dataclass
class Examination:
    """What one settled entry turned out to be; exactly one outcome field says what to do."""

    vanished: bool = False
    # The entry (or its sidecar) is not a regular file: (entry type, message).
    not_regular: tuple[str, str] | None = None
    audio: AudioInfo | AudioProblem | OSError | None = None
    size: int | None = None
    mtime_ns: int | None = None
    # The sidecar's suffix (``.yaml``) when one sits beside the audio.
    sidecar: str | None = None
    document: YamlDocument | None = None
    # The sidecar or drop could not be read or parsed: (reason, message lines).
    refused: tuple[str, list[str]] | None = None
    # Readable by its owner only: messages must not say what is written in it.
    private: bool = False


def examine(folder: Folder, rel: str, *, is_drop: bool) -> Examination:
    """Look at the entry ``rel`` below the inbox folder (call it in a worker thread)."""
    try:
        with folder.parent_of(rel) as (parent, name):
            return _examine_in(parent, name, is_drop)
    except (FileNotFoundError, NotADirectoryError):  # gone, or a folder on the way is a symlink
        return Examination(vanished=True)
    except OSError as exc:
        return Examination(audio=exc)


def _examine_in(parent: int, name: str, is_drop: bool) -> Examination:
    try:
        checked = open_checked(parent, name)
    except NotRegularFile as exc:
        return Examination(not_regular=(exc.entry_type, f"{display(name)} is {exc.words}"))
    except FileNotFoundError:
        return Examination(vanished=True)
    except OSError as exc:  # unreadable: judged as such, with its sidecar beside it
        found = Examination(audio=exc)
        if not is_drop:
            _examine_sidecar(parent, name, found)
        return found
    with checked:
        found = Examination(size=checked.info.st_size, mtime_ns=checked.info.st_mtime_ns)
        if is_drop:
            _read_directions(checked, name, "bad_url_drop", found)
            return found
        try:
            with checked.stream() as stream:
                found.audio = inspect_stream(stream, checked.info.st_size)
        except (AudioProblem, OSError) as problem:
            found.audio = problem
    _examine_sidecar(parent, name, found)
    return found


def _examine_sidecar(parent: int, name: str, found: Examination) -> None:
    for suffix in SIDECAR_SUFFIXES:
        try:
            checked = open_checked(parent, name + suffix)
        except FileNotFoundError:
            continue
        except NotRegularFile as exc:
            found.sidecar = suffix
            found.not_regular = (
                exc.entry_type,
                f"its sidecar {display(name + suffix)} is {exc.words}, not a regular file",
            )
            return
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                return  # no sidecar can have that name
            found.sidecar = suffix
            found.refused = (
                "unreadable_file",
                [f"cannot read its sidecar {display(name + suffix)}: {exc.strerror}"],
            )
            return
        found.sidecar = suffix
        with checked:
            _read_directions(checked, name + suffix, "bad_sidecar", found)
        return


def _read_directions(checked: Checked, name: str, reason: str, found: Examination) -> None:
    label = display(name)
    found.private = not checked.info.st_mode & 0o044
    try:
        data = read_capped(checked, DIRECTIONS_MAX_BYTES)
    except ValueError as exc:
        found.refused = (reason, [f"{label}: too large: {exc}"])
        return
    except OSError as exc:
        found.refused = ("unreadable_file", [f"cannot read {label}: {exc.strerror}"])
        return
    try:
        found.document = parse_directions(data, label, private=found.private)
    except DirectionsError as exc:
        found.refused = (reason, exc.lines)


def parse_directions(data: bytes, label: str, *, private: bool = False) -> YamlDocument:
    """Parse a sidecar or drop's bytes with ``LimitedLoader``; ``DirectionsError`` if it fails."""
    from daemon.config import ConfigError, load_yaml_document

    withheld = "(details withheld: the file is readable by its owner only)"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        detail = withheld if private else f"({exc.reason})"
        raise DirectionsError([f"{label}: not UTF-8 text {detail}"]) from None
    try:
        return load_yaml_document(text, label, loader_class=LimitedLoader)
    except ConfigError as exc:
        if private:
            lines = sorted({problem.line or 0 for problem in exc.problems})
            messages = [f"{label}:{line}: not YAML {withheld}" for line in lines]
            raise DirectionsError(messages) from None
        raise DirectionsError([str(problem) for problem in exc.problems]) from None
    except RecursionError:
        raise DirectionsError([f"{label}: nested too deeply"]) from None
