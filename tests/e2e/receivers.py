"""Real receivers on loopback for what hooks send: an SMTP server and an HTTP endpoint."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: list[str]
    subject: str
    body: str
    raw: bytes


class SmtpReceiver:
    """aiosmtpd on a loopback port; every message it accepts is kept in ``mails``."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []
        self.port = free_port()
        self._controller = Controller(self, hostname=LOOPBACK, port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = bytes(envelope.original_content or envelope.content)
        message = email.message_from_bytes(raw, policy=email.policy.default)
        part = message.get_body(("plain",))
        body = part.get_content() if part is not None else ""
        self.mails.append(
            Mail(envelope.mail_from, list(envelope.rcpt_tos), str(message["subject"]), body, raw)
        )
        return "250 OK"

    def url(self, to: str = "ops@example.com") -> str:
        """An Apprise URL for this server: plain SMTP, no login."""
        return f"mailto://{LOOPBACK}:{self.port}?from=inbox@example.com&to={to}&mode=insecure"

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpReceiver:
    """A threaded HTTP server on loopback that records every request and answers 200."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                receiver.requests.append(
                    Request(self.command, self.path, dict(self.headers.items()), body)
                )
                status = 200
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    status = 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_PUT = do_HEAD = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def on(self, path: str) -> list[Request]:
        return [request for request in self.requests if request.path == path]

    def __enter__(self) -> HttpReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def everything(self) -> Iterator[bytes]:
        for request in self.requests:
            yield request.path.encode()
            yield json.dumps(request.headers).encode()
            yield request.body


class SlowRelay:
    """A TCP relay on loopback that passes at most ``rate`` bytes a second towards ``target``.

    Uploads through it take long enough to be seen half done.
    """

    def __init__(self, target_port: int, rate: int) -> None:
        self.target_port = target_port
        self.rate = rate
        self._listener = socket.create_server((LOOPBACK, 0))
        self.port = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            upstream = socket.create_connection((LOOPBACK, self.target_port))
            for source, sink, limit in ((client, upstream, self.rate), (upstream, client, 0)):
                threading.Thread(target=self._pump, args=(source, sink, limit), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, limit: int) -> None:
        chunk = max(1024, limit // 20) if limit else 65536
        try:
            while not self._closed.is_set():
                data = source.recv(chunk)
                if not data:
                    break
                sink.sendall(data)
                if limit:
                    self._closed.wait(len(data) / limit)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> SlowRelay:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closed.set()
        self._listener.close()
        self._thread.join(5)
