"""The JSON records filed beside each file: what happened, in words a person and a program read.

Secrets never reach them: the whole record goes through the log masker before it is written.
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from typing import Any

from daemon.fsboundary import is_utf8
from daemon.journal import FileRecord
from daemon.logs import masker


def iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _attempt(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        **entry,
        "startedAt": iso(entry.get("startedAt")),
        "finishedAt": iso(entry.get("finishedAt")),
    }


def name_fields(rel_path: str) -> dict[str, Any]:
    """``file``: the name as text; a name that is not UTF-8 has its bytes shown as ``\\xNN``
    there, and exactly in ``fileBase64``."""
    if is_utf8(rel_path):
        return {"file": rel_path}
    raw = os.fsencode(rel_path)
    return {
        "file": raw.decode("utf-8", "backslashreplace"),
        "fileBase64": base64.b64encode(raw).decode("ascii"),
    }


def _common(record: FileRecord) -> dict[str, Any]:
    data = record.data
    common: dict[str, Any] = {
        **name_fields(record.rel_path),
        "inbox": record.inbox,
        "kind": record.kind.value,
        "profile": record.profile,
        "conversationId": record.conversation_id,
        "jobId": record.job_id,
        "sha256": record.sha256,
        "size": record.size,
        "attempts": [_attempt(entry) for entry in data.get("attempt_log", [])],
        # The recording: its real length, and what was dropped beside what was sent.
        "duration_seconds": data.get("duration_seconds"),
        "audio": data.get("audio"),
        "timestamps": {stage: iso(when) for stage, when in record.times.items()},
    }
    if "takeovers" in data:  # taken over from a host that stopped (several hosts)
        common["takeovers"] = data["takeovers"]
    if record.kind.value == "url":
        common["url"] = data.get("url")
    if record.conversation_key is not None:
        common["conversation"] = {
            "key": record.conversation_key,
            "part": record.part,
            "conversationId": record.conversation_id,
        }
    return common


def result_record(record: FileRecord, exports: dict[str, Any] | None = None) -> dict[str, Any]:
    """``done/X.wav.result.json``."""
    data = record.data
    result = {
        **_common(record),
        "status": data.get("job_status", "completed"),
        "parameters": data.get("params", {}),
    }
    for note in ("duplicate_of", "predecessor_job_failed", "predecessor_failed", "export_errors"):
        if note in data:
            result[note] = data[note]
    if exports:
        result["exports"] = exports
    scrubbed: dict[str, Any] = masker.scrub(result)
    return scrubbed


def error_record(record: FileRecord) -> dict[str, Any]:
    """``failed/X.wav.error.json``."""
    data = record.data
    error = {
        "reason": record.reason,
        "message": data.get("message"),
        "httpStatus": data.get("http_status"),
        "httpBody": data.get("http_body"),
        **_common(record),
        "status": data.get("job_status"),
        "parameters": data.get("params"),
    }
    if "entry_type" in data:
        error["entryType"] = data["entry_type"]
    scrubbed: dict[str, Any] = masker.scrub(error)
    return scrubbed
