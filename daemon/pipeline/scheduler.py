"""Which ready file is sent next, and when: job and upload slots, fairness, 429 pause, credentials.

The scheduler owns the ready queues (oldest first within an inbox, round robin across inboxes),
the count of uploads and jobs the account holds, the job cap learned from 429s, the pause they
start and the block after refused credentials. It decides; the uploader and the tracker tell it
what happened. It never starts a task, sleeps or logs a stall: its answers are plain values.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from daemon.journal import FileRecord, Journal, State
from daemon.logs import get_logger

log = get_logger("symbl_inbox.scheduler")

PAUSE_CAP_SECONDS = 60.0
# A learned job cap is probed upwards again once 429s have stopped for this long.
CAP_PROBE_SECONDS = 30.0
# How long work that no upload waits for (a status check after a webhook, filing, admission
# beyond what fills the free slots) waits for the uploads in flight to pause.
FILING_YIELD_SECONDS = 2.0
# Such work that had to wait starts one piece at a time, this far apart, while any waits.
YIELD_PACE_SECONDS = 0.003


def backoff(attempt: int, initial: float, cap: float) -> float:
    """``initial`` doubled for every attempt after the first, at most ``cap``."""
    return float(min(cap, initial * 2 ** max(0, attempt - 1)))


@dataclass(frozen=True)
class Pause:
    """A 429's answer: no new submission for ``seconds``; ``job_cap`` jobs fit the account."""

    seconds: float
    job_cap: int


class Scheduler:
    """Slots, queues and pauses for every inbox of one daemon."""

    def __init__(
        self,
        *,
        max_jobs: int,
        max_uploads: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_jobs = max_jobs
        self._max_uploads = max_uploads
        self._clock = clock
        self._queues: dict[str, deque[int]] = {}
        self._turns: deque[str] = deque()  # the round robin across inboxes
        self._uploading: set[int] = set()
        self._jobs: set[str] = set()
        # Jobs a webhook reported as ended, not yet confirmed by a GET: their slots are free.
        self._ended_by_webhook: set[str] = set()
        self._pause_until = 0.0
        self._pause_streak = 0
        # Jobs the account takes at once, as learned from 429s (never above the configured cap).
        self._job_cap = max_jobs
        self._last_rate_limit = 0.0
        self._blocked: str | None = None
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._next_paced = 0.0  # loop time before which no held-back work starts

    def configure(self, *, max_jobs: int, max_uploads: int) -> None:
        """New limits (a reload with new Symbl settings): the learned cap and the block reset."""
        self._max_jobs, self._max_uploads = max_jobs, max_uploads
        self._job_cap = max_jobs
        self._blocked = None

    # ------------------------------------------------------------------ ready queues

    def add_inbox(self, inbox: str) -> None:
        self._queues[inbox] = deque()
        self._turns.append(inbox)

    def remove_inbox(self, inbox: str) -> None:
        """Its queue goes; its ready files stay ready in the journal for when it comes back."""
        self._queues.pop(inbox, None)
        with contextlib.suppress(ValueError):
            self._turns.remove(inbox)

    def enqueue(self, inbox: str, record_id: int, *, front: bool = False) -> bool:
        """Queue a ready file; False when its inbox is no longer configured."""
        queue = self._queues.get(inbox)
        if queue is None:
            return False
        if front:
            queue.appendleft(record_id)
        else:
            queue.append(record_id)
        return True

    def discard(self, inbox: str, record_id: int) -> None:
        """A queued file changed or vanished: it is no longer waiting for a slot."""
        with contextlib.suppress(ValueError, KeyError):
            self._queues[inbox].remove(record_id)

    def ready_count(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    async def take_next(self, journal: Journal) -> FileRecord | None:
        """The next file to send: oldest first within an inbox, round robin across inboxes.

        A queued file that is no longer ready (it changed, failed or was sent) is passed over.
        """
        for _ in range(len(self._turns)):
            key = self._turns[0]
            self._turns.rotate(-1)
            queue = self._queues.get(key)
            while queue:
                record = await journal.get(queue.popleft())
                if record is not None and record.state is State.READY:
                    return record
        return None

    # ------------------------------------------------------------------ slots

    @property
    def uploads_in_flight(self) -> int:
        return len(self._uploading)

    @property
    def jobs_tracked(self) -> int:
        return len(self._jobs)

    def jobs_in_flight(self) -> int:
        """Uploads plus jobs the account still counts as running."""
        return len(self._uploading) + len(self._jobs) - len(self._ended_by_webhook)

    def can_start(self) -> bool:
        """Whether one more upload may begin now (slots free, no pause, no credential block)."""
        return (
            self._blocked is None
            and self._clock() >= self._pause_until
            and len(self._uploading) < self._max_uploads
            and self.jobs_in_flight() < min(self._max_jobs, self._job_cap)
        )

    def enough_ready(self) -> bool:
        """Whether the ready files would fill every free job slot and upload slot."""
        free_jobs = min(self._max_jobs, self._job_cap) - self.jobs_in_flight()
        return self.ready_count() >= max(free_jobs, self._max_uploads)

    def upload_started(self, record_id: int) -> None:
        self._uploading.add(record_id)

    def upload_ended(self, record_id: int) -> None:
        self._uploading.discard(record_id)

    def job_started(self, job_id: str) -> None:
        self._jobs.add(job_id)

    def job_done(self, job_id: str) -> None:
        """The job's outcome is known (or it is no longer followed): its slot is free."""
        self._jobs.discard(job_id)
        self._ended_by_webhook.discard(job_id)
        self.slot_freed()

    def job_ended_by_webhook(self, job_id: str) -> bool:
        """A webhook said the job ended: True when that frees its slot now (the first time)."""
        if job_id in self._ended_by_webhook or job_id not in self._jobs:
            return False
        self._ended_by_webhook.add(job_id)
        self.slot_freed()
        return True

    def ended_by_webhook(self, job_id: str) -> bool:
        return job_id in self._ended_by_webhook

    def job_still_running(self, job_id: str) -> None:
        """A check found a job a webhook called ended still running: it holds its slot again."""
        self._ended_by_webhook.discard(job_id)

    # ------------------------------------------------------------------ quiet uploads

    def pumped(self) -> None:
        """After a round of starts: work that yields to uploads waits while any is in flight."""
        if self._uploading:
            self._quiet.clear()
        else:
            self._quiet.set()

    async def wait_for_quiet_uploads(self) -> None:
        """Let the uploads in flight go first, for up to FILING_YIELD_SECONDS.

        When a round of jobs ends, their slots refill with uploads while the same loop checks
        and files the finished ones. No upload waits for those, yet they took their share of
        every turn, and each round of a batch spread wider than the one before: in the batch
        benchmark, checking and filing in the uploads' pauses took the ratio to the job limit
        from 1.24 to 1.15. The cap keeps a steady stream of uploads from holding results back
        for long.

        Work held back starts one piece at a time, YIELD_PACE_SECONDS apart: a pause between
        two uploads let every piece waiting for it go at once, and the next uploads waited for
        all of them (the last round's uploads spread over 0.17 s instead of 0.14 s).
        """
        loop = asyncio.get_running_loop()
        if self._quiet.is_set() and loop.time() >= self._next_paced:
            return  # the usual case: nothing in flight, nothing held back
        deadline = loop.time() + FILING_YIELD_SECONDS
        while True:
            remaining = deadline - loop.time()
            if not self._quiet.is_set() and remaining > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._quiet.wait(), remaining)
            now = loop.time()
            start = max(now, self._next_paced)
            self._next_paced = start + YIELD_PACE_SECONDS
            if start > now:
                await asyncio.sleep(start - now)
            if self._quiet.is_set() or loop.time() >= deadline:
                return

    # ------------------------------------------------------------------ 429 and credentials

    def rate_limited(self) -> Pause | None:
        """429: the account is full. Learn how many jobs fit; a Pause when one begins now.

        Concurrent uploads often hear 429 together; they count as one pause, not many. The
        pause ends early when one of our jobs finishes, since that frees a slot for certain.
        """
        now = self._clock()
        self._job_cap = max(1, self.jobs_in_flight() - 1)
        self._last_rate_limit = now
        if now < self._pause_until:
            return None
        self._pause_streak += 1
        seconds = backoff(self._pause_streak, 1.0, PAUSE_CAP_SECONDS)
        self._pause_until = now + seconds
        return Pause(seconds, self._job_cap)

    def submitted(self) -> None:
        """An upload was accepted: the pause streak ends, and the cap may grow back."""
        self._pause_streak = 0
        quiet_for = self._clock() - self._last_rate_limit
        if quiet_for > CAP_PROBE_SECONDS and self._job_cap < self._max_jobs:
            self._job_cap += 1

    def slot_freed(self) -> None:
        """A job of ours ended: a 429 pause ends with it, since a slot is free for certain."""
        if self._pause_until > self._clock():
            self._pause_until = 0.0

    def paused(self) -> bool:
        return self._clock() < self._pause_until

    def pause_remaining(self) -> float:
        return max(0.0, self._pause_until - self._clock())

    @property
    def job_cap(self) -> int:
        return self._job_cap

    @property
    def blocked(self) -> str | None:
        """Why credentials were refused, while submissions wait on them; else None."""
        return self._blocked

    def block(self, reason: str) -> bool:
        """Credentials were refused: nothing starts. True when the block begins now."""
        began = self._blocked is None
        self._blocked = reason
        return began

    def unblock(self) -> None:
        """Try again: the next upload fetches a new token; if it fails, the block comes back."""
        self._blocked = None
