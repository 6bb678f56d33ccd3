"""Everything the emulator remembers: tokens, conversations, jobs, submissions and requests.

One ``EmulatorState`` is shared by the server's event loop and the test thread, so every access
goes through one lock. Job statuses follow the clock rather than timers: ``advance`` works out,
from the creation times, which transitions have happened by now, so ``GET /v1/job`` is exact
however late a background tick runs. Jobs of one conversation run one after another, in order.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, NamedTuple

from daemon.emulator.settings import EmulatorSettings

JobStatus = Literal["scheduled", "in_progress", "completed", "failed"]
UNFINISHED: tuple[JobStatus, ...] = ("scheduled", "in_progress")
_WAIT_SLICE = 0.02


@dataclass(frozen=True)
class SubmissionRecord:
    """One accepted submit call, as the server received it."""

    order: int
    method: Literal["POST", "PUT"]
    path: str
    kind: Literal["file", "url"]
    conversation_id: str
    job_id: str
    sha256: str | None
    size: int | None
    url: str | None
    params: dict[str, Any]
    content_type: str | None
    auth: Literal["bearer", "x-api-key"]
    received_at: float
    lost_response: bool
    # The query string exactly as it arrived, pair by pair, to check how a client encodes.
    raw_query: tuple[tuple[str, str], ...] = ()

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["raw_query"] = [list(pair) for pair in self.raw_query]
        return data


class RequestRecord(NamedTuple):
    """One API request: ``status`` is None when the connection was dropped instead."""

    method: str
    path: str
    status: int | None
    fault: str | None
    # The Via header a forwarding proxy adds, so tests can tell what came through one.
    via: str | None = None


@dataclass(frozen=True)
class AudioPart:
    """What one submission contributed to its conversation, for the generated results."""

    label: str
    seconds: float
    channels: int
    params: dict[str, Any]


@dataclass
class Job:
    id: str
    conversation_id: str
    part: AudioPart
    created_at: float
    run_seconds: float
    scheduled_seconds: float
    ends_failed: bool
    webhook_url: str | None
    status: JobStatus = "scheduled"
    start_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status not in UNFINISHED


@dataclass
class Conversation:
    id: str
    name: str
    created_at: float
    jobs: list[Job] = field(default_factory=list)


@dataclass
class Token:
    value: str
    app_id: str
    expires_at: float
    revoked: bool = False

    def valid_at(self, now: float) -> bool:
        return not self.revoked and now < self.expires_at


class StatusChange(NamedTuple):
    job_id: str
    status: JobStatus
    webhook_url: str


@dataclass(frozen=True)
class WebhookDelivery:
    """One status update POSTed to a webhook: how many tries it took, and whether it landed."""

    job_id: str
    status: JobStatus
    url: str
    attempts: int
    answered: bool


class EmulatorState:
    """The emulator's memory and its rules; safe to use from any thread."""

    def __init__(self, settings: EmulatorSettings) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._settings = settings
        self._ids = random.Random(settings.seed)
        self._faults = random.Random(None if settings.seed is None else settings.seed + 1)
        self._spread = random.Random(None if settings.seed is None else settings.seed + 2)
        self._tokens: dict[str, Token] = {}
        self._conversations: dict[str, Conversation] = {}
        self._jobs: dict[str, Job] = {}
        self._unfinished: list[Job] = []
        self._status_changes: list[StatusChange] = []
        self.submissions: list[SubmissionRecord] = []
        self.requests: list[RequestRecord] = []
        self.webhook_deliveries: list[WebhookDelivery] = []
        # Set by the server: wakes its loop when jobs or webhooks need attention.
        self.on_change: Callable[[], None] = lambda: None

    # ------------------------------------------------------------ settings

    @property
    def settings(self) -> EmulatorSettings:
        return self._settings

    @settings.setter
    def settings(self, value: EmulatorSettings) -> None:
        with self._lock:
            self._settings = value

    def update_settings(self, **changes: Any) -> EmulatorSettings:
        """Replace some settings at runtime; new values apply to the next request or job."""
        with self._lock:
            self._settings = self._settings.replace(**changes)
            if "seed" in changes and changes["seed"] is not None:
                self._faults.seed(changes["seed"] + 1)
                self._spread.seed(changes["seed"] + 2)
            return self._settings

    # ------------------------------------------------------------ chance

    def chance(self, rate: float) -> bool:
        """True with probability ``rate``, from the seeded generator."""
        if rate <= 0.0:
            return False
        with self._lock:
            return self._faults.random() < rate

    def choose(self, options: tuple[str, ...]) -> str:
        with self._lock:
            return self._faults.choice(options)

    # ------------------------------------------------------------ tokens

    def issue_token(self, app_id: str) -> tuple[str, float]:
        """A token for ``app_id`` and its remaining lifetime; a live cached one is reused."""
        now = time.time()
        with self._lock:
            for token in self._tokens.values():
                if token.app_id == app_id and token.valid_at(now):
                    return token.value, token.expires_at - now
            value = _jwt_like(app_id)
            ttl = self._settings.token_ttl
            self._tokens[value] = Token(value, app_id, now + ttl)
            return value, ttl

    def token_is_valid(self, value: str) -> bool:
        with self._lock:
            token = self._tokens.get(value)
            return token is not None and token.valid_at(time.time())

    def expire_all_tokens(self) -> None:
        """Every token issued so far stops working; the next call with one gets a 401."""
        with self._lock:
            for token in self._tokens.values():
                token.revoked = True

    # ------------------------------------------------------------ conversations and jobs

    def has_conversation(self, conversation_id: str) -> bool:
        with self._lock:
            return conversation_id in self._conversations

    def unfinished_jobs(self) -> int:
        with self._lock:
            self.advance()
            return len(self._unfinished)

    def create_job(
        self, conversation_id: str | None, part: AudioPart, name: str | None
    ) -> Job | None:
        """A new job (and conversation when ``conversation_id`` is None); None at the limit."""
        now = time.time()
        with self._lock:
            self.advance(now)
            if len(self._unfinished) >= self._settings.max_jobs:
                return None
            conversation = self._conversation_for(conversation_id, name, now)
            run_seconds, scheduled_seconds = self._settings.job_time(
                part.seconds, self._spread.uniform(-1.0, 1.0)
            )
            job = Job(
                id=str(uuid.UUID(int=self._ids.getrandbits(128), version=4)),
                conversation_id=conversation.id,
                part=part,
                created_at=now,
                run_seconds=run_seconds,
                scheduled_seconds=scheduled_seconds,
                ends_failed=self.chance(self._settings.job_failure_rate),
                webhook_url=part.params.get("webhookUrl"),
            )
            conversation.jobs.append(job)
            self._jobs[job.id] = job
            self._unfinished.append(job)
            self._note_status(job)
            self.advance(now)
            self._notify()
            return job

    def _conversation_for(
        self, conversation_id: str | None, name: str | None, now: float
    ) -> Conversation:
        if conversation_id is not None:
            return self._conversations[conversation_id]
        new_id = str(self._ids.randrange(10**15, 10**16))
        conversation = Conversation(new_id, name or new_id, now)
        self._conversations[new_id] = conversation
        return conversation

    def job_times(self) -> list[dict[str, Any]]:
        """Every job's timing as it stands now: created, started, ended (None while running)."""
        with self._lock:
            self.advance()
            return [
                {
                    "id": job.id,
                    "conversation_id": job.conversation_id,
                    "audio_seconds": job.part.seconds,
                    "status": job.status,
                    "created_at": job.created_at,
                    "start_at": job.start_at,
                    "run_seconds": job.run_seconds,
                    "finished_at": job.finished_at,
                }
                for job in self._jobs.values()
            ]

    def job_status(self, job_id: str) -> JobStatus:
        """The job's status now; ``KeyError`` for a job nobody created."""
        with self._lock:
            self.advance()
            return self._jobs[job_id].status

    def conversation_snapshot(self, conversation_id: str) -> tuple[Conversation, list[Job]] | None:
        """The conversation and copies of its jobs as they stand now (None if unknown)."""
        with self._lock:
            self.advance()
            conversation = self._conversations.get(conversation_id)
            if conversation is None:
                return None
            jobs = [Job(**vars(job)) for job in conversation.jobs]
            return conversation, jobs

    def advance(self, now: float | None = None) -> None:
        """Apply every status change that has come due by ``now``, in creation order."""
        moment = time.time() if now is None else now
        with self._lock:
            changed = False
            for job in self._unfinished:
                changed |= self._advance_job(job, moment)
            if changed:
                self._unfinished = [job for job in self._unfinished if not job.finished]
                self._notify()

    def _advance_job(self, job: Job, now: float) -> bool:
        if job.start_at is None:
            job.start_at = self._start_time(job)
            if job.start_at is None:
                return False
        changed = False
        if job.status == "scheduled" and now >= job.start_at + job.scheduled_seconds:
            job.status = "in_progress"
            self._note_status(job)
            changed = True
        if job.status == "in_progress" and now >= job.start_at + job.run_seconds:
            job.status = "failed" if job.ends_failed else "completed"
            job.finished_at = job.start_at + job.run_seconds
            self._note_status(job)
            changed = True
        return changed

    def _start_time(self, job: Job) -> float | None:
        """When ``job`` may start: at once, or when the job before it in its conversation ends."""
        jobs = self._conversations[job.conversation_id].jobs
        position = jobs.index(job)
        if position == 0:
            return job.created_at
        previous = jobs[position - 1]
        if previous.finished_at is None:
            return None
        return max(previous.finished_at, job.created_at)

    def next_change_in(self) -> float | None:
        """Seconds until the next status change that the clock alone will bring, if any."""
        now = time.time()
        with self._lock:
            due = [
                job.start_at
                + (job.scheduled_seconds if job.status == "scheduled" else job.run_seconds)
                for job in self._unfinished
                if job.start_at is not None
            ]
        return max(0.0, min(due) - now) if due else None

    def _note_status(self, job: Job) -> None:
        if job.webhook_url:
            self._status_changes.append(StatusChange(job.id, job.status, job.webhook_url))

    def take_status_changes(self) -> list[StatusChange]:
        """The status changes not yet handed to the webhook sender, oldest first."""
        with self._lock:
            self.advance()
            taken, self._status_changes = self._status_changes, []
            return taken

    # ------------------------------------------------------------ records

    def record_submission(self, **fields: Any) -> SubmissionRecord:
        with self._lock:
            record = SubmissionRecord(order=len(self.submissions) + 1, **fields)
            self.submissions.append(record)
            self._notify()
            return record

    def record_webhook(self, delivery: WebhookDelivery) -> None:
        with self._lock:
            self.webhook_deliveries.append(delivery)
            self._notify()

    def record_request(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests.append(record)
            self._notify()

    # ------------------------------------------------------------ waiting

    def wait_for(self, predicate: Callable[[EmulatorState], bool], timeout: float) -> None:
        """Return once ``predicate(state)`` holds; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        # The predicate runs without the lock: it may well make HTTP calls to this emulator.
        while not predicate(self):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"emulator state did not reach the condition in {timeout}s")
            with self._changed:
                # Job statuses move with the clock, so look again even without a notification.
                self._changed.wait(min(remaining, _WAIT_SLICE))

    @contextmanager
    def locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def _notify(self) -> None:
        self._changed.notify_all()
        self.on_change()


def _jwt_like(app_id: str) -> str:
    """A token shaped like Symbl's JWTs (three base64url parts), opaque to clients."""

    def part(data: dict[str, Any]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    header = part({"alg": "HS256", "typ": "JWT"})
    claims = part({"sub": app_id[:64], "iat": int(time.time()), "jti": secrets.token_hex(8)})
    return f"{header}.{claims}.{secrets.token_urlsafe(32)}"
