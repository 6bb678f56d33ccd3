"""The asyncio transport against real loopback servers: reuse, server closes, timeouts, TLS,
and connecting on uvloop (the daemon's loop) to a name with a silent first address."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trustme
import uvloop
from async_waiting import wait_until
from raw_http import answer_forever, answer_once_then_close, never_answer, serving

from daemon.symbl.transport import AsyncioBackend, AsyncioTransport, _interleaved

LIMITS = httpx.Limits(max_connections=4, max_keepalive_connections=4)


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


# ------------------------------------------------------------ happy eyeballs on uvloop

BLACKHOLE = "127.0.0.2"  # a loopback address whose listener never accepts: SYNs are dropped


class TwoAddresses(uvloop.Loop):
    """uvloop's loop, with a name that resolves to a silent address first, then a good one."""

    async def getaddrinfo(self, host: Any, port: Any, **kwargs: Any) -> list[Any]:
        if host != "dual.test":
            found: list[Any] = await super().getaddrinfo(host, port, **kwargs)
            return found
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (BLACKHOLE, port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]


@contextlib.contextmanager
def silent_listener(port: int) -> Iterator[None]:
    """A listener on BLACKHOLE:port whose accept queue is full: a new connection never answers."""
    listener = socket.socket()
    listener.bind((BLACKHOLE, port))
    listener.listen(0)
    fillers: list[socket.socket] = []
    try:
        for _ in range(16):
            filler = socket.socket()
            filler.settimeout(0.3)
            fillers.append(filler)
            try:
                filler.connect((BLACKHOLE, port))
            except TimeoutError:
                break  # the queue is full: the kernel drops the next SYNs
        else:
            pytest.skip("the kernel accepted every connection: no silent address to test with")
        yield
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_on_uvloop_a_name_whose_first_address_is_silent_connects_to_the_next() -> None:
    async def scenario() -> str:
        async with serving(answer_forever) as (_, port):
            with silent_listener(port):
                backend = AsyncioBackend()
                stream = await backend.connect_tcp("dual.test", port, timeout=5.0)
                peer: tuple[str, int] = stream.get_extra_info("server_addr")
                await stream.aclose()
                return peer[0]

    with asyncio.Runner(loop_factory=TwoAddresses) as runner:
        assert runner.run(scenario()) == "127.0.0.1"


def test_addresses_are_tried_once_each_families_alternating() -> None:
    six, four = socket.AF_INET6, socket.AF_INET
    found = [(six, "::1"), (six, "::2"), (four, "10.0.0.1"), (six, "::1"), (four, "10.0.0.2")]
    assert _interleaved(found) == ["::1", "10.0.0.1", "::2", "10.0.0.2"]
