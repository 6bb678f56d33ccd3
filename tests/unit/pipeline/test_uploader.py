"""The uploader: what it makes of each answer to a submission (URL drops, so no file is read).

Accepted: recorded and followed. Refused credentials: every upload waits, the file first in
line. 429: a pause, the file first in line. No answer: sent again later. A final refusal:
failed with its reason.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from async_waiting import wait_until

from daemon.config.model import TrackingSettings
from daemon.fsboundary import Boundaries
from daemon.http.metrics import Metrics
from daemon.journal import FileRecord, Kind, MemoryJournal, State
from daemon.pipeline.conversations import Conversations, Decision
from daemon.pipeline.scheduler import Scheduler
from daemon.pipeline.supervisor import Supervisor
from daemon.pipeline.tracker import Tracker
from daemon.pipeline.uploader import Uploader
from daemon.stalls import StallBoard, StallKind
from daemon.symbl.errors import (
    Attempt,
    AuthenticationError,
    FinalError,
    NotFoundError,
    RateLimitedError,
    Submission,
    SymblError,
    TransientError,
)

URL = "https://example.invalid/talk.mp3"


class Symbl:
    """Answers submissions with one scripted answer; keeps what it was sent."""

    def __init__(self, answer: SymblError | None = None) -> None:
        self.answer = answer
        self.sent: list[tuple[str, dict[str, Any], str | None]] = []

    async def submit_url(
        self, url: str, params: dict[str, Any], *, conversation_id: str | None = None
    ) -> Submission:
        self.sent.append((url, params, conversation_id))
        if self.answer is not None:
            raise self.answer
        attempt = Attempt(1.0, 2.0, 201, None)
        return Submission("conv-1", "job-1", None, None, 201, (attempt,))

    async def job_status(self, job_id: str) -> str:
        await asyncio.Event().wait()  # never final: the test looks at the submission only
        return "in_progress"


class Daemon:
    """The part of the daemon's Shell the uploader asks of; failures are kept, not filed."""

    def __init__(self, client: Symbl) -> None:
        self.client = client
        self.db = MemoryJournal()
        self.conversations = Conversations(self.db)
        tracking = TrackingSettings(
            poll_initial_seconds=60.0, poll_max_seconds=60.0, poll_backoff_factor=1.0
        )
        self.config = SimpleNamespace(http=None, tracking=tracking)
        self.failed: list[tuple[str, str]] = []
        self.uploader: Uploader | None = None

    def has_room(self) -> bool:
        return True

    async def state_room(self) -> None:
        return None

    def webhooks_on(self) -> bool:
        return False

    def pump(self) -> None:
        assert self.uploader is not None
        self.uploader.pump()

    def api_answer(self, error: SymblError | None = None) -> None:
        return None

    def credentials_refused(self, error: SymblError) -> None:
        assert self.uploader is not None
        self.uploader.credentials_refused(error)

    async def part_settled(self, record: FileRecord, *, accepted: bool) -> None:
        await self.act(await self.conversations.settled(record, accepted=accepted))

    async def act(self, decisions: list[Decision]) -> None:
        assert not decisions

    async def fail(self, record: FileRecord, reason: str, message: str) -> None:
        record.state, record.reason = State.FAILED, reason
        await self.db.save(record)
        self.failed.append((record.rel_path, reason))

    async def fail_http(self, record: FileRecord, reason: str, error: SymblError) -> None:
        await self.fail(record, reason, error.message)


class Setup:
    def __init__(self, answer: SymblError | None) -> None:
        self.daemon = Daemon(Symbl(answer))
        self.scheduler = Scheduler(max_jobs=10, max_uploads=2)
        self.scheduler.add_inbox("in")
        self.stalls = StallBoard()
        supervisor = Supervisor()
        self.supervisor = supervisor
        # A stand-in for the daemon: the stages ask only what the Shell protocol offers.
        shell: Any = self.daemon
        self.tracker = Tracker(shell, self.scheduler, supervisor, Metrics())
        self.boundaries = Boundaries()
        self.uploader = Uploader(
            shell, self.scheduler, supervisor, self.tracker, self.boundaries, self.stalls
        )
        self.daemon.uploader = self.uploader

    async def drop(self) -> FileRecord:
        record = await self.daemon.db.add_file("in", "talk.url", Kind.URL, 40, 1, State.WAITING)
        record.data.update(url=URL, params={"languageCode": "en-US"})
        await self.uploader.make_ready(record)
        return record

    async def state(self, record: FileRecord) -> State:
        again = await self.daemon.db.get(record.id)
        assert again is not None
        return again.state

    async def settled(self) -> None:
        await wait_until(lambda: bool(self.daemon.client.sent) and not self.uploader.uploading)

    async def close(self) -> None:
        self.supervisor.cancel_timers()
        await self.supervisor.end_all(*self.tracker.stop())
        self.boundaries.close()


@pytest.fixture
async def made() -> Any:
    setups: list[Setup] = []

    def make(answer: SymblError | None = None) -> Setup:
        setups.append(Setup(answer))
        return setups[-1]

    yield make
    for setup in setups:
        await setup.close()


async def test_an_accepted_submission_is_recorded_and_followed(made: Any) -> None:
    setup = made()
    record = await setup.drop()
    await setup.settled()
    again = await setup.daemon.db.get(record.id)
    assert again is not None and again.state is State.SUBMITTED
    assert (again.job_id, again.conversation_id) == ("job-1", "conv-1")
    assert again.data["attempt_log"][0]["status"] == 201
    ((url, params, target),) = setup.daemon.client.sent
    assert url == URL and params["name"] == "talk.url" and target is None
    assert record.id in setup.tracker.tracking


async def test_refused_credentials_block_every_upload_and_keep_the_file_first(made: Any) -> None:
    setup = made(AuthenticationError("401: bad secret", status=401))
    record = await setup.drop()
    await setup.settled()
    assert setup.scheduler.blocked == "401: bad secret"
    assert setup.stalls.has(StallKind.CREDENTIALS_REFUSED)
    assert await setup.state(record) is State.READY and setup.scheduler.ready_count() == 1


async def test_a_429_pauses_submissions_and_keeps_the_file_first(made: Any) -> None:
    setup = made(RateLimitedError("429", status=429))
    record = await setup.drop()
    await setup.settled()
    assert setup.scheduler.paused() and setup.stalls.has(StallKind.RATE_LIMITED)
    assert await setup.state(record) is State.READY and setup.scheduler.ready_count() == 1


async def test_no_answer_sends_the_file_again_later(made: Any) -> None:
    setup = made(TransientError("connection reset"))
    record = await setup.drop()
    await setup.settled()
    assert await setup.state(record) is State.READY and not setup.daemon.failed
    assert setup.scheduler.ready_count() == 0, "it waits for its back-off, not in the queue"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (FinalError("413", status=413), "too_large"),
        (FinalError("400: bad parameter", status=400), "rejected_by_api"),
    ],
)
async def test_a_final_refusal_fails_the_file_with_its_reason(
    made: Any, error: SymblError, reason: str
) -> None:
    setup = made(error)
    await setup.drop()
    await setup.settled()
    assert setup.daemon.failed == [("talk.url", reason)]


async def test_an_unknown_conversation_fails_an_appended_part(made: Any) -> None:
    setup = made(NotFoundError("404: no such conversation", status=404))
    record = await setup.drop()
    record.conversation_key, record.part = "talk", 2
    await setup.daemon.db.save(record)
    conversation = await setup.daemon.db.conversation("in", "talk")
    conversation.conversation_id, conversation.last_part_done = "conv-0", 1
    await setup.daemon.db.save_conversation(conversation)
    await setup.settled()
    assert setup.daemon.client.sent[0][2] == "conv-0"
    assert setup.daemon.failed == [("talk.url", "unknown_conversation")]


class TakenOverWhile(MemoryJournal):
    """A cluster's journal once another host took the file over: the write of a record in
    ``state`` is refused, as the database refuses a host's late write to a file it lost."""

    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state

    async def save(self, record: FileRecord) -> bool:
        if record.state is self.state:
            return False
        return await super().save(record)


def taken_over_while(made: Any, state: State) -> tuple[Setup, list[int]]:
    """A setup whose journal refuses the write of ``state``, and the files it let go."""
    setup: Setup = made()
    setup.daemon.db = TakenOverWhile(state)
    lost: list[int] = []
    setup.uploader.coordination.on_lost = lost.extend
    return setup, lost


async def test_a_file_taken_over_before_its_upload_began_is_not_sent_here(made: Any) -> None:
    setup, lost = taken_over_while(made, State.UPLOADING)
    record = await setup.drop()
    await wait_until(lambda: lost == [record.id] and not setup.uploader.uploading)
    assert setup.daemon.client.sent == [], "the host that took it over sends it"
    assert await setup.state(record) is State.READY and record.id not in setup.tracker.tracking


async def test_a_file_taken_over_while_it_was_sent_is_not_followed_here(made: Any) -> None:
    setup, lost = taken_over_while(made, State.SUBMITTED)
    record = await setup.drop()
    await setup.settled()
    assert lost == [record.id]
    assert record.id not in setup.tracker.tracking, "the host that took it over goes on"
