"""The emulator's webhook poster against raw loopback servers: reuse, closes, silence, bad URLs."""

from __future__ import annotations

import asyncio
import json

import pytest
from raw_http import answer_forever, answer_once_then_close, never_answer, read_request, serving

from daemon.emulator.poster import JsonPoster, PostFailed

PAYLOAD = {"jobId": "job-1", "id": "job-1", "status": "completed"}


async def test_posts_json_over_one_kept_alive_connection() -> None:
    bodies: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (body := await read_request(reader)) is not None:
            bodies.append(body)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")

    poster = JsonPoster(timeout=5.0)
    async with serving(record) as (server, port):
        for _ in range(3):
            assert await poster.post(f"http://127.0.0.1:{port}/webhook/s", PAYLOAD) == 200
        poster.close()
    assert server.connections == 1
    assert [json.loads(body) for body in bodies] == [PAYLOAD] * 3


async def test_the_answers_status_is_returned_as_it_is() -> None:
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")

    poster = JsonPoster(timeout=5.0)
    async with serving(refuse) as (_, port):
        assert await poster.post(f"http://127.0.0.1:{port}/", PAYLOAD) == 503
        poster.close()


async def test_a_connection_the_server_dropped_is_replaced_without_a_failure() -> None:
    poster = JsonPoster(timeout=5.0)
    async with serving(answer_once_then_close) as (server, port):
        url = f"http://127.0.0.1:{port}/hook"
        # Straight after the first answer: the drop is either seen or met on the next send.
        assert [await poster.post(url, PAYLOAD) for _ in range(3)] == [200, 200, 200]
        poster.close()
    assert server.connections == 3


async def test_a_silent_receiver_fails_after_the_timeout() -> None:
    poster = JsonPoster(timeout=0.2)
    async with serving(never_answer) as (_, port):
        with pytest.raises(PostFailed):
            await poster.post(f"http://127.0.0.1:{port}/", PAYLOAD)
        poster.close()


async def test_nobody_listening_fails() -> None:
    async with serving(answer_forever) as (_, port):
        pass  # closed again: nothing listens on the port any more
    with pytest.raises(PostFailed):
        await JsonPoster(timeout=5.0).post(f"http://127.0.0.1:{port}/", PAYLOAD)


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "not a url", "http://127.0.0.1:99999/x", "http:///x"]
)
async def test_urls_it_cannot_post_to_fail_clearly(url: str) -> None:
    with pytest.raises(PostFailed, match="URL"):
        await JsonPoster(timeout=5.0).post(url, PAYLOAD)
