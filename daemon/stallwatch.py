"""The two stalls that are judged rather than seen: Symbl unreachable, and the state folder full.

Both are small state machines over a ``StallBoard``; the daemon feeds them what it observes
(an answer or no answer from Symbl; a look at the state folder's free space) and they begin or
clear the stall. Credentials refused, 429 pauses and missing inboxes are seen directly.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from daemon.files.records import iso
from daemon.stalls import StallBoard, StallKind

MIN_FREE_BYTES = 4 * 1024 * 1024
"""Below this the state folder counts as full: the journal's next commits may not fit."""
_SPACE_CHECK_SECONDS = 1.0


class Reachability:
    """No answer from Symbl for longer than ``threshold`` seconds is the stall api_unreachable."""

    def __init__(
        self,
        board: StallBoard,
        base_url: str,
        threshold: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._board = board
        self._base_url = base_url
        self.threshold = threshold
        self._clock = clock
        self.since: float | None = None

    def no_answer(self, error: str, since: float | None = None) -> None:
        """A request got no answer (or a 5xx); ``since``: when its first attempt started."""
        now = self._clock()
        if self.since is None:
            self.since = min(now, since) if since is not None else now
        if now - self.since >= self.threshold:
            self._board.begin(
                StallKind.API_UNREACHABLE,
                f"no answer from Symbl at {self._base_url} since {iso(self.since)}: {error}; "
                "files wait in their inboxes and are sent once it answers",
            )

    def answered(self) -> None:
        self.since = None
        self._board.clear(StallKind.API_UNREACHABLE)


class StateSpace:
    """Whether the state folder has room for the journal; looked at most once a second."""

    def __init__(
        self,
        folder: Path,
        min_free: int = MIN_FREE_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder
        self.min_free = min_free
        self._clock = clock
        self._checked_at = -_SPACE_CHECK_SECONDS
        self._free: int | None = None

    def free_bytes(self) -> int | None:
        """Bytes an unprivileged writer may still use there (None if it cannot be looked at)."""
        now = self._clock()
        if now - self._checked_at >= _SPACE_CHECK_SECONDS:
            self._checked_at = now
            try:
                found = os.statvfs(self.folder)
            except OSError:
                self._free = None
            else:
                self._free = found.f_bavail * found.f_frsize
        return self._free

    def full(self) -> bool:
        free = self.free_bytes()
        return free is not None and free < self.min_free

    def message(self) -> str:
        free = self.free_bytes()
        return (
            f"the state folder {self.folder} is full ({free or 0} bytes free, "
            f"{self.min_free} needed): nothing is sent, checked or filed until space is freed; "
            "work resumes by itself"
        )
