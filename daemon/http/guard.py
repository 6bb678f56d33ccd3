"""Uvicorn's h11 protocol with the limits an endpoint open to anyone needs.

Anyone who reaches ``http.listen`` may send any bytes at any pace. Uvicorn bounds the size of a
request head (``h11_max_incomplete_event_size``) and the idle time between requests
(``timeout_keep_alive``), but it waits for ever for a head or a body that trickles in, and it
accepts connections until the process runs out of file descriptors, which then fails the
uploads as well. So each connection here:

- must deliver a whole request (head and body) within ``REQUEST_SECONDS`` of connecting or of
  its previous response, or it is closed;
- counts against ``max_connections``: at the limit, a new connection pushes out the oldest one
  that has not delivered a whole request yet (a slow or idle one), so a flood of slow requests
  pushes out only itself, and a monitor's ``/healthz`` (sent at once) gets through.
"""

from __future__ import annotations

import asyncio
import resource
from collections import OrderedDict
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_SECONDS = 10.0
MAX_HEAD_BYTES = 16 * 1024
_FD_SHARE = 4  # at most a quarter of the process's descriptors go to HTTP connections
_MAX_CONNECTIONS = 1024
_REQUEST_IN = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR)


class ConnectionGuard:
    """The connections of one endpoint that have not delivered a whole request yet."""

    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.open = 0
        self.waiting: OrderedDict[GuardedH11Protocol, None] = OrderedDict()
        self.evicted = 0
        self.timed_out = 0


def connection_limit() -> int:
    """Connections allowed at once: a share of the descriptors (after raising the soft limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return max(16, min(_MAX_CONNECTIONS, soft // _FD_SHARE))


def guarded_protocol(guard: ConnectionGuard) -> type[H11Protocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` bound to ``guard``."""
    return type("BoundGuardedH11Protocol", (GuardedH11Protocol,), {"guard": guard})


class GuardedH11Protocol(H11Protocol):
    guard: ConnectionGuard

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._counted = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn's own signature
        guard = self.guard
        if guard.open >= guard.max_connections:
            if guard.waiting:
                oldest, _ = guard.waiting.popitem(last=False)
                guard.evicted += 1
                oldest.transport.abort()
            else:  # every connection is busy with a whole request: refuse this one
                transport.abort()
                return
        guard.open += 1
        self._counted = True
        super().connection_made(transport)
        self._await_request()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted:
            self.guard.open -= 1
            self._counted = False
        self._stop_waiting()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state in _REQUEST_IN:
            self._stop_waiting()  # the whole request is in: the app answers it

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state not in _REQUEST_IN:
            self._await_request()

    def _await_request(self) -> None:
        self._stop_waiting()
        self.guard.waiting[self] = None
        self._deadline = self.loop.call_later(REQUEST_SECONDS, self._too_slow)

    def _stop_waiting(self) -> None:
        self.guard.waiting.pop(self, None)
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        self.guard.waiting.pop(self, None)
        if not self.transport.is_closing():
            self.guard.timed_out += 1
            self.transport.abort()
