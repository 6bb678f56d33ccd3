"""Moving a finished file, with its record, into done/ or failed/. Nothing is ever deleted.

Filing is idempotent so that a crash at any point is mended by filing again: the target name is
chosen first and kept in the journal, the record is written (temporary name, fsync, rename), then
the audio and its sidecar are moved. A move within one filesystem is a rename; across
filesystems it is copy, fsync, rename, then unlink of the source.

The daemon files through ``choose_target_in`` and ``file_into``: every operation relative to
the folder descriptors of ``daemon.fsboundary``, never overwriting anything, records never more
readable than the audio. ``choose_target`` and ``move_file`` serve the operator's ``retry``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from daemon.fsboundary import (
    Folder,
    companion_name,
    exists_in,
    fit_name,
    lstat_in,
    move_entry,
    record_mode,
    write_new,
)

RESULT_SUFFIX = ".result.json"
ERROR_SUFFIX = ".error.json"
TRANSCRIPT_SUFFIX = ".transcript.txt"
_TEMP_PREFIX = ".symbl-inbox-tmp-"


def record_suffix(outcome: str) -> str:
    return RESULT_SUFFIX if outcome == "done" else ERROR_SUFFIX


def choose_target(target_root: Path, rel_path: str, companions: Iterable[str] = ()) -> str:
    """A relative name under ``target_root`` that clashes with nothing already there.

    ``call.wav`` stays ``call.wav`` if free, else becomes ``call.1.wav``, ``call.2.wav``...; the
    name counts as taken if the audio, its record or any companion (sidecar) name is taken.
    """
    rel = Path(rel_path)
    companion_suffixes = tuple(companions)
    for attempt in range(100000):
        name = rel.name if attempt == 0 else _numbered(rel.name, attempt)
        candidate = rel.with_name(name)
        taken = (
            target_root / candidate,
            target_root / f"{candidate}{RESULT_SUFFIX}",
            target_root / f"{candidate}{ERROR_SUFFIX}",
            *(target_root / f"{candidate}{suffix}" for suffix in companion_suffixes),
        )
        if not any(os.path.lexists(path) for path in taken):
            return candidate.as_posix()
    raise FileExistsError(f"no free name for {rel_path} under {target_root}")


def choose_target_in(folder: Folder, rel_path: str, companions: Iterable[str] = ()) -> str:
    """``choose_target`` below a folder descriptor; records and transcripts count as taken."""
    rel = PurePosixPath(rel_path)
    suffixes = (RESULT_SUFFIX, ERROR_SUFFIX, TRANSCRIPT_SUFFIX, *companions)
    for attempt in range(100000):
        name = rel.name if attempt == 0 else fit_name(_numbered(rel.name, attempt))
        candidate = rel.with_name(name)
        names = [candidate.as_posix()] + [
            candidate.with_name(companion_name(name, suffix)[0]).as_posix() for suffix in suffixes
        ]
        if not any(exists_in(folder, taken) for taken in names):
            return candidate.as_posix()
    raise FileExistsError(f"no free name for {rel_path} under {folder.path}")


def file_into(
    source: Folder,
    rel_path: str,
    target: Folder,
    target_rel: str,
    record: Mapping[str, Any],
    outcome: str,
    companions: Mapping[str, str],
    extra_files: Mapping[str, str] | None = None,
) -> None:
    """Write the record (and any extra text files), then move the file and its companions.

    Everything is relative to the folder descriptors. Records and extra files are created new
    (never written through a planted name) and are as readable as the audio at most; their
    name is shortened where it would pass 255 bytes, and the record says so. A name already
    taken by anything but this filing's own earlier record raises ``FileExistsError``.
    """
    try:
        audio = lstat_in(source, rel_path)
    except OSError:
        try:
            audio = lstat_in(target, target_rel)
        except OSError:
            audio = None
    mode, group = record_mode(audio)
    with target.parent_of(target_rel, create=True) as (folder, name):
        record_name, shortened = companion_name(name, record_suffix(outcome))
        if shortened:
            record = {
                **record,
                "recordNameShortened": True,
                "note": "the file's name is too long for the record's own name: this record's "
                "name is shortened; `file` is the whole name",
            }
        write_new(folder, record_name, _json_bytes(record), mode, group, replace_own=True)
        for suffix, text in (extra_files or {}).items():
            extra_name, _ = companion_name(name, suffix)
            data = text.encode("utf-8", "backslashreplace")
            write_new(folder, extra_name, data, mode, group, replace_own=True)
        with source.parent_of(rel_path) as (source_folder, source_name):
            move_entry(source_folder, source_name, folder, name)
            for suffix in companions:
                move_entry(source_folder, source_name + suffix, folder, name + suffix)


def _json_bytes(payload: Mapping[str, Any]) -> bytes:
    text = json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
    # Names that are not UTF-8 are carried as text elsewhere in the record; a stray one here
    # becomes a JSON escape rather than invalid UTF-8.
    return text.encode("utf-8", "backslashreplace")


def _numbered(name: str, number: int) -> str:
    stem, dot, extension = name.rpartition(".")
    if not dot or not stem:
        return f"{name}.{number}"
    if stem.lower().endswith(".url"):  # keep NAME.url.yaml recognisable as a URL drop
        return f"{stem[:-4]}.{number}.url.{extension}"
    return f"{stem}.{number}.{extension}"


def write_json_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    write_text_atomically(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def write_text_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{_TEMP_PREFIX}{path.name}")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    _fsync_dir(path.parent)


def move_file(source: Path, target: Path) -> bool:
    """Move without ever overwriting a different file; False if the source was already gone.

    A leftover target from an interrupted cross-filesystem copy of this same file is replaced.
    """
    if not source.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        source.rename(target)
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: another filesystem
            raise
        _copy_then_unlink(source, target)
    _fsync_dir(target.parent)
    return True


def _copy_then_unlink(source: Path, target: Path) -> None:
    temporary = target.with_name(f"{_TEMP_PREFIX}{target.name}")
    with open(source, "rb") as reader, open(temporary, "wb") as writer:
        shutil.copyfileobj(reader, writer, 1024 * 1024)
        writer.flush()
        os.fsync(writer.fileno())
    shutil.copystat(source, temporary)
    temporary.replace(target)
    _fsync_dir(target.parent)
    source.unlink()


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
