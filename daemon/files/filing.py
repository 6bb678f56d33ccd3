"""Moving a finished file, with its record, into done/ or failed/. Nothing is ever deleted.

Filing is idempotent so that a crash at any point is mended by filing again: the target name is
chosen first and kept in the journal, the record is written (temporary name, fsync, rename), then
the audio and its sidecar are moved. A move within one filesystem is a rename; across
filesystems it is a copy from the checked descriptor, fsync, rename, then unlink of the source.

The daemon files through ``choose_target_in`` and ``file_into``: every operation relative to
the folder descriptors of ``daemon.fsboundary``, never overwriting anything, records never more
readable than the audio. The operator's ``retry`` moves files back the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import partial
from pathlib import PurePosixPath
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


def record_suffix(outcome: str) -> str:
    return RESULT_SUFFIX if outcome == "done" else ERROR_SUFFIX


def choose_target_in(folder: Folder, rel_path: str, companions: Iterable[str] = ()) -> str:
    """A relative name under ``folder`` that clashes with nothing already there.

    ``call.wav`` stays ``call.wav`` if free, else becomes ``call.1.wav``, ``call.2.wav``...; the
    name counts as taken if the audio, its record, its transcript or any companion (sidecar)
    name is taken, by anything (a symlink too). Names stay within 255 bytes.
    """
    rel = PurePosixPath(rel_path)
    suffixes = (RESULT_SUFFIX, ERROR_SUFFIX, TRANSCRIPT_SUFFIX, *companions)
    for attempt in range(100000):
        name = rel.name if attempt == 0 else fit_name(rel.name, partial(_numbered, number=attempt))
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
        # One sync of the folder, after the audio's move, keeps the records' renames too: a
        # crash before it leaves a final state not yet filed, which is filed again.
        write = partial(write_new, folder, mode=mode, group=group, replace_own=True)
        write(record_name, _json_bytes(record), sync_folder=False)
        for suffix, text in (extra_files or {}).items():
            extra_name, _ = companion_name(name, suffix)
            write(extra_name, text.encode("utf-8", "backslashreplace"), sync_folder=False)
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
