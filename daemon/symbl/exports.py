"""What a profile asks to keep of a completed conversation: fetched, then filed beside the audio.

A fetch that fails (after the client's own retries) is noted in the result record; it never
holds up or loses the filing of the audio.

``markdown`` and ``srt`` are Symbl's own renderings (``POST .../transcript``), ``vtt`` is the
SRT rewritten as WebVTT: each becomes a file beside the audio (``X.wav.md``, ``X.wav.srt``,
``X.wav.vtt``) and an entry under ``exports`` in the result record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import srt

from daemon.symbl.client import SymblClient, SymblError

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


# Export name -> (suffix of its file beside the audio, media type).
FILE_EXPORTS: dict[str, tuple[str, str]] = {
    "markdown": (".md", "text/markdown"),
    "srt": (".srt", "application/x-subrip"),
    "vtt": (".vtt", "text/vtt"),
}
# What each file export asks Symbl for.
_SYMBL_CONTENT_TYPES = {"markdown": "text/markdown", "srt": "text/srt", "vtt": "text/srt"}


@dataclass
class Exports:
    """What was fetched for the result record, the files to write, and what could not be."""

    data: dict[str, Any] = field(default_factory=dict)
    transcript: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    # Suffix beside the audio (".md") -> text.
    files: dict[str, str] = field(default_factory=dict)


async def fetch_exports(
    client: SymblClient,
    conversation_id: str,
    wanted: Iterable[str],
    transcript_options: Mapping[str, bool] | None = None,
) -> Exports:
    exports = Exports()
    fetched: dict[str, Any] = {}
    for name in wanted:
        if name in FILE_EXPORTS:
            options = transcript_options or {}
            await _fetch_file(client, conversation_id, name, options, exports, fetched)
            continue
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


async def _fetch_file(
    client: SymblClient,
    conversation_id: str,
    name: str,
    options: Mapping[str, bool],
    exports: Exports,
    fetched: dict[str, Any],
) -> None:
    suffix, media_type = FILE_EXPORTS[name]
    content_type = _SYMBL_CONTENT_TYPES[name]
    try:
        if content_type not in fetched:  # srt and vtt share one answer
            fetched[content_type] = await client.formatted_transcript(
                conversation_id, content_type, options
            )
        payload = fetched[content_type]
        if name == "markdown":
            text = payload if payload.endswith("\n") or not payload else payload + "\n"
        else:
            cues = parse_srt(payload)
            text = srt.compose(cues) if name == "srt" else render_vtt(cues)
    except SymblError as error:
        exports.errors[name] = error.message
        return
    except ValueError as error:
        exports.errors[name] = f"Symbl's SRT could not be read: {error}"
        return
    exports.files[suffix] = text
    exports.data[name] = {"suffix": suffix, "contentType": media_type, "bytes": len(text.encode())}


def name_export_files(record: dict[str, Any], filed_name: str) -> None:
    """Write the name each file export got beside ``filed_name`` (the audio's) into the record."""
    for entry in (record.get("exports") or {}).values():
        if isinstance(entry, dict) and isinstance(entry.get("suffix"), str):
            entry["file"] = filed_name.rpartition("/")[2] + entry["suffix"]


def parse_srt(text: str) -> list[srt.Subtitle]:
    """Symbl's SRT, as cues. Symbl writes times unpadded (``0:0:4,100``); ``srt`` reads those,
    and ``srt.compose`` writes them back as players expect (``00:00:04,100``), renumbered."""
    try:
        return list(srt.sort_and_reindex(srt.parse(text)))
    except srt.SRTParseError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None


def render_vtt(cues: Iterable[srt.Subtitle]) -> str:
    """WebVTT from SRT cues: the header, ``.`` before the milliseconds, cue text escaped."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        text = "\n".join(line for line in _vtt_text(cue.content).splitlines() if line.strip())
        if not text:
            continue
        blocks.append(f"{_vtt_time(cue.start)} --> {_vtt_time(cue.end)}\n{text}\n")
    return "\n".join(blocks)


def _vtt_text(text: str) -> str:
    # "<" and "&" begin tags and entities in WebVTT; "-->" may not appear in a cue's text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _vtt_time(moment: timedelta) -> str:
    millis = round(moment.total_seconds() * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02}:{minutes:02}:{seconds:02}.{millis:03}"


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
