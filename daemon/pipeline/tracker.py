"""Following each submitted job until Symbl calls it final: polling, sped up by webhooks."""

from __future__ import annotations

import asyncio
import contextlib
import time

from daemon.http.metrics import Metrics
from daemon.journal import FileRecord, State
from daemon.logs import get_logger
from daemon.pipeline.coordination import Coordination
from daemon.pipeline.pollplan import Bounds, JobPolls, RequestBudget, Speed
from daemon.pipeline.scheduler import Scheduler
from daemon.pipeline.shell import Shell
from daemon.pipeline.supervisor import Supervisor
from daemon.symbl.client import AuthenticationError, FinalError, NotFoundError, TransientError

log = get_logger("symbl_inbox.tracker")

FAILED_LOCALLY = "failed_locally"
# The journal setting that keeps the account's speed across restarts (pollplan.Speed as JSON).
SPEED_SETTING = "tracking.speed"
_FINAL = ("completed", "failed", FAILED_LOCALLY)


class Tracker:
    """The jobs being followed, by file; each has a wake-up that a webhook sets."""

    def __init__(
        self, shell: Shell, scheduler: Scheduler, supervisor: Supervisor, metrics: Metrics
    ) -> None:
        self._shell = shell
        self._scheduler = scheduler
        # One host alone; ``Cluster.join`` puts the coordination of shared hosts here.
        self.coordination = Coordination()
        self._supervisor = supervisor
        self._metrics = metrics
        self.tracking: dict[int, asyncio.Task[None]] = {}
        self.job_wakeups: dict[str, asyncio.Event] = {}
        # The account's speed, learned from finished jobs: where to poll (see pollplan).
        self.speed = Speed()
        self._speed_read = False
        self._speed_lock = asyncio.Lock()
        self._polls: dict[str, JobPolls] = {}
        self._budget = RequestBudget(self._shell.config.tracking.max_polls_per_second)
        self._budget_rate = self._shell.config.tracking.max_polls_per_second

    def start(self, record: FileRecord) -> None:
        """Follow a submitted file's job (once; a file without a job id has none to follow)."""
        if record.id in self.tracking or record.job_id is None:
            return
        self.job_wakeups[record.job_id] = asyncio.Event()
        self._polls[record.job_id] = self._plan(record)
        self._scheduler.job_started(record.job_id)
        self.coordination.following(record.id, record.job_id)
        self.tracking[record.id] = self._supervisor.spawn(self._follow(record))

    def stop(self) -> list[asyncio.Task[None]]:
        """Stop following (shutdown): a job asked again after the restart loses nothing."""
        followed = list(self.tracking.values())
        for task in followed:
            task.cancel()
        return followed

    def job_ended(self, job_id: str) -> bool:
        """A webhook said this job ended: free its slot; check the job soon, not at the next poll.

        The account stops counting a job when it ends, so its slot goes to the next file at
        once; the check that decides the file's outcome (and its export) follows when the
        uploads pause. Should the check find the job still running, the slot is taken back.
        """
        event = self.job_wakeups.get(job_id)
        if event is None:
            return False
        event.set()
        self._polls[job_id].webhook(time.time())
        if self._scheduler.job_ended_by_webhook(job_id):
            self.coordination.job_ended(job_id)
            self._shell.pump()
        return True

    def webhook_said_ended(self, job_id: str) -> bool:
        """``job_ended`` for a webhook that reached this host: a job it does not follow may be
        another host's, which is told (several hosts)."""
        if self.job_ended(job_id):
            return True
        self.coordination.announce_job_ended(job_id)
        return False

    async def _follow(self, record: FileRecord) -> None:
        assert record.job_id is not None
        polls = self._polls[record.job_id]
        wakeup = self.job_wakeups[record.job_id]
        try:
            await self._read_speed()
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), timeout=self._wait(polls))
                wakeup.clear()
                if self._scheduler.ended_by_webhook(record.job_id):
                    await self._scheduler.wait_for_quiet_uploads()  # its slot is free already
                await self._shell.state_room()  # its answer could not be committed
                asked_at = time.time()
                status = await self._poll(record)
                if self._answered(polls, asked_at, status):
                    await self._shell.db.put_setting(SPEED_SETTING, self.speed.to_json())
                if status in _FINAL:
                    break
                if status is not None:
                    self._scheduler.job_still_running(record.job_id)
        finally:
            self._polls.pop(record.job_id, None)
            self.job_wakeups.pop(record.job_id, None)
            self.tracking.pop(record.id, None)
            self._scheduler.job_done(record.job_id)
            self.coordination.free(record.id)  # the account's slot, for every host
            self._shell.pump()
        await self._finished(record, status, polls.polls)

    def _plan(self, record: FileRecord) -> JobPolls:
        tracking = self._shell.config.tracking
        bounds = Bounds(
            initial=tracking.poll_initial_seconds,
            longest=tracking.poll_max_seconds,
            factor=tracking.poll_backoff_factor,
            shortest=min(tracking.poll_min_seconds, tracking.poll_initial_seconds),
        )
        audio = record.data.get("duration_seconds")
        audio_seconds = float(audio) if isinstance(audio, int | float) and audio > 0 else None
        return JobPolls(record.times.get("submitted", time.time()), audio_seconds, bounds)

    def _wait(self, polls: JobPolls) -> float:
        """Seconds until the next poll: where the job's end is likely, in the account's budget."""
        rate = self._shell.config.tracking.max_polls_per_second
        if rate != self._budget_rate:  # a reload changed it
            self._budget, self._budget_rate = RequestBudget(rate), rate
        now, webhooks = time.time(), self._shell.webhooks_on()
        window = None if webhooks else self.speed.expected(polls.audio_seconds)
        wanted = polls.next_at(now, window, webhooks=webhooks)
        return self._budget.grant(wanted, now) - now

    async def _read_speed(self) -> None:
        """Once, before the first plan: what earlier runs learned of the account's speed."""
        async with self._speed_lock:
            if self._speed_read:
                return
            try:
                known = Speed.from_json(await self._shell.db.setting(SPEED_SETTING))
            except ValueError as error:
                log.warning(
                    "job_speed_unreadable",
                    setting=SPEED_SETTING,
                    error=str(error),
                    message="The account's speed kept in the journal cannot be read; it is "
                    "learned again from the next jobs.",
                )
                known = Speed()
            self.speed, self._speed_read = known, True
            log.debug("job_speed_known", jobs=len(known.lessons))

    def _answered(self, polls: JobPolls, asked_at: float, status: str | None) -> bool:
        """Note the answer; True when a completed job taught the account's speed.

        A running answer bounds the end from below at the moment the question left; a final
        one from above at the moment the answer came.
        """
        final = status in _FINAL
        lesson = polls.asked(
            time.time() if final else asked_at, final=final, answered=status is not None
        )
        if status != "completed" or lesson is None or not self.speed.learn(lesson):
            return False
        log.debug(
            "job_speed_learned",
            audio_seconds=lesson.audio_seconds,
            low=lesson.low,
            high=lesson.high,
        )
        return True

    async def _poll(self, record: FileRecord) -> str | None:
        assert record.job_id is not None
        try:
            status = await self._shell.client.job_status(record.job_id)
        except NotFoundError as error:
            await self._shell.fail_http(record, "unknown_job", error)
            return FAILED_LOCALLY
        except TransientError as error:
            log.warning("job_poll_deferred", job_id=record.job_id, error=error.message)
            self._shell.api_answer(error)
            return None
        except AuthenticationError as error:
            self._shell.credentials_refused(error)
            return None
        except FinalError as error:
            log.warning("job_poll_refused", job_id=record.job_id, error=error.message)
            self._shell.api_answer(error)
            return None
        self._shell.api_answer()
        if status != record.data.get("job_status"):
            # Kept in memory only: the final state is committed with it, and after a crash the
            # job is simply asked again.
            record.data["job_status"] = status
            record.stamp(status)
        return status

    async def _finished(self, record: FileRecord, status: str | None, polls: int) -> None:
        submitted = record.times.get("submitted")
        if status in ("completed", "failed") and submitted is not None:
            self._metrics.job_finished(record.inbox, status, time.time() - submitted)
        if status == "completed":
            # Committed together with the filing plan when it is filed; a crash before that
            # only means the job is asked again.
            record.state = State.COMPLETED
            log.info("job_completed", file=record.rel_path, job_id=record.job_id, polls=polls)
            await self._scheduler.wait_for_quiet_uploads()
            await self._shell.file(record)
        elif status == "failed":
            record.data["message"] = (
                "Symbl reports the job as failed; the API gives no reason. Use "
                "`symbl-inbox retry` to send the file again."
            )
            await self._shell.fail(record, "job_failed", record.data["message"])
