"""Deliberate misbehaviour: server errors, dropped connections, lost responses and latency.

``FaultLayer`` is the outermost ASGI layer, so it sees the server's own ``send``: dropping a
connection means aborting the socket under it, which a client experiences exactly like a network
failure (no status line at all). It also records every API request with its outcome.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from daemon.emulator.state import EmulatorState, RequestRecord

SERVER_ERRORS: tuple[str, ...] = ("500", "502", "503")
FAULT_KINDS: tuple[str, ...] = (*SERVER_ERRORS, "drop")
INSPECTION_PREFIX = "/_emulator"
RAW_SEND_KEY = "emulator.raw_send"
FAULT_KEY = "emulator.fault"
EXCHANGE_KEY = "emulator.exchange"
_ERROR_MESSAGES = {
    500: "Something went wrong! Please contact support@symbl.ai",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


async def drop_connection(raw_send: Send) -> None:
    """Abort the TCP connection under ``raw_send`` so that the client gets no answer at all."""
    cycle = getattr(raw_send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    if transport is not None:
        transport.abort()
        # Let the server notice the loss before the app returns, so it sends nothing more.
        for _ in range(3):
            await asyncio.sleep(0)
        return
    # Another server: promise a body and never send it; the client sees a broken response.
    await raw_send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"64")]}
    )
    raise ConnectionAbortedError("emulator dropped the connection")


async def send_server_error(send: Send, status: int) -> None:
    body = json.dumps({"message": _ERROR_MESSAGES[status]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def drain_body(receive: Receive) -> None:
    """Read and discard a request body, so that the client can finish sending and read the reply."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class Exchange:
    """One request's entry in the request log, written once, before the client hears anything.

    Writing it before the answer leaves means a client that has its answer can rely on
    ``state.requests`` already holding it.
    """

    def __init__(self, state: EmulatorState, scope: Scope) -> None:
        self._state = state
        self._scope = scope
        self._written = False

    def record(self, status: int | None, fault: str | None) -> None:
        if self._written:
            return
        self._written = True
        scope = self._scope
        via = next((v for k, v in scope.get("headers", ()) if k == b"via"), None)
        self._state.record_request(
            RequestRecord(
                scope["method"],
                scope["path"],
                status,
                fault,
                via.decode("latin-1") if via is not None else None,
            )
        )


class FaultLayer:
    """Injects faults into a share of API requests, adds latency, and records each request."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(INSPECTION_PREFIX):
            await self.app(scope, receive, send)
            return
        exchange = scope[EXCHANGE_KEY] = Exchange(self.state, scope)
        scope[RAW_SEND_KEY] = send
        fault = self._pick_fault()
        if fault == "drop":
            exchange.record(None, fault)
            await drop_connection(send)
            return
        if fault is not None:
            await drain_body(receive)
            await self._sleep_latency()
            exchange.record(int(fault), fault)
            await send_server_error(send, int(fault))
            return
        await self._pass_through(scope, receive, send, exchange)

    def _pick_fault(self) -> str | None:
        if not self.state.chance(self.state.settings.fault_rate):
            return None
        return self.state.choose(FAULT_KINDS)

    async def _pass_through(
        self, scope: Scope, receive: Receive, send: Send, exchange: Exchange
    ) -> None:
        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._sleep_latency()
                exchange.record(message["status"], scope.get(FAULT_KEY))
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            exchange.record(None, scope.get(FAULT_KEY))

    async def _sleep_latency(self) -> None:
        latency = self.state.settings.latency_seconds
        if latency > 0:
            await asyncio.sleep(latency)
