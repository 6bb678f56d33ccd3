"""The scheduler: fairness across inboxes, job and upload caps, the 429 pause, the credential
block, and work that uploads do not wait for (checks, filing, admission) yielding to them."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from daemon.journal import Kind, MemoryJournal, State
from daemon.pipeline import scheduler as scheduler_module
from daemon.pipeline.scheduler import PAUSE_CAP_SECONDS, Scheduler


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def journal() -> MemoryJournal:
    return MemoryJournal()


def make(
    clock: Clock, *, jobs: int = 50, uploads: int = 4, inboxes: tuple[str, ...] = ()
) -> Scheduler:
    scheduler = Scheduler(max_jobs=jobs, max_uploads=uploads, clock=clock)
    for inbox in inboxes:
        scheduler.add_inbox(inbox)
    return scheduler


def uploading(clock: Clock) -> Scheduler:
    """A scheduler with one upload in flight, after the pump that started it."""
    scheduler = make(clock)
    scheduler.upload_started(1)
    scheduler.pumped()
    return scheduler


async def ready(journal: MemoryJournal, scheduler: Scheduler, inbox: str, name: str) -> int:
    record = await journal.add_file(inbox, name, Kind.AUDIO, 1, 1, State.READY)
    scheduler.enqueue(inbox, record.id)
    return record.id


async def taken(journal: MemoryJournal, scheduler: Scheduler) -> list[str]:
    names = []
    while (record := await scheduler.take_next(journal)) is not None:
        names.append(f"{record.inbox}/{record.rel_path}")
    return names


class TestFairness:
    async def test_round_robin_across_inboxes_oldest_first_within_one(
        self, clock: Clock, journal: MemoryJournal
    ) -> None:
        scheduler = make(clock, inboxes=("a", "b"))
        for name in ("1", "2", "3"):
            await ready(journal, scheduler, "a", name)
        await ready(journal, scheduler, "b", "1")
        assert await taken(journal, scheduler) == ["a/1", "b/1", "a/2", "a/3"]

    async def test_a_file_no_longer_ready_is_passed_over(
        self, clock: Clock, journal: MemoryJournal
    ) -> None:
        scheduler = make(clock, inboxes=("a",))
        first = await ready(journal, scheduler, "a", "1")
        await ready(journal, scheduler, "a", "2")
        record = await journal.get(first)
        assert record is not None
        record.state = State.FAILED
        await journal.save(record)
        assert await taken(journal, scheduler) == ["a/2"]

    async def test_a_retried_file_goes_first_and_a_removed_inbox_takes_nothing(
        self, clock: Clock, journal: MemoryJournal
    ) -> None:
        scheduler = make(clock, inboxes=("a", "b"))
        await ready(journal, scheduler, "a", "1")
        again = await journal.add_file("a", "0", Kind.AUDIO, 1, 1, State.READY)
        assert scheduler.enqueue("a", again.id, front=True)
        scheduler.remove_inbox("b")
        assert not scheduler.enqueue("b", again.id)
        assert await taken(journal, scheduler) == ["a/0", "a/1"]

    async def test_a_changed_file_leaves_the_queue(
        self, clock: Clock, journal: MemoryJournal
    ) -> None:
        scheduler = make(clock, inboxes=("a",))
        first = await ready(journal, scheduler, "a", "1")
        scheduler.discard("a", first)
        assert scheduler.ready_count() == 0


class TestCaps:
    def test_uploads_stop_at_the_upload_cap(self, clock: Clock) -> None:
        scheduler = make(clock, uploads=2)
        scheduler.upload_started(1)
        assert scheduler.can_start()
        scheduler.upload_started(2)
        assert not scheduler.can_start()
        scheduler.upload_ended(1)
        assert scheduler.can_start()

    def test_running_jobs_hold_job_slots_until_a_webhook_or_a_check_ends_them(
        self, clock: Clock
    ) -> None:
        scheduler = make(clock, jobs=2)
        scheduler.job_started("j1")
        scheduler.job_started("j2")
        assert not scheduler.can_start()
        assert scheduler.job_ended_by_webhook("j1")
        assert not scheduler.job_ended_by_webhook("j1"), "a second webhook frees nothing more"
        assert not scheduler.job_ended_by_webhook("unknown")
        assert scheduler.can_start()
        scheduler.job_still_running("j1")  # the check found it running: the slot is taken back
        assert not scheduler.can_start()
        scheduler.job_done("j1")
        assert scheduler.can_start()
        assert scheduler.jobs_in_flight() == 1

    @pytest.mark.parametrize(
        ("ready_files", "in_flight", "enough"),
        [(3, 0, False), (50, 0, True), (4, 46, True), (3, 47, False)],
    )
    async def test_admission_yields_once_the_ready_files_fill_the_free_slots(
        self, clock: Clock, journal: MemoryJournal, ready_files: int, in_flight: int, enough: bool
    ) -> None:
        # 50 jobs and 4 uploads at once (the defaults); in_flight jobs hold slots already.
        scheduler = make(clock, inboxes=("inbox",))
        for index in range(ready_files):
            await ready(journal, scheduler, "inbox", str(index))
        for index in range(in_flight):
            scheduler.job_started(f"job-{index}")
        assert scheduler.enough_ready() is enough


class TestRateLimit:
    def test_a_429_learns_the_cap_and_pauses_once_for_uploads_that_hear_it_together(
        self, clock: Clock
    ) -> None:
        scheduler = make(clock, jobs=10)
        for index in range(4):
            scheduler.job_started(f"j{index}")
        scheduler.upload_started(1)
        scheduler.upload_started(2)
        pause = scheduler.rate_limited()
        assert pause is not None and pause.seconds == 1.0 and pause.job_cap == 5
        assert scheduler.rate_limited() is None, "the second 429 of the same moment"
        assert not scheduler.can_start() and scheduler.paused()
        clock.now += 1.0
        assert not scheduler.paused()

    def test_pauses_grow_while_429s_go_on_and_reset_after_a_submission(self, clock: Clock) -> None:
        scheduler = make(clock)
        seconds = []
        for _ in range(8):
            pause = scheduler.rate_limited()
            assert pause is not None
            seconds.append(pause.seconds)
            clock.now += pause.seconds
        assert seconds == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, PAUSE_CAP_SECONDS, PAUSE_CAP_SECONDS]
        scheduler.submitted()
        pause = scheduler.rate_limited()
        assert pause is not None and pause.seconds == 1.0

    def test_a_job_ending_ends_the_pause(self, clock: Clock) -> None:
        scheduler = make(clock)
        scheduler.job_started("j1")
        scheduler.job_started("j2")
        assert scheduler.rate_limited() is not None
        assert scheduler.pause_remaining() == 1.0
        scheduler.job_done("j1")
        assert scheduler.pause_remaining() == 0.0 and scheduler.can_start() is False
        # j2 still runs and the cap learned was 1: the cap holds until it is probed again.
        assert scheduler.job_cap == 1

    def test_the_cap_grows_back_one_at_a_time_once_429s_stop(self, clock: Clock) -> None:
        scheduler = make(clock, jobs=3)
        assert scheduler.rate_limited() is not None
        assert scheduler.job_cap == 1
        scheduler.submitted()
        assert scheduler.job_cap == 1, "too soon after the 429"
        clock.now += 31.0
        scheduler.submitted()
        scheduler.submitted()
        scheduler.submitted()
        assert scheduler.job_cap == 3, "never above the configured cap"


class TestCredentials:
    def test_refused_credentials_block_every_start_until_unblocked(self, clock: Clock) -> None:
        scheduler = make(clock)
        assert scheduler.block("401: bad secret")
        assert not scheduler.block("401: bad secret"), "the block began once"
        assert scheduler.blocked == "401: bad secret"
        assert not scheduler.can_start()
        scheduler.unblock()
        assert scheduler.can_start()

    def test_new_settings_lift_the_block_and_forget_the_learned_cap(self, clock: Clock) -> None:
        scheduler = make(clock, jobs=5)
        scheduler.block("401")
        assert scheduler.rate_limited() is not None
        scheduler.configure(max_jobs=7, max_uploads=4)
        assert scheduler.blocked is None and scheduler.job_cap == 7


class TestYieldingToUploads:
    async def test_with_no_uploads_in_flight_filing_goes_at_once(self, clock: Clock) -> None:
        scheduler = make(clock)
        scheduler.pumped()
        await asyncio.wait_for(scheduler.wait_for_quiet_uploads(), 1.0)

    async def test_filing_waits_until_the_uploads_in_flight_end(self, clock: Clock) -> None:
        scheduler = make(clock)
        scheduler.upload_started(1)
        scheduler.pumped()
        waiting = asyncio.create_task(scheduler.wait_for_quiet_uploads())
        for _ in range(3):  # loop turns, not time: a waiter with nothing to wait for is done
            await asyncio.sleep(0)
        assert not waiting.done()
        scheduler.upload_ended(1)
        scheduler.pumped()  # what the upload's end runs
        await asyncio.wait_for(waiting, 1.0)

    async def test_work_held_back_starts_one_piece_at_a_time_when_the_uploads_pause(
        self, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(scheduler_module, "YIELD_PACE_SECONDS", 0.05)
        scheduler = uploading(clock)
        loop = asyncio.get_running_loop()
        started: list[float] = []

        async def piece() -> None:
            await scheduler.wait_for_quiet_uploads()
            started.append(loop.time())

        pieces = [asyncio.create_task(piece()) for _ in range(3)]
        for _ in range(3):
            await asyncio.sleep(0)
        assert started == []
        scheduler.upload_ended(1)
        scheduler.pumped()
        await asyncio.wait_for(asyncio.gather(*pieces), 2.0)
        gaps = [later - earlier for earlier, later in itertools.pairwise(started)]
        assert len(started) == 3 and min(gaps) >= 0.045, gaps

    async def test_a_steady_stream_of_uploads_holds_filing_back_only_so_long(
        self, clock: Clock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(scheduler_module, "FILING_YIELD_SECONDS", 0.1)
        scheduler = uploading(clock)
        await asyncio.wait_for(scheduler.wait_for_quiet_uploads(), 1.0)
        assert scheduler.uploads_in_flight == 1, "it went ahead while the upload was in flight"
