"""Conditions that stop work, as stalls: Symbl unreachable, credentials refused, a full state
folder; each begins and ends in one place, which tells the log, systemd and the hooks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from daemon.config.model import Config
from daemon.hooks import Happening, HookEvent, HookRunner
from daemon.logs import get_logger
from daemon.stalls import Stall, StallBoard, StallKind
from daemon.stallwatch import Reachability, StateSpace
from daemon.symbl.client import (
    AuthenticationError,
    FinalError,
    RateLimitedError,
    SymblError,
    TransientError,
)

log = get_logger("symbl_inbox.conditions")


class Conditions:
    """The stalls board's reporter, Symbl's reachability and the room left in state_dir."""

    def __init__(
        self,
        config: Config,
        stalls: StallBoard,
        *,
        hooks: Callable[[], HookRunner | None],
        announce: Callable[[], None],
        resume: Callable[[], object],
    ) -> None:
        self._stalls = stalls
        self._hooks = hooks
        self._announce = announce
        self._resume = resume
        self._reach = Reachability(
            stalls, config.symbl.base_url, config.symbl.unreachable_after_seconds
        )
        self._space = StateSpace(config.state_dir)
        self._room = asyncio.Event()  # cleared while the state folder is full
        self._room.set()
        stalls.subscribe(self.stall_changed)

    def reconfigure(self, config: Config) -> None:
        self._reach.threshold = config.symbl.unreachable_after_seconds

    def room(self) -> bool:
        """Whether the journal takes writes now (no full state folder in force)."""
        return self._room.is_set()

    async def wait_for_room(self) -> None:
        await self._room.wait()

    def stall_changed(self, stall: Stall, began: bool) -> None:
        """Every stall begins and ends here: the log, systemd's status line and the hooks.

        A 429 pause is shown but neither logged again nor sent to hooks: an account at its
        limit is busy, not stuck (``submissions_paused`` already says it).
        """
        if stall.kind is StallKind.RATE_LIMITED:
            return
        if began:
            log.error("stall_began", kind=stall.kind.value, subject=stall.subject,
                      message=stall.message)  # fmt: skip
        else:
            log.info("stall_cleared", kind=stall.kind.value, subject=stall.subject,
                     seconds=round(time.time() - stall.since, 1))  # fmt: skip
        if (hooks := self._hooks()) is not None:
            event = HookEvent.STALLED if began else HookEvent.RECOVERED
            hooks.emit(
                Happening(
                    event,
                    time.time(),
                    inbox=stall.subject,
                    stall=stall.kind.value,
                    message=stall.message,
                    since=stall.since,
                )
            )
        self._announce()

    def api_answer(self, error: SymblError | None = None) -> None:
        """What a request to Symbl tells about the stalls credentials_refused, api_unreachable."""
        no_answer = isinstance(error, TransientError) and not isinstance(error, RateLimitedError)
        if no_answer and error is not None and (error.status is None or error.status >= 500):
            first = min((a.started_at for a in error.attempts), default=None)
            self._reach.no_answer(error.message, first)
            return
        self._reach.answered()
        if error is None or (isinstance(error, FinalError | RateLimitedError)
                             and not isinstance(error, AuthenticationError)):  # fmt: skip
            self._stalls.clear(StallKind.CREDENTIALS_REFUSED)

    def has_room(self, *, may_resume: bool = False) -> bool:
        """Whether the journal can take writes; a full state folder pauses all work.

        Only the maintenance tick (``may_resume``) ends the pause: resuming rescans the inboxes
        for what arrived meanwhile, which must not happen inside another write.
        """
        if not self._space.full():
            if may_resume and self._stalls.clear(StallKind.STATE_FULL) is not None:
                self._room.set()
                self._resume()
            return not self._stalls.has(StallKind.STATE_FULL)
        if self._stalls.begin(StallKind.STATE_FULL, self._space.message()):
            self._room.clear()
        return False

    def journal_full(self, error: Exception) -> None:
        """A commit found the disk full despite the margin (``StateSpace``): pause at once."""
        log.error(
            "journal_commit_failed",
            error=str(error),
            message="the state folder is full: the journal did not keep the last moment's "
            "changes; work pauses until there is room",
        )
        if self._stalls.begin(StallKind.STATE_FULL, self._space.message()):
            self._room.clear()
