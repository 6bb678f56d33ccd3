"""What goes over the wire to Symbl: calls, upload bodies streamed by position, the answers read.

Every function here is about one request or one response; retries, tokens and turns belong to
``daemon.symbl.client``.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote

import httpx

from daemon.files.audio import inspect_stream
from daemon.logs import masker
from daemon.symbl.errors import (
    Attempt,
    AuthenticationError,
    ClientStats,
    FileChangedError,
    FinalError,
    NotFoundError,
    RateLimitedError,
    Submission,
    SymblError,
    TransientError,
)

CHUNK_SIZE: Final = 1024 * 1024
MESSAGE_LIMIT = 500


@dataclass
class UploadBody:
    """A file streamed from an open descriptor by position, hashed as it goes.

    Every attempt reads the same descriptor from offset 0 (``os.pread``), so a retry sends what
    was checked, never whatever the path names by then. The first attempt's first chunk comes
    with the trip to a worker thread that sniffed the file: most audio drops are small, and
    every trip waits for a turn of a busy loop (two trips were 7 ms of a 20 ms upload in the
    batch benchmark).
    """

    fd: int
    label: str
    size: int
    progress: Callable[[int], None] | None
    stats: ClientStats
    first: tuple[bytes, Any] | None = None
    sent: int = 0
    sha256: str | None = None

    async def stream(self) -> AsyncIterator[bytes]:
        self.sent, self.sha256 = 0, None
        first, self.first = self.first, None
        if first is None:
            first = await asyncio.to_thread(first_chunk, self.fd, self.size)
        chunk, digest = first
        while self.sent < self.size:
            if not chunk:
                raise self._changed(f"ended after {self.sent} bytes")
            self.sent += len(chunk)
            self.stats.bytes_uploaded += len(chunk)
            if self.progress is not None:
                self.progress(self.sent)
            yield chunk
            if self.sent < self.size:
                wanted = min(CHUNK_SIZE, self.size - self.sent)
                chunk = await asyncio.to_thread(pread_hashed, self.fd, wanted, self.sent, digest)
        now = os.fstat(self.fd).st_size
        if now != self.size:
            raise self._changed(f"is now {now} bytes")
        self.sha256 = digest.hexdigest()

    def _changed(self, what: str) -> FileChangedError:
        return FileChangedError(
            f"{self.label} changed during the upload: it had {self.size} bytes and {what}"
        )


@dataclass(frozen=True)
class Opening:
    """An open file's start, read in a worker thread: its Content-Type, size and first chunk."""

    content_type: str
    size: int
    first: tuple[bytes, Any]


def sniff_and_read(fd: int, content_type: str | None) -> Opening:
    """The Content-Type (sniffed unless the caller just did), the size and the first chunk.

    Blocking: call it in a worker thread, best in the same trip that opened ``fd``.
    """
    size = os.fstat(fd).st_size
    if content_type is None:
        with os.fdopen(os.dup(fd), "rb") as stream:
            content_type = inspect_stream(stream, size).format.content_type
    return Opening(content_type, size, first_chunk(fd, size))


def first_chunk(fd: int, size: int) -> tuple[bytes, Any]:
    digest = hashlib.sha256()
    return pread_hashed(fd, min(CHUNK_SIZE, size), 0, digest), digest


def pread_hashed(fd: int, size: int, offset: int, digest: Any) -> bytes:
    chunk = os.pread(fd, size, offset)
    digest.update(chunk)
    return chunk


@dataclass(frozen=True)
class Call:
    """One logical API call; ``_build`` turns it into a fresh request for every attempt."""

    method: str
    path: str
    timeout: httpx.Timeout
    retry_rate_limited: bool
    query: list[tuple[str, str]] | None = None
    json: Any = None
    upload: UploadBody | None = None
    content_type: str | None = None


def server_message(response: httpx.Response) -> tuple[str, Any]:
    """The server's ``message`` (or the start of its text) and the decoded body."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text[:MESSAGE_LIMIT]
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str):
        message = body if isinstance(body, str) else response.reason_phrase
    return masker.scrub(message)[:MESSAGE_LIMIT], masker.scrub(body)


def error_for(call: Call, response: httpx.Response) -> SymblError:
    status = response.status_code
    message, body = server_message(response)
    text = f"{call.method} {call.path}: HTTP {status}: {message}"
    kind: type[SymblError]
    if status == 407:
        # A forwarding proxy's answer, not Symbl's: the file is not at fault.
        text = (
            f"{call.method} {call.path}: the proxy asks for credentials (HTTP 407); "
            "set the user in symbl.proxy and the password in symbl.proxy_password_file"
        )
        return TransientError(text, status=status, body=body)
    if status == 429:
        kind = RateLimitedError
    elif status >= 500:
        kind = TransientError
    elif status == 404:
        kind = NotFoundError
    elif status == 401:
        kind = AuthenticationError
    else:
        kind = FinalError
    return kind(text, status=status, body=body)


def segment(value: str) -> str:
    """One path segment, escaped: an id never adds segments, queries or fragments to a URL."""
    return quote(value, safe="")


def retryable(call: Call, exc: BaseException) -> bool:
    if isinstance(exc, RateLimitedError):
        return call.retry_rate_limited
    return isinstance(exc, TransientError)


def json_body(call: Call, response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise FinalError(
            f"{call.method} {call.path}: the answer is not JSON",
            status=response.status_code,
            body=response.text[:MESSAGE_LIMIT],
        ) from None


def transcript_payload(call: Call, response: httpx.Response) -> str:
    """``{"transcript": {"payload": "..."}}``; Symbl's SRT sample nests it as
    ``{"payload": {"content": "..."}}``, which is read too."""
    body = json_body(call, response)
    transcript = body.get("transcript") if isinstance(body, dict) else None
    payload = transcript.get("payload") if isinstance(transcript, dict) else None
    if isinstance(payload, dict):
        payload = payload.get("content")
    if not isinstance(payload, str):
        raise FinalError(
            f"{call.method} {call.path}: the answer has no transcript payload",
            status=response.status_code,
            body=masker.scrub(body),
        )
    return payload


def token_from(call: Call, response: httpx.Response) -> tuple[str, float]:
    body = json_body(call, response)
    token = body.get("accessToken") if isinstance(body, dict) else None
    lifetime = body.get("expiresIn") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        # The body holds a token-like value at best; never echo it.
        raise TransientError("the token endpoint answered without an accessToken", status=200)
    if not isinstance(lifetime, (int, float)) or isinstance(lifetime, bool) or lifetime <= 0:
        lifetime = 86400.0
    return token, float(lifetime)


def submission(
    call: Call,
    response: httpx.Response,
    attempts: tuple[Attempt, ...],
    *,
    sha256: str | None,
    size: int | None,
) -> Submission:
    body = json_body(call, response)
    conversation_id = body.get("conversationId") if isinstance(body, dict) else None
    job_id = body.get("jobId") if isinstance(body, dict) else None
    if not isinstance(conversation_id, str) or not isinstance(job_id, str):
        raise FinalError(
            f"{call.method} {call.path}: the answer lacks conversationId or jobId",
            status=response.status_code,
            body=body,
            attempts=attempts,
        )
    return Submission(conversation_id, job_id, sha256, size, response.status_code, attempts)
