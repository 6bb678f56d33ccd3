"""Small helpers for talking to the emulator over real HTTP in the emulator tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from daemon.emulator import EmulatorServer

CREDENTIALS = {"type": "application", "appId": "app-id-1", "appSecret": "app-secret-1"}


def get_token(client: httpx.Client) -> str:
    response = client.post("/oauth2/token:generate", json=CREDENTIALS)
    assert response.status_code == 200, response.text
    token: str = response.json()["accessToken"]
    return token


@contextmanager
def api_client(server: EmulatorServer, *, bearer: bool = True) -> Iterator[httpx.Client]:
    """An httpx client with a fresh token, sent as Bearer or as ``x-api-key``."""
    with httpx.Client(base_url=server.base_url, timeout=10.0, trust_env=False) as client:
        token = get_token(client)
        if bearer:
            client.headers["Authorization"] = f"Bearer {token}"
        else:
            client.headers["x-api-key"] = token
        yield client


@dataclass
class WebhookReceiver:
    """A loopback HTTP server that records JSON posts and answers ``fail_first`` of them 500."""

    fail_first: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    answered_200: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def handle(self, payload: dict[str, Any]) -> int:
        with self.lock:
            self.received.append(payload)
            if len(self.received) <= self.fail_first:
                return 500
            self.answered_200.append(payload)
            return 200


@contextmanager
def webhook_receiver(fail_first: int = 0) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(fail_first=fail_first)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            status = receiver.handle(json.loads(self.rfile.read(length)))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
