"""Rows of the PostgreSQL journal as records, and records as rows: names as the file system's
bytes (so any name survives and is found again), data as JSON, enums as their values."""

from __future__ import annotations

import os
from dataclasses import fields
from enum import StrEnum
from typing import Any

from psycopg.types.json import Json

from daemon.model import ConversationRecord, FileRecord, Kind, State

NAME_COLUMNS = frozenset({"rel_path", "conversation_key", "filed_path"})
FILE_COLUMNS = tuple(f.name for f in fields(FileRecord))


def name_bytes(name: str) -> bytes:
    """A file or key name as stored: the file system's bytes (surrogateescape undone)."""
    return os.fsencode(name)


def name_text(stored: bytes | memoryview) -> str:
    return os.fsdecode(bytes(stored))


def column_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in NAME_COLUMNS:
        return name_bytes(value)
    if isinstance(value, dict):
        return Json(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


def file_from_row(row: tuple[Any, ...]) -> FileRecord:
    values = dict(zip(FILE_COLUMNS, row, strict=True))
    for name in NAME_COLUMNS:
        if values[name] is not None:
            values[name] = name_text(values[name])
    values["id"] = int(values["id"])
    values["kind"] = Kind(values["kind"])
    values["state"] = State(values["state"])
    return FileRecord(**values)


def conversation_from_row(row: tuple[Any, ...]) -> ConversationRecord:
    inbox, key, conversation_id, done, assigned, rejected, data = row
    return ConversationRecord(
        str(inbox), name_text(key), conversation_id, int(done), int(assigned), bool(rejected), data
    )
