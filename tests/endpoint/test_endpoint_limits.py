"""The endpoint's limits: a whole request in time, a bounded head, bounded connections."""

from __future__ import annotations

import asyncio

import pytest
from endpoint_harness import StartDaemon

from daemon.emulator import EmulatorServer
from daemon.http import endpoint
from daemon.http import guard as httpguard

# The real deadline is 10 s; the tests shorten it to keep quick.
DEADLINE = 0.5


@pytest.fixture(autouse=True)
def short_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(httpguard, "REQUEST_SECONDS", DEADLINE)


async def closed_by_server(reader: asyncio.StreamReader, within: float) -> bytes:
    """What the server sent before closing the connection (fails if it stays open)."""
    return await asyncio.wait_for(reader.read(), within)


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


class TestDeadlines:
    """A head or a body that trickles in is cut off; a prompt request is answered."""

    async def test_a_slow_head_is_closed(
        self, start_daemon: StartDaemon, emulator: EmulatorServer
    ) -> None:
        running = await start_daemon(emulator)
        reader, writer = await connect(running.endpoint.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        assert await closed_by_server(reader, DEADLINE * 10) == b""
        writer.close()

    async def test_a_slow_body_is_closed(
        self, start_daemon: StartDaemon, emulator: EmulatorServer
    ) -> None:
        running = await start_daemon(emulator, public_url=True, webhook_secret="s3cret-hook")
        reader, writer = await connect(running.endpoint.port)
        writer.write(
            b"POST /webhook/s3cret-hook HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        )
        assert await closed_by_server(reader, DEADLINE * 10) == b""
        writer.close()

    async def test_a_kept_alive_connection_gets_a_new_deadline(
        self, start_daemon: StartDaemon, emulator: EmulatorServer
    ) -> None:
        running = await start_daemon(emulator)
        reader, writer = await connect(running.endpoint.port)
        for _ in range(3):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            await asyncio.sleep(DEADLINE * 0.6)  # together longer than one deadline
        writer.close()

    async def test_an_oversized_head_is_refused(
        self, start_daemon: StartDaemon, emulator: EmulatorServer
    ) -> None:
        running = await start_daemon(emulator)
        reader, writer = await connect(running.endpoint.port)
        # A head that grows past 16 KiB before it ends.
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000)
        answer = await closed_by_server(reader, 5)
        assert answer.startswith(b"HTTP/1.1 400")
        writer.close()


class TestConnectionCap:
    """At the cap, the oldest connection still waiting for its request makes room."""

    async def test_waiting_connections_make_room_for_a_prompt_request(
        self,
        start_daemon: StartDaemon,
        emulator: EmulatorServer,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(httpguard, "REQUEST_SECONDS", 60.0)
        monkeypatch.setattr(endpoint, "connection_limit", lambda: 16)
        running = await start_daemon(emulator)
        port = running.endpoint.port
        idle = [await connect(port) for _ in range(16)]
        for _, writer in idle:
            writer.write(b"GET /healthz HTTP/1.1\r\n")
        # No pause needed: the server accepts connections in the order they queued, so the
        # sixteen are held before the prompt request's connection is taken.
        answer = await running.http.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert answer.status_code == 200
        assert await closed_by_server(idle[0][0], 5) == b""  # the oldest went
        for _, writer in idle:
            writer.close()
