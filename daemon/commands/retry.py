"""``symbl-inbox retry``: send failed files back to their inbox so they are processed again.

A failed file is an audio file (or URL drop) in an inbox's failed/ folder with its
``.error.json`` beside it. Retrying moves it, and its sidecar first so that the daemon finds
the sidecar when it sees the audio, to the same relative path in the inbox (a free name if that
one is taken). Nothing is deleted: the error record is renamed to
``X.wav.error.json.retried-<UTC time>`` so it no longer sits beside a file, and the journal row
is marked ``retried`` so ``status`` stops counting it. A running daemon sees the files as new
drops; a stopped one finds them on its startup scan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from daemon.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from daemon.commands.status import load_operator_config
from daemon.config import Config, Inbox
from daemon.files.filing import ERROR_SUFFIX, choose_target_in
from daemon.files.intake import SIDECAR_SUFFIXES, Candidate, classify
from daemon.fsboundary import Folder, move_entry, rename_noreplace
from daemon.journal import Journal
from daemon.journal.opening import journal_errors, journal_place, open_for_operator
from daemon.reasons import FAILURE_REASONS

RETRIED_MARK = ".retried-"


@dataclass(frozen=True)
class FailedFile:
    """A file in an inbox's failed/ folder, with the error record that explains it."""

    inbox: Inbox
    rel_path: str
    reason: str | None

    @property
    def path(self) -> Path:
        return self.inbox.failed / self.rel_path

    @property
    def error_record(self) -> Path:
        return self.path.with_name(self.path.name + ERROR_SUFFIX)

    def sidecar_suffix(self) -> str | None:
        """``.yaml`` or ``.yml`` when a sidecar was filed beside the audio."""
        for suffix in SIDECAR_SUFFIXES:
            if self.path.with_name(self.path.name + suffix).is_file():
                return suffix
        return None


@dataclass(frozen=True)
class Retried:
    failed: FailedFile
    target: Path
    sidecar: Path | None
    error_record: Path


class UsageProblem(Exception):
    """A PATH that is not a failed file of any inbox, or a missing selection."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="a failed file (in an inbox's failed/ folder) to retry",
    )
    parser.add_argument("--all", action="store_true", help="retry every failed file")
    parser.add_argument(
        "--reason", metavar="REASON", help="retry the failed files with this reason (not_audio...)"
    )


def main(args: argparse.Namespace) -> int:
    config = load_operator_config(args.config_path)
    if config is None:
        return EXIT_USAGE
    try:
        chosen = select(config, args.paths, every=args.all, reason=args.reason)
    except UsageProblem as problem:
        print(f"symbl-inbox retry: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if not chosen:
        print("Nothing to retry.")
        return EXIT_OK
    return asyncio.run(_retry_all(config, chosen))


async def _retry_all(config: Config, chosen: list[FailedFile]) -> int:
    errors = journal_errors(config)
    caught: tuple[type[Exception], ...] = (OSError, *errors)
    try:
        journal = await open_for_operator(config, readonly=False)
    except errors as exc:
        print(f"cannot open the journal in {journal_place(config)}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    code = EXIT_OK
    try:
        for failed in chosen:
            try:
                done = await retry_one(failed, journal, time.time())
            except caught as exc:
                print(f"could not retry {failed.path}: {exc}", file=sys.stderr)
                code = EXIT_FAILURE
                continue
            _report(done)
    finally:
        if journal is not None:
            await journal.close()
    return code


# ==================================================================== choosing


def select(
    config: Config, paths: list[str], *, every: bool, reason: str | None
) -> list[FailedFile]:
    """The failed files the command line asks for; exactly one way of asking is allowed."""
    ways = sum((bool(paths), every, reason is not None))
    if ways != 1:
        raise UsageProblem("give failed files as PATH ..., or --all, or --reason REASON (one)")
    if paths:
        chosen = [_failed_file_at(config, Path(text)) for text in paths]
        return list(dict.fromkeys(chosen))  # the same file named twice is retried once
    found = list(failed_files(config.inboxes))
    if reason is not None:
        present = {failed.reason for failed in found}
        if reason not in FAILURE_REASONS and reason not in present:
            raise UsageProblem(
                f"unknown reason {reason!r}; the reasons are: {', '.join(FAILURE_REASONS)}"
            )
        found = [failed for failed in found if failed.reason == reason]
    return found


def failed_files(inboxes: Iterable[Inbox]) -> Iterator[FailedFile]:
    """Every file in every failed/ folder that still has its error record beside it."""
    for inbox in inboxes:
        if not inbox.failed.is_dir():
            continue
        for record in sorted(inbox.failed.rglob(f"*{ERROR_SUFFIX}")):
            audio = record.with_name(record.name[: -len(ERROR_SUFFIX)])
            if audio.is_file():
                rel = audio.relative_to(inbox.failed).as_posix()
                yield FailedFile(inbox, rel, _reason_in(record))


def _failed_file_at(config: Config, given: Path) -> FailedFile:
    path = given.resolve()
    if path.name.endswith(ERROR_SUFFIX):
        path = path.with_name(path.name[: -len(ERROR_SUFFIX)])
    for inbox in config.inboxes:
        try:
            rel = path.relative_to(inbox.failed.resolve())
        except ValueError:
            continue
        failed = FailedFile(inbox, rel.as_posix(), None)
        if not path.is_file():
            raise UsageProblem(f"{given}: no such file in {inbox.failed}")
        if classify(path.name) not in (Candidate.AUDIO, Candidate.URL_DROP):
            raise UsageProblem(f"{given}: not an audio file or URL drop")
        if not failed.error_record.is_file():
            raise UsageProblem(f"{given}: has no {ERROR_SUFFIX} beside it, so it did not fail")
        return FailedFile(inbox, failed.rel_path, _reason_in(failed.error_record))
    folders = ", ".join(str(inbox.failed) for inbox in config.inboxes)
    raise UsageProblem(f"{given}: not in the failed folder of any inbox ({folders})")


def _reason_in(error_record: Path) -> str | None:
    try:
        reason = json.loads(error_record.read_text(encoding="utf-8")).get("reason")
    except (OSError, ValueError, AttributeError):
        return None
    return reason if isinstance(reason, str) else None


# ==================================================================== moving


async def retry_one(failed: FailedFile, journal: Journal | None, now: float) -> Retried:
    """Move the file (sidecar first) into its inbox, set its record aside, mark the journal.

    Through the folder descriptors of ``daemon.fsboundary``, like the daemon's own filing:
    entries move as they are (a symlink a dropper left in failed/ moves as a link, it is
    never followed), and nothing is overwritten.
    """
    suffix = failed.sidecar_suffix()
    companions = (suffix,) if suffix else ()
    inbox = failed.inbox
    # The operator's own command, often run as root: failed/ is opened as configured, whoever
    # owns it, but still without following a symlink in its place.
    target_folder = Folder.open(inbox.path)
    anchor = target_folder if inbox.failed.is_relative_to(inbox.path) else None
    try:
        source = Folder.open(inbox.failed, anchor=anchor)
    except BaseException:
        target_folder.close()
        raise
    try:
        target_rel = choose_target_in(target_folder, failed.rel_path, companions)
        with (
            source.parent_of(failed.rel_path) as (source_fd, name),
            target_folder.parent_of(target_rel, create=True) as (target_fd, target_name),
        ):
            if suffix:
                move_entry(source_fd, name + suffix, target_fd, target_name + suffix)
            move_entry(source_fd, name, target_fd, target_name)
            set_aside = _set_aside(source_fd, name + ERROR_SUFFIX, RETRIED_MARK + _utc_stamp(now))
    finally:
        source.close()
        target_folder.close()
    target = inbox.path / target_rel
    sidecar_target = target.with_name(target.name + suffix) if suffix else None
    if journal is not None:
        record = await journal.filed_failure_at(failed.inbox.key, failed.rel_path)
        if record is not None:
            await journal.mark_retried(record, now)
    return Retried(failed, target, sidecar_target, failed.error_record.with_name(set_aside))


def _set_aside(folder_fd: int, name: str, suffix: str) -> str:
    """Rename the error record to ``name`` + ``suffix`` (+ ``-N`` when a retry in the same
    second took that name); the new name."""
    number = 0
    while True:
        candidate = name + suffix + (f"-{number}" if number else "")
        try:
            rename_noreplace(folder_fd, name, folder_fd, candidate)
        except FileExistsError:
            number += 1
            continue
        return candidate


def _utc_stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y%m%dT%H%M%SZ")


def _report(done: Retried) -> None:
    reason = f" ({done.failed.reason})" if done.failed.reason else ""
    print(f"{done.failed.path} -> {done.target}{reason}")
    if done.sidecar is not None:
        print(f"  with its sidecar -> {done.sidecar}")
    print(f"  error record kept as {done.error_record}")
