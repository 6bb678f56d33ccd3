"""The one place that talks HTTP to Symbl: tokens, streamed uploads, job status and results.

Contract: ``shared/symbl-api.md``. Every failure is raised as a type the daemon acts on:

- ``TransientError`` (connection trouble, timeouts, 5xx) is retried here with capped exponential
  backoff and jitter, then raised so that the daemon tries again later; it never fails a file.
- ``RateLimitedError`` (429) is raised at once for submissions, so that the scheduler pauses new
  ones; for reads it is retried like any transient error.
- ``FinalError`` (400, 404, 413, other 4xx) carries the status, the server's message and body.
  ``NotFoundError`` (404) and ``AuthenticationError`` (credentials refused) are kinds of it; the
  latter is a daemon-wide condition, not a per-file one.

The API has no idempotency key: an upload whose response is lost can only be sent again, and the
server may then hold two conversations. The code keeps the window between the server's answer and
the return as short as it can, and every attempt is recorded so the daemon can show what happened.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from daemon.config.model import SymblSettings
from daemon.logs import get_logger, masker
from daemon.params import encode_query
from daemon.symbl.errors import (
    Attempt,
    AuthenticationError,
    ClientStats,
    FileChangedError,
    FinalError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    Submission,
    SymblError,
    TransientError,
)
from daemon.symbl.network import (
    Route,
    describe_transport_error,
    proxy_password_in,
    route_for,
    transport_for,
)
from daemon.symbl.tokens import TokenCache
from daemon.symbl.wire import (
    Call,
    Opening,
    UploadBody,
    error_for,
    json_body,
    retryable,
    segment,
    server_message,
    sniff_and_read,
    submission,
    token_from,
    transcript_payload,
)

__all__ = [
    "CONVERSATION_PARTS",
    "Attempt",
    "AuthenticationError",
    "ClientStats",
    "FileChangedError",
    "FinalError",
    "NotFoundError",
    "Opening",
    "RateLimitedError",
    "RetryPolicy",
    "Submission",
    "SymblClient",
    "SymblError",
    "TransientError",
    "sniff_and_read",
]

SMALL_CALL_TIMEOUT_SECONDS: Final = 30.0
# An upload may take this long plus one second per MiB for each read or write to complete.
UPLOAD_BASE_TIMEOUT_SECONDS: Final = 60.0
UPLOAD_MIN_BYTES_PER_SECOND: Final = 1024 * 1024
CONVERSATION_PARTS: Final = (
    "messages",
    "topics",
    "questions",
    "action-items",
    "follow-ups",
    "entities",
    "trackers",
    "summary",
)
# Formatting flags that Symbl takes inside the transcript request's ``phrases`` object.
PHRASE_FLAGS: Final = ("highlightOnlyInsightKeyPhrases", "highlightAllKeyPhrases")

_log = get_logger("symbl_inbox.client")


# ---------------------------------------------------------------- tokens


# ---------------------------------------------------------------- requests


def _connections(settings: SymblSettings) -> int:
    """Uploads plus a few for status checks and exports, all kept alive for bursts to reuse.

    Few on purpose: httpcore's pool does work quadratic in its connections whenever it hands
    one out. Status checks take a millisecond or two, so four serve hundreds a second.
    """
    return settings.max_concurrent_uploads + 4


class SymblClient:
    """An asynchronous client of the Symbl Async Audio API; use it as an async context manager."""

    def __init__(
        self,
        settings: SymblSettings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = settings
        # ``symbl.proxy``, else HTTPS_PROXY/NO_PROXY and company; decided once, for base_url.
        self.route: Route = route_for(settings, os.environ if environ is None else environ)
        self._retry = retry or RetryPolicy()
        self._tokens = TokenCache(settings)
        # Requests wait their turn here rather than in httpcore's pool, whose queue costs
        # (queued requests x connections) on every hand-out: in a burst of 50 status checks
        # that was a tenth of the daemon's event loop (cProfile, the batch benchmark).
        connections = _connections(settings)
        self._turns = asyncio.Semaphore(connections)
        self.stats = ClientStats()
        masker.register([settings.app_secret])
        if settings.proxy_password:
            masker.register([settings.proxy_password])
        from_environment = proxy_password_in(self.route.proxy) if self.route.proxy else None
        if from_environment:
            masker.register([from_environment])
        _log.info("symbl_route", base_url=settings.base_url, route=self.route.describe())
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._transport = transport or transport_for(settings, limits, self.route)
        self._http = httpx.AsyncClient(
            base_url=settings.base_url,
            transport=self._transport,
            timeout=self._timeout(SMALL_CALL_TIMEOUT_SECONDS),
            follow_redirects=False,
        )
        # API calls go to the transport itself (see ``_send``): the client's own parts are only
        # its base URL and default headers (User-Agent, Accept-Encoding...), taken once here.
        self._base_url = settings.base_url.rstrip("/")
        self._default_headers = [
            (name, value) for name, value in self._http.headers.items() if name != "host"
        ]

    @property
    def host(self) -> str:
        """The API's host name, for messages."""
        return self._http.base_url.host

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def prepare(self) -> None:
        """Load now what the first request would load: httpcore's pool locks are anyio's, and
        anyio imports its asyncio backend on first use, 25 ms in which the event loop stands
        still. Paid at start, that is not a stall for the first files dropped after ready."""
        import anyio.lowlevel  # here: the operator's commands that make no request skip it

        await anyio.lowlevel.checkpoint()

    # ------------------------------------------------------------ public calls

    async def submit_file(
        self,
        path: Path,
        params: Mapping[str, Any],
        *,
        conversation_id: str | None = None,
        progress: Callable[[int], None] | None = None,
        content_type: str | None = None,
    ) -> Submission:
        """Upload ``path`` as a new conversation, or append it to ``conversation_id``.

        ``content_type`` is the sniffed type when the caller has just read the header; without
        it the file is sniffed here. Raises ``AudioProblem`` if the file is not WAV or MP3,
        ``OSError`` if it cannot be read, ``FileChangedError`` if its size changes during an
        upload, or a ``SymblError``.
        """
        fd = await asyncio.to_thread(os.open, path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            return await self.submit_descriptor(
                fd,
                params,
                conversation_id=conversation_id,
                progress=progress,
                content_type=content_type,
                label=str(path),
            )
        finally:
            os.close(fd)

    async def submit_descriptor(
        self,
        fd: int,
        params: Mapping[str, Any],
        *,
        conversation_id: str | None = None,
        progress: Callable[[int], None] | None = None,
        content_type: str | None = None,
        label: str = "the file",
        opening: Opening | None = None,
    ) -> Submission:
        """``submit_file`` for a file the caller opened (and checked); the caller closes ``fd``.

        The content is read by position from ``fd`` on every attempt. ``opening`` is
        ``sniff_and_read(fd, content_type)``, when the caller read it in the same trip to a
        worker thread that opened the file: every trip waits for a turn of a busy loop.
        """
        if opening is None:
            opening = await asyncio.to_thread(sniff_and_read, fd, content_type)
        body = UploadBody(fd, label, opening.size, progress, self.stats, opening.first)
        return await self._submit_body(body, opening.content_type, params, conversation_id)

    async def _submit_body(
        self,
        body: UploadBody,
        content_type: str,
        params: Mapping[str, Any],
        conversation_id: str | None,
    ) -> Submission:
        api_path = "/v1/process/audio"
        if conversation_id is not None:
            api_path += f"/{segment(conversation_id)}"
        call = Call(
            method="PUT" if conversation_id else "POST",
            path=api_path,
            timeout=self._upload_timeout(body.size),
            retry_rate_limited=False,
            query=encode_query(params),
            upload=body,
            content_type=content_type,
        )
        response, attempts = await self._call(call)
        return submission(call, response, attempts, sha256=body.sha256, size=body.size)

    async def submit_url(
        self, url: str, params: Mapping[str, Any], *, conversation_id: str | None = None
    ) -> Submission:
        """Ask Symbl to fetch ``url`` as a new conversation, or to append it to one."""
        api_path = "/v1/process/audio/url"
        if conversation_id is not None:
            api_path += f"/{segment(conversation_id)}"
        call = Call(
            method="PUT" if conversation_id else "POST",
            path=api_path,
            timeout=self._timeout(SMALL_CALL_TIMEOUT_SECONDS),
            retry_rate_limited=False,
            json={**params, "url": url},
        )
        response, attempts = await self._call(call)
        return submission(call, response, attempts, sha256=None, size=None)

    async def authenticate(self) -> None:
        """Get a token now, so that the first upload does not wait for one (nor for the
        connection and the lazy imports of the first request).

        Raises ``AuthenticationError`` for refused credentials and ``TransientError`` when the
        API cannot be reached (the proxy, the certificate, the network), in one line.
        """
        try:
            await self._tokens.get(self._generate_token)
        except httpx.TransportError as exc:
            self.stats.transport_errors += 1
            described = masker.scrub(describe_transport_error(exc, self.host, self.route))
            raise TransientError(f"POST /oauth2/token:generate: {described}") from exc

    async def job_status(self, job_id: str) -> str:
        """The job's status: ``scheduled``, ``in_progress``, ``completed`` or ``failed``."""
        call = self._read_call(f"/v1/job/{segment(job_id)}")
        response, _ = await self._call(call)
        body = json_body(call, response)
        status = body.get("status") if isinstance(body, dict) else None
        if not isinstance(status, str):
            raise FinalError(
                f"GET {call.path}: the answer has no job status", status=200, body=body
            )
        return status

    async def conversation(
        self, conversation_id: str, part: str | None = None, *, verbose: bool = False
    ) -> Any:
        """The conversation itself (``part=None``) or one of ``CONVERSATION_PARTS``, decoded."""
        api_path = f"/v1/conversations/{segment(conversation_id)}"
        if part is not None:
            if part not in CONVERSATION_PARTS:
                raise ValueError(f"unknown conversation part {part!r}")
            api_path += f"/{part}"
        call = self._read_call(api_path, query=[("verbose", "true")] if verbose else None)
        response, _ = await self._call(call)
        return json_body(call, response)

    async def formatted_transcript(
        self, conversation_id: str, content_type: str, options: Mapping[str, bool]
    ) -> str:
        """Symbl's own rendering of the transcript (``text/markdown`` or ``text/srt``).

        ``options`` are Symbl's formatting flags; the two highlighting ones travel inside
        ``phrases``, and SRT takes only ``showSpeakerSeparation``, as Symbl documents.
        """
        body: dict[str, Any] = {"contentType": content_type}
        for flag in ("createParagraphs", "showSpeakerSeparation"):
            if flag in options and (flag == "showSpeakerSeparation" or content_type != "text/srt"):
                body[flag] = options[flag]
        phrases = {flag: options[flag] for flag in PHRASE_FLAGS if flag in options}
        if phrases and content_type != "text/srt":
            body["phrases"] = phrases
        call = Call(
            method="POST",
            path=f"/v1/conversations/{conversation_id}/transcript",
            timeout=self._timeout(SMALL_CALL_TIMEOUT_SECONDS),
            retry_rate_limited=True,
            json=body,
        )
        response, _ = await self._call(call)
        return transcript_payload(call, response)

    # ------------------------------------------------------------ retries

    async def _call(self, call: Call) -> tuple[httpx.Response, tuple[Attempt, ...]]:
        attempts: list[Attempt] = []
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self._retry.attempts)),
            wait=self._retry.wait,
            retry=retry_if_exception(lambda exc: retryable(call, exc)),
            before_sleep=lambda state: self._note_retry(call, state),
            reraise=True,
        )
        try:
            async for retry_attempt in retrying:
                with retry_attempt:
                    response = await self._exchange(call, attempts)
        except SymblError as exc:
            exc.attempts = tuple(attempts)
            raise
        return response, tuple(attempts)

    def _note_retry(self, call: Call, state: RetryCallState) -> None:
        self.stats.retries += 1
        error = state.outcome.exception() if state.outcome else None
        _log.warning(
            "symbl_request_retry",
            method=call.method,
            path=call.path,
            attempt=state.attempt_number,
            wait_seconds=round(state.next_action.sleep, 3) if state.next_action else None,
            error=str(error) if error else None,
        )

    async def _exchange(self, call: Call, attempts: list[Attempt]) -> httpx.Response:
        """One attempt: send with the current token, and once more with a new one on a 401."""
        token, response = await self._send_authorized(call, attempts)
        if response.status_code == 401:
            self._tokens.invalidate(token)
            _, response = await self._send_authorized(call, attempts)
            if response.status_code == 401:
                self.stats.auth_failures += 1
        if response.is_success:
            return response
        raise error_for(call, response)

    async def _send_authorized(
        self, call: Call, attempts: list[Attempt]
    ) -> tuple[str, httpx.Response]:
        started = time.time()
        try:
            token = await self._tokens.get(self._generate_token)
            response = await self._send(call, token)
        except SymblError as exc:
            attempts.append(Attempt(started, time.time(), exc.status, exc.message))
            raise
        except httpx.TransportError as exc:
            self.stats.transport_errors += 1
            described = masker.scrub(describe_transport_error(exc, self.host, self.route))
            attempts.append(Attempt(started, time.time(), None, described))
            raise TransientError(f"{call.method} {call.path}: {described}") from exc
        attempts.append(Attempt(started, time.time(), response.status_code, None))
        return token, response

    async def _send(self, call: Call, token: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        content: AsyncIterator[bytes] | None = None
        if call.upload is not None:
            content = call.upload.stream()
            headers["Content-Length"] = str(call.upload.size)
        if call.content_type is not None:
            headers["Content-Type"] = call.content_type
        # Built and sent without httpx.AsyncClient's layers (URL merging, cookies, auth and
        # redirect flows, event hooks): none applies to these calls, and they were a third of
        # each upload's and status check's time on the event loop (py-spy, batch benchmark).
        request = httpx.Request(
            call.method,
            self._base_url + call.path,
            params=tuple(call.query) if call.query else None,
            json=call.json,
            content=content,
            headers=[*self._default_headers, *headers.items()],
            extensions={"timeout": call.timeout.as_dict()},
        )
        self.stats.requests += 1
        async with self._turns:
            response = await self._round_trip(request)
        self.stats.responses[response.status_code] += 1
        return response

    async def _round_trip(self, request: httpx.Request) -> httpx.Response:
        """What ``AsyncClient.send`` does for one request: the response read whole, closed."""
        try:
            response = await self._transport.handle_async_request(request)
        except httpx.RequestError as exc:
            exc.request = request
            raise
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    # ------------------------------------------------------------ tokens

    async def _generate_token(self) -> tuple[str, float]:
        payload = {
            "type": "application",
            "appId": self._settings.app_id,
            "appSecret": self._settings.app_secret,
        }
        self.stats.requests += 1
        response = await self._http.post("/oauth2/token:generate", json=payload)
        self.stats.responses[response.status_code] += 1
        if response.status_code in (400, 401, 403):
            self.stats.auth_failures += 1
            _log.error("symbl_auth_failed", status=response.status_code)
            raise AuthenticationError(
                f"Symbl refused the credentials of app {self._settings.app_id!r} "
                f"(HTTP {response.status_code}); check symbl.app_id and symbl.app_secret",
                status=response.status_code,
                body=server_message(response)[1],
            )
        call = Call("POST", "/oauth2/token:generate", self._http.timeout, True)
        if not response.is_success:
            raise error_for(call, response)
        token, lifetime = token_from(call, response)
        masker.register([token])
        self.stats.token_refreshes += 1
        _log.info("symbl_token_refreshed", expires_in_seconds=lifetime)
        return token, lifetime

    # ------------------------------------------------------------ helpers

    def _timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=self._settings.connect_timeout_seconds)

    def _upload_timeout(self, size: int) -> httpx.Timeout:
        return self._timeout(UPLOAD_BASE_TIMEOUT_SECONDS + size / UPLOAD_MIN_BYTES_PER_SECOND)

    def _read_call(self, api_path: str, query: list[tuple[str, str]] | None = None) -> Call:
        return Call(
            method="GET",
            path=api_path,
            timeout=self._timeout(SMALL_CALL_TIMEOUT_SECONDS),
            retry_rate_limited=True,
            query=query,
        )
