"""The emulated Async Audio API as a Starlette application (contract: ``shared/symbl-api.md``).

Handlers check in the order a careful server would: token, headers, parameters, conversation,
then the body. Every error answer drains the request body first, so a client that is still
streaming a large upload gets to read the status instead of a broken pipe.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from daemon.emulator.content import ConversationResults
from daemon.emulator.faults import (
    EXCHANGE_KEY,
    FAULT_KEY,
    RAW_SEND_KEY,
    SERVER_ERRORS,
    FaultLayer,
    drop_connection,
    send_server_error,
)
from daemon.emulator.formatted import FormatRequestError, checked_request, formatted
from daemon.emulator.requests import (
    ApiError,
    audio_content_type,
    check_audio,
    checked_url,
    content_length,
    drain,
    json_object,
    json_seconds,
    message,
    request_media_type,
    stream_body,
    url_label,
    url_seconds,
    validated,
    whole_numbers,
)
from daemon.emulator.state import AudioPart, EmulatorState, Job
from daemon.emulator.webhooks import WebhookSender
from daemon.params import decode_query

TOKEN_MESSAGE = "Token validation failed for provided token."
NOT_FOUND_MESSAGE = (
    "The conversation and/or it's metadata you asked could not be found, "
    "please check the input provided"
)
LIMIT_MESSAGE = (
    "This API has a limit of maximum of {limit} number of concurrent jobs per account. "
    "If you are looking to scale, and need more concurrent jobs than this limit, "
    "please contact us at support@symbl.ai"
)
SUMMARY_NOT_REQUESTED_MESSAGE = (
    "No summary was generated for this conversation: submit it with enableSummary=true, "
    "or ask with refresh=true to generate one"
)
AuthKind = Literal["bearer", "x-api-key"]
Handler = Callable[[Request], Awaitable[Response]]


class LostResponse(Response):
    """The job exists, but the client hears a server error or a dropped connection instead."""

    def __init__(self, fault: str) -> None:
        super().__init__()
        self.fault = fault

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[FAULT_KEY] = f"lost-{self.fault}"
        if self.fault == "drop":
            scope[EXCHANGE_KEY].record(None, scope[FAULT_KEY])
            await drop_connection(scope[RAW_SEND_KEY])
        else:
            await send_server_error(send, int(self.fault))


@dataclass(frozen=True)
class Submission:
    """What a submit call brought, once checked: where it goes and what it contributes."""

    kind: Literal["file", "url"]
    auth: AuthKind
    conversation_id: str | None
    params: dict[str, Any]
    decoded: dict[str, Any]
    part: AudioPart
    sha256: str | None = None
    size: int | None = None
    url: str | None = None


class EmulatorApi:
    """The route handlers, bound to one ``EmulatorState``."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    # ------------------------------------------------------------ auth

    async def generate_token(self, request: Request) -> Response:
        grant = await json_object(request)
        if grant.get("type") != "application":
            raise ApiError(400, "type: must be 'application'")
        app_id, app_secret = grant.get("appId"), grant.get("appSecret")
        if not isinstance(app_id, str) or not app_id or not isinstance(app_secret, str):
            raise ApiError(400, "appId and appSecret are required")
        if not self._credentials_match(app_id, app_secret):
            raise ApiError(401, "Unauthorized: invalid appId or appSecret")
        token, remaining = self.state.issue_token(app_id)
        return JSONResponse({"accessToken": token, "expiresIn": json_seconds(remaining)})

    def _credentials_match(self, app_id: str, app_secret: str) -> bool:
        settings = self.state.settings
        if not settings.checks_credentials:
            return True
        same_id = secrets.compare_digest(app_id.encode(), (settings.app_id or "").encode())
        same_secret = secrets.compare_digest(
            app_secret.encode(), (settings.app_secret or "").encode()
        )
        return same_id and same_secret

    def authenticate(self, request: Request) -> AuthKind:
        bearer = request.headers.get("authorization", "")
        scheme, _, token = bearer.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            kind: AuthKind = "bearer"
            value = token.strip()
        else:
            kind, value = "x-api-key", request.headers.get("x-api-key", "").strip()
        if not value or not self.state.token_is_valid(value):
            raise ApiError(401, TOKEN_MESSAGE)
        return kind

    # ------------------------------------------------------------ submissions

    async def submit_file(self, request: Request) -> Response:
        try:
            submission = await self._receive_file(request)
        except ApiError:
            await drain(request)
            raise
        return self._accept(request, submission)

    async def _receive_file(self, request: Request) -> Submission:
        auth = self.authenticate(request)
        content_type = audio_content_type(request)
        decoded = decode_query(request.query_params.multi_items())
        params = validated(decoded)
        conversation_id = self._existing_conversation(request)
        declared = content_length(request)
        sha256, size, body = await stream_body(request)
        if size != declared:
            raise ApiError(400, f"Content-Length says {declared} bytes but the body has {size}")
        seconds, channels = check_audio(body, size, params, content_type)
        label = params.get("name") or f"an audio file with sha256 {sha256[:12]}"
        part = AudioPart(label, seconds, channels, params)
        return Submission("file", auth, conversation_id, params, decoded, part, sha256, size)

    async def submit_url(self, request: Request) -> Response:
        auth = self.authenticate(request)
        if request_media_type(request) != "application/json":
            raise ApiError(400, "Content-Type must be application/json")
        body = await json_object(request)
        url = checked_url(body.pop("url", None))
        decoded = {**decode_query(request.query_params.multi_items()), **body}
        params = validated(whole_numbers(decoded))
        conversation_id = self._existing_conversation(request)
        label = params.get("name") or url_label(url)
        part = AudioPart(label, url_seconds(url), 1, params)
        submission = Submission("url", auth, conversation_id, params, decoded, part, url=url)
        return self._accept(request, submission)

    def _existing_conversation(self, request: Request) -> str | None:
        conversation_id: str | None = request.path_params.get("conversation_id")
        if conversation_id is not None and not self.state.has_conversation(conversation_id):
            raise ApiError(404, NOT_FOUND_MESSAGE)
        return conversation_id

    def _accept(self, request: Request, submission: Submission) -> Response:
        job = self.state.create_job(
            submission.conversation_id, submission.part, submission.params.get("name")
        )
        if job is None:
            limit = self.state.settings.max_jobs
            text = LIMIT_MESSAGE.format(limit=limit)
            raise ApiError(429, text, {"statusCode": 429, "message": text})
        settings = self.state.settings
        lost = self.state.chance(settings.lost_response_rate)
        self._record(request, submission, job, lost)
        if lost:
            return LostResponse(self.state.choose((*SERVER_ERRORS, "drop")))
        return JSONResponse({"conversationId": job.conversation_id, "jobId": job.id}, 201)

    def _record(self, request: Request, submission: Submission, job: Job, lost: bool) -> None:
        self.state.record_submission(
            method=request.method,
            path=request.url.path,
            kind=submission.kind,
            conversation_id=job.conversation_id,
            job_id=job.id,
            sha256=submission.sha256,
            size=submission.size,
            url=submission.url,
            params=submission.decoded,
            content_type=request.headers.get("content-type"),
            auth=submission.auth,
            received_at=time.time(),
            lost_response=lost,
            raw_query=tuple(request.query_params.multi_items()),
        )

    # ------------------------------------------------------------ jobs and results

    async def job(self, request: Request) -> Response:
        self.authenticate(request)
        job_id = request.path_params["job_id"]
        try:
            status = self.state.job_status(job_id)
        except KeyError:
            raise ApiError(404, "The job you asked for could not be found.") from None
        return JSONResponse({"id": job_id, "status": status})

    async def conversation(self, request: Request) -> Response:
        return JSONResponse(self._results(request).conversation_data())

    async def messages(self, request: Request) -> Response:
        verbose = request.query_params.get("verbose", "").lower() == "true"
        return JSONResponse({"messages": self._results(request).messages(verbose)})

    async def topics(self, request: Request) -> Response:
        return JSONResponse({"topics": self._results(request).topics()})

    async def questions(self, request: Request) -> Response:
        return JSONResponse({"questions": self._results(request).questions()})

    async def action_items(self, request: Request) -> Response:
        return JSONResponse({"actionItems": self._results(request).action_items()})

    async def follow_ups(self, request: Request) -> Response:
        return JSONResponse({"followUps": self._results(request).follow_ups()})

    async def entities(self, request: Request) -> Response:
        return JSONResponse({"entities": self._results(request).entities()})

    async def trackers(self, request: Request) -> Response:
        return JSONResponse(self._results(request).trackers())

    async def summary(self, request: Request) -> Response:
        results = self._results(request)
        if results.running:
            raise ApiError(404, "The summary is not ready: the conversation is still processing.")
        # Symbl summarises only what was submitted with enableSummary, or when asked to
        # generate one afterwards with refresh=true.
        refresh = request.query_params.get("refresh", "").lower() == "true"
        if not refresh and not any(job.part.params.get("enableSummary") for job in results.jobs):
            raise ApiError(404, SUMMARY_NOT_REQUESTED_MESSAGE)
        return JSONResponse({"summary": results.summary()})

    async def formatted_transcript(self, request: Request) -> Response:
        results = self._results(request)
        try:
            body = checked_request(await json_object(request))
        except FormatRequestError as exc:
            raise ApiError(400, str(exc)) from None
        return JSONResponse(formatted(results, body))

    def _results(self, request: Request) -> ConversationResults:
        self.authenticate(request)
        snapshot = self.state.conversation_snapshot(request.path_params["conversation_id"])
        if snapshot is None:
            raise ApiError(404, NOT_FOUND_MESSAGE)
        return ConversationResults(*snapshot)

    # ------------------------------------------------------------ inspection

    async def list_submissions(self, request: Request) -> Response:
        with self.state.locked():
            records = [record.as_json() for record in self.state.submissions]
        return JSONResponse(records)

    async def list_requests(self, request: Request) -> Response:
        with self.state.locked():
            records = [record._asdict() for record in self.state.requests]
        return JSONResponse(records)

    async def list_jobs(self, request: Request) -> Response:
        return JSONResponse(self.state.job_times())

    async def get_settings(self, request: Request) -> Response:
        return JSONResponse(self.state.settings.public_view())

    async def change_settings(self, request: Request) -> Response:
        changes = await json_object(request)
        try:
            settings = self.state.update_settings(**changes)
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from None
        return JSONResponse(settings.public_view())

    async def expire_tokens(self, request: Request) -> Response:
        self.state.expire_all_tokens()
        return JSONResponse({"expired": True})


# ---------------------------------------------------------------- the application


def _handled(handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as error:
            return error.response()

    return endpoint


def _routes(api: EmulatorApi) -> list[Route]:
    conversation = "/v1/conversations/{conversation_id}"
    results: list[tuple[str, Handler]] = [
        ("", api.conversation),
        ("/messages", api.messages),
        ("/topics", api.topics),
        ("/questions", api.questions),
        ("/action-items", api.action_items),
        ("/follow-ups", api.follow_ups),
        ("/entities", api.entities),
        ("/trackers", api.trackers),
        ("/summary", api.summary),
    ]
    return [
        Route("/oauth2/token:generate", _handled(api.generate_token), methods=["POST"]),
        Route("/v1/process/audio/url", _handled(api.submit_url), methods=["POST"]),
        Route("/v1/process/audio/url/{conversation_id}", _handled(api.submit_url), methods=["PUT"]),
        Route("/v1/process/audio", _handled(api.submit_file), methods=["POST"]),
        Route("/v1/process/audio/{conversation_id}", _handled(api.submit_file), methods=["PUT"]),
        Route("/v1/job/{job_id}", _handled(api.job), methods=["GET"]),
        Route(conversation + "/transcript", _handled(api.formatted_transcript), methods=["POST"]),
        *(
            Route(conversation + tail, _handled(handler), methods=["GET"])
            for tail, handler in results
        ),
        Route("/_emulator/submissions", api.list_submissions, methods=["GET"]),
        Route("/_emulator/requests", api.list_requests, methods=["GET"]),
        Route("/_emulator/jobs", api.list_jobs, methods=["GET"]),
        Route("/_emulator/settings", api.get_settings, methods=["GET"]),
        Route("/_emulator/settings", _handled(api.change_settings), methods=["POST"]),
        Route("/_emulator/expire-tokens", api.expire_tokens, methods=["POST"]),
    ]


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return message(exc.status_code, exc.detail)


async def _server_error(request: Request, exc: Exception) -> Response:
    return message(500, "Something went wrong! Please contact support@symbl.ai")


def create_app(state: EmulatorState) -> ASGIApp:
    """The emulator as an ASGI app: the API behind the fault layer, webhooks in the background."""
    api = EmulatorApi(state)
    sender = WebhookSender(state)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with sender.running():
            yield

    app = Starlette(
        routes=_routes(api),
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    return FaultLayer(app, state)
