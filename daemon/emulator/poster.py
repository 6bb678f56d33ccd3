"""Small JSON POSTs over kept-alive HTTP/1.1 connections: h11 on asyncio streams.

The emulator sends three status updates for every job, and it shares the machine with the
daemon it serves. Through httpx each update cost about 1 ms of CPU, more than half of the
emulator's event loop in the batch benchmark; h11 directly costs a fifth of that. The protocol
work stays h11's; this module only keeps connections and moves bytes.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import h11

_READ_SIZE = 65536


class PostFailed(Exception):
    """No answer: the connection failed, timed out, or the answer broke HTTP/1.1."""


@dataclass(frozen=True)
class _Origin:
    scheme: str
    host: str
    port: int

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.http = h11.Connection(h11.CLIENT)

    def usable(self) -> bool:
        """Still open on both sides (the loop has already read any close from the server)."""
        return not self.reader.at_eof() and not self.writer.transport.is_closing()

    async def exchange(self, request: list[bytes]) -> int:
        self.writer.write(b"".join(request))
        await self.writer.drain()
        status = 0
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                self.http.receive_data(await self.reader.read(_READ_SIZE))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.EndOfMessage):
                return status
            elif isinstance(event, h11.ConnectionClosed):
                raise PostFailed("the connection closed before the answer ended")

    def reusable(self) -> bool:
        if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
            self.http.start_next_cycle()
            return True
        return False

    def close(self) -> None:
        self.writer.close()


class JsonPoster:
    """POSTs JSON to any URL; at most ``per_origin`` connections to each origin at a time."""

    def __init__(self, *, timeout: float, per_origin: int = 8) -> None:
        self._timeout = timeout
        self._idle: dict[_Origin, list[_Connection]] = defaultdict(list)
        self._slots: dict[_Origin, asyncio.Semaphore] = {}
        self._per_origin = per_origin
        self._tls: ssl.SSLContext | None = None

    async def post(self, url: str, payload: Any) -> int:
        """The answer's status code; ``PostFailed`` when there is no answer."""
        origin, target = _split(url)
        body = json.dumps(payload).encode()
        slots = self._slots.setdefault(origin, asyncio.Semaphore(self._per_origin))
        async with slots:
            try:
                async with asyncio.timeout(self._timeout):
                    return await self._post_on_a_connection(origin, target, body)
            except (OSError, TimeoutError, EOFError, h11.ProtocolError) as exc:
                raise PostFailed(str(exc) or type(exc).__name__) from exc

    async def _post_on_a_connection(self, origin: _Origin, target: str, body: bytes) -> int:
        connection = self._take_idle(origin)
        if connection is not None:
            try:
                return await self._post_with(connection, origin, target, body)
            except (OSError, EOFError, h11.ProtocolError, PostFailed):
                pass  # the server dropped a kept-alive connection as we used it: a fresh one
        return await self._post_with(await self._connect(origin), origin, target, body)

    async def _post_with(
        self, connection: _Connection, origin: _Origin, target: str, body: bytes
    ) -> int:
        request = [
            connection.http.send(_request_head(origin, target, len(body))) or b"",
            connection.http.send(h11.Data(data=body)) or b"",
            connection.http.send(h11.EndOfMessage()) or b"",
        ]
        try:
            status = await connection.exchange(request)
        except BaseException:
            connection.close()
            raise
        if connection.reusable():
            self._idle[origin].append(connection)
        else:
            connection.close()
        return status

    def _take_idle(self, origin: _Origin) -> _Connection | None:
        idle = self._idle[origin]
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def _connect(self, origin: _Origin) -> _Connection:
        tls = None
        if origin.scheme == "https":
            tls = self._tls = self._tls or ssl.create_default_context()
        reader, writer = await asyncio.open_connection(origin.host, origin.port, ssl=tls)
        return _Connection(reader, writer)

    def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _split(url: str) -> tuple[_Origin, str]:
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise PostFailed(f"not a usable URL: {url!r}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PostFailed(f"not an http(s) URL: {url!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return _Origin(parts.scheme, parts.hostname, port), target


def _request_head(origin: _Origin, target: str, length: int) -> h11.Request:
    return h11.Request(
        method="POST",
        target=target,
        headers=[
            ("Host", origin.host_header),
            ("Content-Type", "application/json"),
            ("Content-Length", str(length)),
            ("User-Agent", "symbl-emulator"),
        ],
    )
