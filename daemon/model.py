"""The typed data every stage passes on: a file's state and kind, its record, its conversation."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple


class State(StrEnum):
    WAITING = "waiting"
    READY = "ready"
    HELD = "held"
    UPLOADING = "uploading"
    SUBMITTED = "submitted"
    COMPLETED = "completed"
    FAILED = "failed"
    FILED = "filed"


ACTIVE_STATES = tuple(state for state in State if state is not State.FILED)
FINAL_STATES = (State.COMPLETED, State.FAILED)


# Where retention goes on from: the (updated_at, id) of the last filed row it examined.
PruneCursor = tuple[float, int]


class Kind(StrEnum):
    AUDIO = "audio"
    URL = "url"


@dataclass
class FileRecord:
    """One file's row. ``data`` holds what is read back whole: params, timestamps, attempts."""

    id: int
    inbox: str
    rel_path: str
    kind: Kind
    size: int
    mtime_ns: int
    state: State
    profile: str | None = None
    sha256: str | None = None
    conversation_key: str | None = None
    part: int | None = None
    conversation_id: str | None = None
    job_id: str | None = None
    outcome: str | None = None
    reason: str | None = None
    filed_path: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def stamp(self, stage: str, when: float | None = None) -> None:
        """Record when a stage was reached (``seen``, ``ready``, ``submitted``, ...)."""
        self.data.setdefault("times", {})[stage] = when if when is not None else time.time()

    @property
    def times(self) -> dict[str, float]:
        times: dict[str, float] = self.data.setdefault("times", {})
        return times


class ActiveFile(NamedTuple):
    """What a start needs of a file not yet filed, without its record's data (a restart in the
    middle of a backlog of 100k files read every record whole, three times)."""

    id: int
    inbox: str
    rel_path: str
    state: State
    size: int
    mtime_ns: int
    conversation_key: str | None


@dataclass
class ConversationRecord:
    """A conversation key's lasting mapping to a Symbl conversation, and its progress."""

    inbox: str
    key: str
    conversation_id: str | None = None
    # The highest part number that has been dealt with (submitted, or finally rejected).
    last_part_done: int = 0
    # The highest part number handed out, for parts that arrive without a number.
    last_part_assigned: int = 0
    rejected: bool = False
    data: dict[str, Any] = field(default_factory=dict)
