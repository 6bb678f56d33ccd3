"""Reading the emulator's requests: JSON bodies, headers, streamed audio kept head and tail,
and the checks a careful server makes of them; ``ApiError`` is every refusal."""

from __future__ import annotations

import hashlib
import json
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse

from daemon.files.audio import AudioFormat, AudioProblem, RangeView, inspect_stream
from daemon.params import dotted, validate_params

AUDIO_CONTENT_TYPES = ("audio/wav", "audio/wave", "audio/mpeg", "audio/mp3")


def message(status: int, text: str) -> JSONResponse:
    return JSONResponse({"message": text}, status_code=status)


class ApiError(Exception):
    """An answer other than success: ``status`` and the ``{"message": ...}`` body."""

    def __init__(self, status: int, text: str, body: dict[str, Any] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.body = body or {"message": text}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body, status_code=self.status)


async def json_object(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"null")
    except ValueError:
        raise ApiError(400, "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def request_media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def audio_content_type(request: Request) -> AudioFormat | None:
    """The format the Content-Type names; absent or empty is allowed, as the docs say."""
    media_type = request_media_type(request)
    if not media_type:
        return None
    if media_type not in AUDIO_CONTENT_TYPES:
        raise ApiError(
            400,
            f"Content-Type {media_type!r} is not supported: use one of "
            f"{', '.join(AUDIO_CONTENT_TYPES)}, or leave it out",
        )
    return AudioFormat.WAV if media_type in ("audio/wav", "audio/wave") else AudioFormat.MP3


def content_length(request: Request) -> int:
    text = request.headers.get("content-length")
    if text is None or not text.isdigit():
        raise ApiError(400, "the Content-Length header is mandatory")
    return int(text)


def validated(decoded: dict[str, Any]) -> dict[str, Any]:
    params, problems = validate_params(decoded)
    if problems:
        text = "; ".join(
            f"{dotted(problem.loc) or 'parameters'}: {problem.message}" for problem in problems
        )
        raise ApiError(400, text)
    return params


def whole_numbers(decoded: dict[str, Any]) -> dict[str, Any]:
    # The generated client types the speaker count as a float; 2.0 means 2.
    count = decoded.get("diarizationSpeakerCount")
    if isinstance(count, float) and count.is_integer():
        return {**decoded, "diarizationSpeakerCount": int(count)}
    return decoded


# What the emulator keeps of a body for the inspector: tags and chunks before the audio of up to
# 16 MiB (a large cover picture), and the last MiB (ID3v1, APE and Lyrics3 tags).
BODY_HEAD_BYTES = 16 * 1024 * 1024
BODY_TAIL_BYTES = 1024 * 1024


class KeptBody(RangeView):
    """A seekable, read-only view of the head and tail kept of a streamed body.

    The inspector reads through it as through the file; a read in the part that was not kept
    means the file's headers are larger than the emulator looks at, and is refused as Symbl
    refuses what it cannot read.
    """

    def __init__(self, head: bytearray, tail: bytearray, size: int) -> None:
        super().__init__(size)
        self._head, self._tail = head, tail
        self._tail_start = size - len(tail)

    def _range(self, start: int, end: int) -> bytes:
        data = b""
        if start < len(self._head):
            data = bytes(self._head[start : min(end, len(self._head))])
            start += len(data)
        if start < end:
            if start < self._tail_start:
                raise AudioProblem(
                    "not_audio",
                    f"no audio the API can read in the first {len(self._head)} bytes of the body",
                )
            data += bytes(self._tail[start - self._tail_start : end - self._tail_start])
        return data


async def stream_body(request: Request) -> tuple[str, int, KeptBody]:
    """Hash and count the body as it arrives, keeping its head and tail for the inspector."""
    digest = hashlib.sha256()
    head = bytearray()
    tail = bytearray()
    size = 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
        if len(head) < BODY_HEAD_BYTES:
            head += chunk[: BODY_HEAD_BYTES - len(head)]
        tail += chunk
        if len(tail) > 2 * BODY_TAIL_BYTES:
            del tail[: len(tail) - BODY_TAIL_BYTES]
    del tail[: max(0, len(tail) - BODY_TAIL_BYTES)]
    return digest.hexdigest(), size, KeptBody(head, tail, size)


async def drain(request: Request) -> None:
    try:
        async for _ in request.stream():
            pass
    except RuntimeError:
        return  # already read to the end


def check_audio(
    body: KeptBody, size: int, params: dict[str, Any], declared: AudioFormat | None
) -> tuple[float, int]:
    """Duration and channel count, or a 400 for what the API refuses."""
    try:
        # KeptBody has the seek/read/tell the inspector uses; it is no file of the os.
        info = inspect_stream(cast(BinaryIO, body), size)
    except AudioProblem as problem:
        raise ApiError(400, f"Unsupported or invalid audio: {problem.message}") from None
    if declared is not None and declared is not info.format:
        raise ApiError(
            400, f"Content-Type says {declared.value} but the body is {info.format.value}"
        )
    per_channel = params.get("enableSeparateRecognitionPerChannel", False)
    if info.channels > 1 and not per_channel:
        raise ApiError(
            400,
            f"the audio has {info.channels} channels: send mono audio, or set "
            "enableSeparateRecognitionPerChannel=true",
        )
    return info.duration_seconds or 0.0, info.channels


def checked_url(url: Any) -> str:
    if url is None:
        raise ApiError(400, "url: is required")
    if not isinstance(url, str):
        raise ApiError(400, "url: must be a string")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, "url: must be a publicly accessible http(s) URL")
    return url


def url_label(url: str) -> str:
    name = urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    return name or url


def url_seconds(url: str) -> float:
    """A stable made-up duration: the emulator never fetches the URL."""
    return 30.0 + int(hashlib.sha256(url.encode()).hexdigest()[:6], 16) % 270


def json_seconds(remaining: float) -> float | int:
    rounded = round(remaining, 3)
    return int(rounded) if rounded.is_integer() else rounded
