"""The tracker: a webhook frees the job's slot at once and wakes the check; the check's answer
decides the file (filed when completed, failed when Symbl says failed or forgets the job)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from async_waiting import wait_until

from daemon.http.metrics import Metrics
from daemon.journal import FileRecord, Kind, MemoryJournal, State
from daemon.pipeline.scheduler import Scheduler
from daemon.pipeline.supervisor import Supervisor
from daemon.pipeline.tracker import Tracker
from daemon.symbl.errors import NotFoundError


class Symbl:
    """Answers job status checks from a script; counts them."""

    def __init__(self, *answers: str | Exception) -> None:
        self.answers = deque(answers)
        self.checks = 0

    async def job_status(self, job_id: str) -> str:
        self.checks += 1
        answer = self.answers.popleft() if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Daemon:
    """The part of the daemon's Shell the tracker asks of."""

    def __init__(self, client: Symbl, *, webhooks: bool = False, poll: float = 60.0) -> None:
        self.client = client
        self.db = MemoryJournal()
        tracking = SimpleNamespace(
            poll_initial_seconds=poll, poll_max_seconds=poll, poll_backoff_factor=1.0
        )
        self.config = SimpleNamespace(tracking=tracking)
        self._webhooks = webhooks
        self.filed: list[FileRecord] = []
        self.failed: list[tuple[FileRecord, str]] = []
        self.pumps = 0

    def webhooks_on(self) -> bool:
        return self._webhooks

    def pump(self) -> None:
        self.pumps += 1

    async def state_room(self) -> None:
        return None

    def api_answer(self, error: Any = None) -> None:
        return None

    def credentials_refused(self, error: Any) -> None:
        return None

    async def file(self, record: FileRecord) -> None:
        self.filed.append(record)

    def fail(self, record: FileRecord, reason: str, message: str) -> None:
        self.failed.append((record, reason))

    def fail_http(self, record: FileRecord, reason: str, error: Any) -> None:
        self.failed.append((record, reason))


async def submitted(daemon: Daemon, job_id: str = "job-1") -> FileRecord:
    record = await daemon.db.add_file("in", "a.wav", Kind.AUDIO, 1, 1, State.SUBMITTED)
    record.job_id = job_id
    record.stamp("submitted")
    return record


def tracker_for(daemon: Daemon) -> tuple[Tracker, Scheduler]:
    scheduler = Scheduler(max_jobs=1, max_uploads=1)
    # A stand-in for the daemon: the tracker asks only what the Shell protocol offers.
    return Tracker(daemon, scheduler, Supervisor(), Metrics()), scheduler  # type: ignore[arg-type]


async def test_a_final_webhook_frees_the_slot_and_the_check_files_the_job(tmp_path: Path) -> None:
    daemon = Daemon(Symbl("completed"), webhooks=True)
    tracker, scheduler = tracker_for(daemon)
    record = await submitted(daemon)
    tracker.start(record)
    assert not scheduler.can_start(), "the job holds the only slot"
    assert tracker.job_ended("job-1")
    assert scheduler.can_start(), "the slot is free before the check answers"
    await wait_until(lambda: bool(daemon.filed))
    assert daemon.filed[0].state is State.COMPLETED and daemon.client.checks == 1
    assert not tracker.tracking and not tracker.job_wakeups


async def test_a_webhook_for_a_job_not_followed_is_unknown() -> None:
    daemon = Daemon(Symbl("in_progress"))
    tracker, _ = tracker_for(daemon)
    assert not tracker.job_ended("someone-elses-job")


async def test_a_job_still_running_takes_its_slot_back() -> None:
    daemon = Daemon(Symbl("in_progress"), webhooks=True)
    tracker, scheduler = tracker_for(daemon)
    tracker.start(await submitted(daemon))
    tracker.job_ended("job-1")
    await wait_until(lambda: daemon.client.checks == 1)
    await wait_until(lambda: not scheduler.can_start())
    for task in tracker.stop():
        await asyncio.gather(task, return_exceptions=True)


async def test_failed_and_forgotten_jobs_fail_their_files() -> None:
    for answer, reason in (("failed", "job_failed"), (NotFoundError("gone"), "unknown_job")):
        daemon = Daemon(Symbl(answer), poll=0.01)
        tracker, _ = tracker_for(daemon)
        tracker.start(await submitted(daemon))
        await wait_until(daemon_failed(daemon))
        assert daemon.failed[0][1] == reason and not daemon.filed


def daemon_failed(daemon: Daemon) -> Callable[[], bool]:
    return lambda: bool(daemon.failed)
