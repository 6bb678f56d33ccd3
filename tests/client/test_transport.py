"""The asyncio transport against real loopback servers: reuse, server closes, timeouts, TLS."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest
import trustme
from async_waiting import wait_until

from daemon.transport import AsyncioTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Server:
    """A loopback HTTP/1.1 server whose behaviour per connection is the test's ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()


@asynccontextmanager
async def serving(
    handler: Handler, tls: ssl.SSLContext | None = None
) -> AsyncIterator[tuple[Server, int]]:
    server = Server(handler)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield server, port


async def read_request(reader: asyncio.StreamReader) -> bool:
    """Read one request's head (the tests send no bodies); False at the end of the stream."""
    head = await reader.readuntil(b"\r\n\r\n") if not reader.at_eof() else b""
    return bool(head)


async def answer_forever(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with_requests = True
    while with_requests:
        try:
            with_requests = await read_request(reader)
        except asyncio.IncompleteReadError:
            return
        writer.write(OK)
        await writer.drain()


async def answer_once_then_close(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    await read_request(reader)
    # Keep-alive promised, then the server drops the idle connection (as servers do on timeout).
    writer.write(OK)
    await writer.drain()


async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.Event().wait()


def client(port: int, scheme: str = "http", **kwargs: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{scheme}://127.0.0.1:{port}",
        transport=kwargs.pop("transport", None) or AsyncioTransport(LIMITS),  # type: ignore[arg-type]
        trust_env=False,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_requests_reuse_one_kept_alive_connection() -> None:
    async with serving(answer_forever) as (server, port), client(port) as http:
        for _ in range(5):
            response = await http.get("/")
            assert response.text == "ok"
    assert server.connections == 1


async def test_a_connection_the_server_closed_is_not_reused() -> None:
    transport = AsyncioTransport(LIMITS)
    async with (
        serving(answer_once_then_close) as (server, port),
        client(port, transport=transport) as http,
    ):
        assert (await http.get("/")).text == "ok"
        pool = transport._pool
        # Wait until the client has seen the server's end of stream (no fixed sleep).
        await wait_until(lambda: all(connection.has_expired() for connection in pool.connections))
        assert (await http.get("/")).text == "ok"
    assert server.connections == 2


async def test_a_silent_server_raises_httpx_read_timeout() -> None:
    async with serving(never_answer) as (_, port), client(port, timeout=0.2) as http:
        with pytest.raises(httpx.ReadTimeout):
            await http.get("/")


async def test_a_refused_connection_raises_httpx_connect_error() -> None:
    async with serving(answer_forever) as (_, port):
        pass  # closed again: nothing listens on the port any more
    async with client(port) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/")


async def test_https_verifies_the_server_certificate() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    async with serving(answer_forever, tls=server_context) as (_, port):
        # The system's trust store does not know this authority: the handshake must fail.
        async with client(port, "https") as http:
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get("/")
        trusting = AsyncioTransport(LIMITS)
        authority.configure_trust(trusting._pool._ssl_context)
        async with client(port, "https", transport=trusting) as http:
            response = await http.get("/")
            assert response.text == "ok"
            assert response.extensions["network_stream"].get_extra_info("ssl_object")
