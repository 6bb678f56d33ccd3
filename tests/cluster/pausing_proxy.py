"""A TCP forwarder on loopback that a test can pause: a host cut off from its database.

While paused nothing passes either way and new connections wait unanswered, as behind a
network that dropped; the connections stay open, so what was held goes through once it
resumes, as after a healed partition.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class PausingProxy:
    """``with PausingProxy(port) as proxy:`` forwards ``listen:proxy.port`` (loopback unless
    told, e.g. the bridge of the test's network namespaces) to ``127.0.0.1:port``."""

    def __init__(self, upstream_port: int, listen: str = "127.0.0.1") -> None:
        self._upstream = ("127.0.0.1", upstream_port)
        self.host = listen
        self._listener = socket.create_server((listen, 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._closed = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def pause(self) -> None:
        self._open.clear()

    def resume(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._closed = True
        self._open.set()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def __enter__(self) -> PausingProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            self._open.wait()
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._open.wait()  # a connection made while paused waits, unanswered
            try:
                upstream = socket.create_connection(self._upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, target), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                self._open.wait()  # read, but held until the link is back
                if not data or self._closed:
                    break
                target.sendall(data)
        except OSError:
            return  # closed at either end: the finally closes the other
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
