"""The asyncio transport against real loopback servers: reuse, server closes, timeouts, TLS."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import trustme
from async_waiting import wait_until
from raw_http import answer_forever, answer_once_then_close, never_answer, serving

from daemon.symbl.transport import AsyncioTransport

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


FIRST_REQUEST = """
import asyncio, sys
from raw_http import answer_forever, serving
from daemon.config.model import SymblSettings
from daemon.symbl.client import SymblClient

async def main() -> None:
    async with serving(answer_forever) as (server, port):
        settings = SymblSettings(base_url=f"http://127.0.0.1:{port}", app_id="a", app_secret="s")
        async with SymblClient(settings, environ={}) as client:
            await client.prepare()
            before = set(sys.modules)
            try:
                await client.job_status("job")
            except Exception:
                pass  # "ok" is no token: what matters is that a request went out
            print("connections:", server.connections)
            print("loaded by the first request:", *sorted(set(sys.modules) - before))

asyncio.run(main())
"""


def test_after_prepare_the_first_request_loads_no_more_code() -> None:
    """The daemon calls ``prepare`` before it says it is ready: whatever the first request
    imports (anyio's backend took 25 ms) would stall the event loop just as files arrive."""
    tests = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", FIRST_REQUEST],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)])},
        check=True,
    )
    *_, connections, last_line = result.stdout.splitlines()
    assert connections != "connections: 0", "no request went out: the test proves nothing"
    assert last_line == "loaded by the first request:", last_line
