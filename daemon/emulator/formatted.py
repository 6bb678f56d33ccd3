"""``POST /v1/conversations/{conversationId}/transcript``: Symbl's formatted transcripts.

Request body (Symbl's documentation): ``contentType`` (``text/markdown`` or ``text/srt``),
``createParagraphs``, ``showSpeakerSeparation`` and ``phrases`` (``highlightOnlyInsightKeyPhrases``,
``highlightAllKeyPhrases``), all optional but the first. Answer:
``{"transcript": {"payload": "...", "contentType": "..."}}``.

Markdown is Symbl's style: sentences joined by ``<br/><br/>`` when paragraphs are asked for,
key phrases in ``<mark>``, ``Speaker: `` before each sentence with speaker separation. SRT has
one numbered cue per message with ``HH:MM:SS,mmm`` times from its offset and duration.
"""

from __future__ import annotations

from typing import Any

from daemon.emulator.content import ConversationResults

CONTENT_TYPES = ("text/markdown", "text/srt")
_FLAGS = ("createParagraphs", "showSpeakerSeparation")
_PHRASE_FLAGS = ("highlightOnlyInsightKeyPhrases", "highlightAllKeyPhrases")


class FormatRequestError(ValueError):
    """The body asks for something Symbl would refuse (HTTP 400)."""


def checked_request(body: dict[str, Any]) -> dict[str, Any]:
    """The body with its flags checked; unknown keys are refused so our own mistakes show."""
    content_type = body.get("contentType")
    if content_type not in CONTENT_TYPES:
        raise FormatRequestError(f"contentType: must be one of {', '.join(CONTENT_TYPES)}")
    unknown = sorted(set(body) - {"contentType", "phrases", *_FLAGS})
    if unknown:
        raise FormatRequestError(f"unknown fields: {', '.join(unknown)}")
    for flag in _FLAGS:
        if flag in body and not isinstance(body[flag], bool):
            raise FormatRequestError(f"{flag}: must be a boolean")
    phrases = body.get("phrases", {})
    if not isinstance(phrases, dict):
        raise FormatRequestError("phrases: must be an object")
    unknown = sorted(set(phrases) - set(_PHRASE_FLAGS))
    if unknown:
        raise FormatRequestError(f"phrases: unknown fields: {', '.join(unknown)}")
    for flag in _PHRASE_FLAGS:
        if flag in phrases and not isinstance(phrases[flag], bool):
            raise FormatRequestError(f"phrases.{flag}: must be a boolean")
    return body


def formatted(results: ConversationResults, request: dict[str, Any]) -> dict[str, Any]:
    content_type = request["contentType"]
    phrases = request.get("phrases", {})
    speakers = bool(request.get("showSpeakerSeparation", False))
    if content_type == "text/srt":
        payload = _srt(results, speakers)
    else:
        highlight = any(phrases.get(flag, False) for flag in _PHRASE_FLAGS)
        paragraphs = bool(request.get("createParagraphs", False))
        payload = _markdown(results, speakers, highlight, paragraphs)
    return {"transcript": {"payload": payload, "contentType": content_type}}


def _lines(results: ConversationResults, speakers: bool) -> list[tuple[dict[str, Any], str]]:
    lines = []
    for message in results.messages(verbose=False):
        text = message["text"]
        if speakers:
            text = f"{message['from']['name']}: {text}"
        lines.append((message, text))
    return lines


def _markdown(
    results: ConversationResults, speakers: bool, highlight: bool, paragraphs: bool
) -> str:
    sentences = []
    # The source's label is each part's topic: an insight's key phrase.
    labels = [job.part.label for job in results.completed]
    for (_, text), label in zip(_lines(results, speakers), labels, strict=True):
        if highlight and label in text:
            text = text.replace(label, f"<mark>{label}</mark>", 1)
        sentences.append(text)
    return ("<br/><br/>" if paragraphs else " ").join(sentences)


def _srt(results: ConversationResults, speakers: bool) -> str:
    cues = []
    for number, (message, text) in enumerate(_lines(results, speakers), start=1):
        start = float(message["timeOffset"])
        end = start + float(message["duration"])
        cues.append(f"{number}\n{_srt_time(start)} --> {_srt_time(end)}\n{text}\n")
    return "\n".join(cues)


def _srt_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, millis = divmod(rest, 1000)
    return f"{hours:02}:{minutes:02}:{whole:02},{millis:03}"
