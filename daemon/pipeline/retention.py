"""Retention: filed rows older than ``journal.keep_filed_days`` leave the journal, a few at a time.

The journal keeps a row for every file until the file is filed, and then for
``keep_filed_days`` (see ``Journal.prune_filed`` for what it keeps longer: what duplicate
detection and conversations need). So under a steady load the journal holds about
``keep_filed_days`` of history and stops growing: SQLite reuses the pages pruned rows free.

Pruning is housekeeping: it runs a minute after start and then every ``interval``, looking at
``BATCH_ROWS`` filed rows at a time, one short transaction each, and lets uploads go first
between batches.
Counts in ``status`` and ``/metrics`` are not lowered by it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection
from typing import Protocol

from daemon.config.model import Config
from daemon.journal import Journal
from daemon.logs import get_logger

log = get_logger("symbl_inbox.retention")

DAY_SECONDS = 86400.0
# Rows deleted per transaction: a few milliseconds of the event loop each.
BATCH_ROWS = 500
FIRST_PASS_SECONDS = 60.0
LONGEST_INTERVAL_SECONDS = 3600.0
SHORTEST_INTERVAL_SECONDS = 1.0


def cutoff(now: float, keep_filed_days: float) -> float:
    """Rows filed (last written) before this moment may be pruned."""
    return now - keep_filed_days * DAY_SECONDS


def interval(keep_filed_days: float) -> float:
    """Seconds between passes: a tenth of the retention, between a second and an hour.

    An hour for the usual retention of days (a pass finds an hour's filings); shorter for a
    retention of minutes, so that the journal still holds little more than the retention.
    """
    tenth = keep_filed_days * DAY_SECONDS / 10
    return min(LONGEST_INTERVAL_SECONDS, max(SHORTEST_INTERVAL_SECONDS, tenth))


def twin_inboxes(config: Config) -> frozenset[str]:
    """Inboxes whose duplicate detection needs the first done file of every content."""
    return frozenset(inbox.key for inbox in config.inboxes if inbox.on_duplicate == "skip")


class Kept(Protocol):
    """What retention reads of the daemon: the journal, the configuration in force, the slots."""

    @property
    def db(self) -> Journal: ...

    @property
    def config(self) -> Config: ...

    @property
    def scheduler(self) -> QuietUploads: ...


class QuietUploads(Protocol):
    async def wait_for_quiet_uploads(self) -> None: ...


class Retention:
    """Prunes the journal on a schedule, while the daemon runs."""

    def __init__(self, daemon: Kept, *, clock: Callable[[], float] = time.time) -> None:
        self._daemon = daemon
        self._clock = clock

    async def run(self, stop: asyncio.Event) -> None:
        """Prune every ``interval`` until ``stop`` is set; a failing pass is logged, not fatal."""
        wait = min(FIRST_PASS_SECONDS, interval(self._daemon.config.retention.keep_filed_days))
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), wait)
                return
            except TimeoutError:
                pass
            try:
                await self.prune()
            except Exception:
                log.exception("internal_error", during="retention")
            wait = interval(self._daemon.config.retention.keep_filed_days)

    async def prune(self) -> int:
        """One pass: every prunable row, in batches; how many were deleted."""
        config = self._daemon.config
        keep_days = config.retention.keep_filed_days
        before = cutoff(self._clock(), keep_days)
        twins: Collection[str] = twin_inboxes(config)
        started = time.monotonic()
        deleted = 0
        cursor = None
        while True:
            batch, cursor = await self._daemon.db.prune_filed(before, twins, BATCH_ROWS, cursor)
            deleted += batch
            if cursor is None:
                break
            # Uploads first: the next batch waits for their pause.
            await self._daemon.scheduler.wait_for_quiet_uploads()
            await asyncio.sleep(0)  # and the turn's commit ends the batch's transaction
        if deleted:
            log.info(
                "journal_pruned",
                rows=deleted,
                keep_filed_days=keep_days,
                seconds=round(time.monotonic() - started, 3),
            )
        return deleted
