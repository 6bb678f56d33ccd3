"""Conditions that stop work (credentials refused, state folder full, ...), as operators see them.

The daemon reports a stall when it begins and when it clears; everything that shows stalls
(``status``, ``/healthz``, the status page, metrics, hooks) reads this one board. A stall has a
``kind`` from a fixed vocabulary (a contract: scripts and monitoring match on it) and, where it
concerns one thing only, a ``subject`` (an inbox id), so two inboxes can be unavailable at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum


class StallKind(StrEnum):
    CREDENTIALS_REFUSED = "credentials_refused"
    RATE_LIMITED = "rate_limited"
    API_UNREACHABLE = "api_unreachable"
    STATE_FULL = "state_full"
    INBOX_UNAVAILABLE = "inbox_unavailable"


@dataclass(frozen=True)
class Stall:
    kind: StallKind
    since: float
    """Wall-clock time (``time.time()``) the condition began."""
    message: str
    subject: str | None = None


StallListener = Callable[[Stall, bool], None]
"""Called with the stall and ``True`` when it begins, ``False`` when it clears."""


class StallBoard:
    """The stalls in force now; begin/clear are idempotent, so callers report freely."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._stalls: dict[tuple[StallKind, str | None], Stall] = {}
        self._listeners: list[StallListener] = []

    def subscribe(self, listener: StallListener) -> None:
        self._listeners.append(listener)

    def begin(self, kind: StallKind, message: str, subject: str | None = None) -> bool:
        """Record the stall; True if it is new. A repeat keeps ``since`` and takes the message."""
        key = (kind, subject)
        current = self._stalls.get(key)
        if current is not None:
            if current.message != message:
                self._stalls[key] = Stall(kind, current.since, message, subject)
            return False
        stall = Stall(kind, self._clock(), message, subject)
        self._stalls[key] = stall
        for listener in self._listeners:
            listener(stall, True)
        return True

    def clear(self, kind: StallKind, subject: str | None = None) -> Stall | None:
        """End the stall if it is in force; returns what ended."""
        stall = self._stalls.pop((kind, subject), None)
        if stall is not None:
            for listener in self._listeners:
                listener(stall, False)
        return stall

    def active(self) -> list[Stall]:
        """The stalls in force, oldest first."""
        return sorted(self._stalls.values(), key=lambda stall: stall.since)

    def has(self, kind: StallKind, subject: str | None = None) -> bool:
        return (kind, subject) in self._stalls
