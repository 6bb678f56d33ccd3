"""What a profile asks to keep of a completed conversation: fetched, then filed beside the audio.

A fetch that fails (after the client's own retries) is noted in the result record; it never
holds up or loses the filing of the audio.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from daemon.client import SymblClient, SymblError

# Export name -> the conversation API's path part (``transcript`` is rendered from messages).
API_PARTS: dict[str, str] = {
    "transcript": "messages",
    "messages": "messages",
    "topics": "topics",
    "questions": "questions",
    "action_items": "action-items",
    "follow_ups": "follow-ups",
    "summary": "summary",
    "entities": "entities",
    "trackers": "trackers",
}


@dataclass
class Exports:
    """What was fetched for the result record, the transcript text, and what could not be."""

    data: dict[str, Any] = field(default_factory=dict)
    transcript: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


async def fetch_exports(
    client: SymblClient, conversation_id: str, wanted: Iterable[str]
) -> Exports:
    exports = Exports()
    fetched: dict[str, Any] = {}
    for name in wanted:
        part = API_PARTS[name]
        if part not in fetched:
            try:
                fetched[part] = await client.conversation(conversation_id, part)
            except SymblError as error:
                exports.errors[name] = error.message
                continue
        if name == "transcript":
            exports.transcript = render_transcript(fetched[part])
        else:
            exports.data[name] = _unwrap(fetched[part])
    return exports


def _unwrap(body: Any) -> Any:
    """``{"topics": [...]}`` -> ``[...]``; top-level arrays (trackers) stay as they are."""
    if isinstance(body, dict) and len(body) == 1:
        return next(iter(body.values()))
    return body


def render_transcript(body: Any) -> str:
    """Messages as readable lines: ``[00:01:02] Speaker: text``."""
    messages = body.get("messages", []) if isinstance(body, dict) else []
    start = _first_start(messages)
    lines = []
    for message in messages:
        speaker = (message.get("from") or {}).get("name") or "Unknown speaker"
        offset = _offset_seconds(message, start)
        lines.append(f"[{_clock(offset)}] {speaker}: {message.get('text', '').strip()}")
    return "\n".join(lines) + ("\n" if lines else "")


def _first_start(messages: list[dict[str, Any]]) -> datetime | None:
    times = [_parse_time(message.get("startTime")) for message in messages]
    known = [time for time in times if time is not None]
    return min(known) if known else None


def _offset_seconds(message: dict[str, Any], start: datetime | None) -> float:
    offset = message.get("timeOffset")
    if isinstance(offset, (int, float)):
        return float(offset)
    when = _parse_time(message.get("startTime"))
    if when is not None and start is not None:
        return (when - start).total_seconds()
    return 0.0


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _clock(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole // 3600:02}:{whole % 3600 // 60:02}:{whole % 60:02}"
