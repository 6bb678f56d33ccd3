"""What the Symbl client answers with: submissions and attempts, the errors it raises, counters."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tenacity import RetryCallState


@dataclass(frozen=True)
class Attempt:
    """One HTTP exchange: wall-clock times, and the status or the error that ended it."""

    started_at: float
    finished_at: float
    status: int | None
    error: str | None


@dataclass(frozen=True)
class Submission:
    """What the API answered to an accepted submission, and every attempt it took."""

    conversation_id: str
    job_id: str
    sha256: str | None
    size: int | None
    status_code: int
    attempts: tuple[Attempt, ...]


class SymblError(Exception):
    """Base of every error this client raises; ``attempts`` lists the exchanges that led to it."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: Any = None,
        attempts: tuple[Attempt, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.attempts = attempts


class TransientError(SymblError):
    """Connection trouble, a timeout or a 5xx: try again later, never fail a file for it."""


class RateLimitedError(TransientError):
    """429: the account's concurrent-job limit is reached; pause new submissions."""


class FinalError(SymblError):
    """The API refused the request (4xx); sending it again will not help."""


class NotFoundError(FinalError):
    """404: unknown conversation (on a PUT) or unknown job."""


class AuthenticationError(FinalError):
    """The API refused the app's credentials; nothing works until they are fixed."""


class FileChangedError(SymblError):
    """The file's size changed while it was being uploaded; the daemon must check it again."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried inside one call."""

    attempts: int = 5
    initial: float = 0.5
    maximum: float = 30.0

    def wait(self, retry_state: RetryCallState) -> float:
        """Exponential backoff with "equal jitter": half of each wait is random, capped."""
        ceiling = min(self.maximum, self.initial * 2.0 ** (retry_state.attempt_number - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass
class ClientStats:
    """Counters for metrics; they only ever grow."""

    requests: int = 0
    responses: Counter[int] = field(default_factory=Counter)
    transport_errors: int = 0
    retries: int = 0
    bytes_uploaded: int = 0
    token_refreshes: int = 0
    auth_failures: int = 0
