"""The daemon's HTTP endpoint: ``/`` (the status page), ``/metrics``, ``/healthz`` and
``/webhook/<secret>``.

Uvicorn serves it inside the daemon's own event loop, so the handlers read the journal and the
daemon's state on the thread that owns them (every handler is ``async`` for that reason:
Starlette runs plain functions in a thread pool). The daemon owns SIGTERM, SIGINT and SIGHUP, so
Uvicorn installs no signal handlers; its access log is off because webhook paths carry the
secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from daemon.commands.status import gather_status
from daemon.config.model import Config, HttpSettings
from daemon.files.records import iso
from daemon.http.guard import MAX_HEAD_BYTES, ConnectionGuard, connection_limit, guarded_protocol
from daemon.http.metrics import Metrics
from daemon.http.statuspage import render_page
from daemon.live import stall_json
from daemon.logs import get_logger, masker

if TYPE_CHECKING:
    from daemon.http.view import Observed, Served, WebhookSink

SECRET_FILE = "webhook-secret"
# A status update is a few dozen bytes; anything near this is not one.
MAX_WEBHOOK_BYTES = 64 * 1024
_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 5.0

log = get_logger("symbl_inbox.http")


# ==================================================================== the webhook secret


def resolve_webhook_secret(config: Config) -> str:
    """The configured secret, else one generated once and kept in the state directory.

    Keeping it means the webhook URLs of jobs submitted before a restart still reach us.
    """
    configured = config.http.webhook_secret if config.http is not None else None
    secret = configured or _stored_secret(config.state_dir / SECRET_FILE)
    masker.register([secret])
    return secret


def _stored_secret(path: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        return _read_secret(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    try:
        # O_EXCL: if another process wrote one first, theirs wins and we read it back.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return secret


def _read_secret(path: Path) -> str:
    secret = path.read_text().strip()
    if not secret:
        raise ValueError(f"{path} is empty; delete it and a new webhook secret is generated")
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # someone loosened it; a secret is for our user only
    return secret


# ==================================================================== the server


class Endpoint:
    """A running endpoint: ``port`` is the bound port; ``await stop()`` ends it."""

    def __init__(self, server: uvicorn.Server, task: asyncio.Task[None], sock: socket.socket):
        self._server = server
        self._task = task
        self._socket = sock
        self.port: int = sock.getsockname()[1]

    async def stop(self) -> None:
        self._server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self._task), _STOP_TIMEOUT)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        finally:
            self._socket.close()
        log.info("http_stopped")


class _QuietServer(uvicorn.Server):
    """Uvicorn without its signal handlers: SIGTERM and SIGINT belong to the daemon."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def start_endpoint(daemon: Served, settings: HttpSettings) -> Endpoint:
    """Serve in the running loop; returns once the socket listens and Uvicorn has started."""
    secret = settings.webhook_secret or resolve_webhook_secret(daemon.config)
    masker.register([secret])
    host, port = parse_listen(settings.listen)
    sock = _listening_socket(host, port)
    # Limits for an address anyone may reach: see daemon.http.guard.
    guard = ConnectionGuard(connection_limit())
    config = uvicorn.Config(
        create_app(daemon, secret),
        lifespan="off",
        log_level="warning",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=1,
        http=guarded_protocol(guard),
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_keep_alive=5,
    )
    server = _QuietServer(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        await _wait_started(server, task)
    except BaseException:
        sock.close()
        raise
    endpoint = Endpoint(server, task, sock)
    log.info("http_listening", host=host, port=endpoint.port)
    return endpoint


def parse_listen(listen: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) into a host and a port; port 0 picks a free one."""
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # An explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)  # a burst of connections waits in the kernel, not refused
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def _wait_started(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _START_TIMEOUT
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
            raise RuntimeError("the HTTP endpoint stopped while starting")
        if loop.time() > deadline:
            server.should_exit = True
            raise RuntimeError("the HTTP endpoint did not start")
        await asyncio.sleep(0.01)


# ==================================================================== the routes


def create_app(daemon: Served, secret: str) -> ASGIApp:
    handlers = _Handlers(daemon, daemon, _metrics_of(daemon))
    routes = Starlette(
        routes=[
            Route("/", handlers.page, methods=["GET"]),
            Route("/metrics", handlers.metrics, methods=["GET"]),
            Route("/healthz", handlers.healthz, methods=["GET"]),
            Route("/webhook/{secret}", handlers.wrong_secret, methods=["POST"]),
        ]
    )
    return _WebhookFastPath(routes, handlers, secret)


class _WebhookFastPath:
    """Status updates with the right secret, answered without Starlette's routing and middleware.

    Symbl posts every status change of every job, three a file, on the loop that also uploads
    and files: Starlette's layers were a tenth of that loop in the batch benchmark. Everything
    else goes to Starlette, where a wrong secret answers like any unknown path.
    """

    def __init__(self, app: ASGIApp, handlers: _Handlers, secret: str) -> None:
        self._app = app
        self._handlers = handlers
        self._path = f"/webhook/{secret}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and hmac.compare_digest(scope["path"].encode(), self._path)
        ):
            status, answer = self._handlers.take_update(await _receive_limited(receive))
            await _send_json(send, status, answer)
        else:
            await self._app(scope, receive, send)


async def _receive_limited(receive: Receive) -> bytes | None:
    """The request body, or None once it grows past MAX_WEBHOOK_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None  # the client went away
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_WEBHOOK_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, answer: dict[str, Any]) -> None:
    body = json.dumps(answer, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _metrics_of(daemon: Observed) -> Metrics:
    """The daemon's own ``metrics`` (it counts filings and jobs), bound to its live state."""
    metrics = daemon.metrics
    metrics.bind(daemon)
    return metrics


class _Handlers:
    def __init__(self, daemon: Observed, webhooks: WebhookSink, metrics: Metrics) -> None:
        self._daemon = daemon
        self._webhooks = webhooks
        self._metrics = metrics

    async def metrics(self, request: Request) -> Response:
        body, content_type = await self._metrics.render()
        return Response(body, headers={"Content-Type": content_type})

    async def page(self, request: Request) -> Response:
        return HTMLResponse(
            await status_page(self._daemon),
            headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
        )

    async def healthz(self, request: Request) -> Response:
        healthy, report = health_report(self._daemon)
        return JSONResponse(report, status_code=200 if healthy else 503)

    async def wrong_secret(self, request: Request) -> Response:
        # The right secret never gets here (_WebhookFastPath answers it). The same answer as
        # any unknown path, so nothing tells a prober it came close.
        return PlainTextResponse("Not Found", status_code=404)

    def take_update(self, body: bytes | None) -> tuple[int, dict[str, Any]]:
        """Act on one status update; the HTTP status and JSON body to answer with."""
        update = parse_webhook(body)
        if update is None:
            self._metrics.webhook_received("malformed")
            return 400, {"error": "expected JSON with jobId (or id) and status"}
        job_id, status = update
        # Only a final status is worth a look; scheduled and in_progress would cost a GET each.
        known = self._webhooks.job_ended(job_id) if status in FINAL_JOB_STATUSES else None
        self._metrics.webhook_received(
            "progress" if known is None else "known" if known else "unknown"
        )
        # Symbl posts every status change: at info level that would be three lines a file.
        log.debug("webhook_received", job_id=job_id, status=status, known=known)
        # 200 even for a job we do not follow: anything else makes Symbl send it again.
        return 200, {"ok": True}


FINAL_JOB_STATUSES = ("completed", "failed")


def parse_webhook(body: bytes | None) -> tuple[str, str] | None:
    """(job id, status) from Symbl's body: ``jobId`` as documented, or ``id`` as in its samples."""
    if body is None:
        return None
    try:
        data: Any = json.loads(body)
    except ValueError:  # includes UnicodeDecodeError
        return None
    if not isinstance(data, dict):
        return None
    job_id = data.get("jobId", data.get("id"))
    status = data.get("status")
    if not (isinstance(job_id, str) and job_id and isinstance(status, str) and status):
        return None
    return job_id, status


def health_report(daemon: Observed) -> tuple[bool, dict[str, Any]]:
    """Healthy unless starting, stopping, an inbox is unavailable or a stall stops all work.

    A 429 pause (``rate_limited``) is listed under ``stalls`` but is not unhealthy: an account
    at its limit is working as hard as it may.
    """
    live = daemon.live_state()
    inboxes = dict(live.inboxes)
    reasons = [f"inbox {key} is unavailable" for key, ok in inboxes.items() if not ok]
    reasons += [f"{stall.kind.value}: {stall.message}" for stall in live.stops_all_work()]
    if not live.started:
        reasons.append("starting: the startup scan is not done")
    if live.stopping:
        reasons.append("stopping")
    report: dict[str, Any] = {
        "status": "unhealthy" if reasons else "ok",
        "inboxes": inboxes,
        "stalls": [stall_json(stall) for stall in live.stalls],
    }
    if reasons:
        report["reasons"] = reasons
    return not reasons, report


async def status_page(daemon: Observed) -> str:
    """The page at ``/``: the report ``status`` prints, with the live part from the daemon."""
    live = daemon.live_state()
    now = time.time()
    try:
        report = await gather_status(daemon.config, daemon.journal, now, live.as_json(), live.pid)
    except sqlite3.Error as exc:  # a request racing the shutdown
        log.debug("status_page_journal_unreadable", error=str(exc))
        report = await gather_status(daemon.config, None, now, live.as_json(), live.pid)
    return render_page(report, socket.gethostname(), iso(now) or "")
