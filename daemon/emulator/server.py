"""The emulator served by Uvicorn: in its own thread for tests, or in the foreground for the CLI."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

import uvicorn

from daemon.emulator.app import create_app
from daemon.emulator.settings import EmulatorSettings
from daemon.emulator.state import EmulatorState

LOOPBACK = "127.0.0.1"
_START_TIMEOUT = 10.0
_GRACEFUL_STOP_SECONDS = 1.5
_STOP_TIMEOUT = 10.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def uvicorn_config(
    state: EmulatorState, *, log_level: str = "warning", tls: TlsFiles | None = None
) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(state),
        ssl_certfile=tls.certfile if tls else None,
        ssl_keyfile=tls.keyfile if tls else None,
        lifespan="on",
        log_level=log_level,
        log_config=None,
        access_log=False,
        # In-flight uploads get a moment to finish; a stuck client must not hold up a stop.
        timeout_graceful_shutdown=1,
    )


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate chain and its key: the emulator then speaks HTTPS."""

    certfile: str
    keyfile: str


class EmulatorServer:
    """An emulator on a free loopback port, served from a background thread.

    Use it as a context manager: the port is bound before ``__enter__`` returns, and leaving
    the block stops the server and waits for its thread.
    """

    def __init__(
        self,
        settings: EmulatorSettings | None = None,
        host: str = LOOPBACK,
        tls: TlsFiles | None = None,
    ) -> None:
        self.state = EmulatorState(settings or EmulatorSettings())
        self._host = host
        self._tls = tls
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._socket is None:
            raise RuntimeError("the emulator is not running")
        host, port = self._socket.getsockname()[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    def start(self, port: int = 0) -> None:
        """Serve on ``port`` (0: a free one); a stopped emulator can start again on its old port."""
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        self._socket = _listening_socket(self._host, port)
        self._server = uvicorn.Server(uvicorn_config(self.state, tls=self._tls))
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="symbl-emulator",
            daemon=True,
        )
        self._thread.start()
        self._wait_until_started()

    def _wait_until_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the emulator did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_GRACEFUL_STOP_SECONDS)
            if self._thread.is_alive() and self._server is not None:
                # Uvicorn waits unboundedly for request tasks (a client that vanished mid-upload);
                # a test emulator must stop promptly, so it stops waiting.
                self._server.force_exit = True
                self._thread.join(_STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _listening_socket(host: str, port: int = 0) -> socket.socket:
    # An explicit IPPROTO_TCP lets asyncio set TCP_NODELAY on accepted connections; without it
    # every small answer waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(512)
    return sock


class _ForegroundServer(uvicorn.Server):
    """Uvicorn re-raises SIGTERM after its graceful stop, so the process would die of it; a stop
    asked for by a signal is a normal end here (exit code 0)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The handler only sets Uvicorn's exit flag; the serving loop does the stopping.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve_forever(settings: EmulatorSettings, host: str, port: int) -> None:
    """Serve in the foreground until SIGINT or SIGTERM."""
    config = uvicorn_config(EmulatorState(settings), log_level="info")
    config.host, config.port = host, port
    _ForegroundServer(config).run()
