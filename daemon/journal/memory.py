"""A journal in memory: the Journal protocol without a store, for unit tests of the stages."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from daemon.model import ConversationRecord, FileRecord, Kind, State

if TYPE_CHECKING:
    from daemon.journal.base import Journal
    from daemon.journal.sqlite import SqliteJournal


class MemoryJournal:
    """Keeps copies, as a real store does: a record changes only when it is saved."""

    def __init__(self) -> None:
        self._files: dict[int, FileRecord] = {}
        self._conversations: dict[tuple[str, str], ConversationRecord] = {}
        self._next_id = 1
        self._settings: dict[str, str] = {}
        self.on_full: Callable[[Exception], None] | None = None
        self.commits = 0

    @property
    def location(self) -> str:
        return "memory"

    def commit_per_turn(self, schedule: Callable[[Callable[[], None]], object]) -> None:
        return None

    async def commit(self) -> None:
        self.commits += 1

    async def try_commit(self) -> bool:
        await self.commit()
        return True

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        files, conversations = copy.deepcopy((self._files, self._conversations))
        try:
            yield
        except BaseException:
            self._files, self._conversations = files, conversations
            raise
        await self.commit()

    async def close(self) -> None:
        await self.commit()

    async def add_file(
        self, inbox: str, rel_path: str, kind: Kind, size: int, mtime_ns: int, state: State
    ) -> FileRecord:
        record = FileRecord(self._next_id, inbox, rel_path, kind, size, mtime_ns, state)
        record.stamp("seen")
        self._next_id += 1
        self._files[record.id] = copy.deepcopy(record)
        return record

    async def save(self, record: FileRecord) -> None:
        if record.id in self._files:
            self._files[record.id] = copy.deepcopy(record)

    async def forget(self, record: FileRecord) -> None:
        self._files.pop(record.id, None)

    async def get(self, file_id: int) -> FileRecord | None:
        record = self._files.get(file_id)
        return copy.deepcopy(record) if record is not None else None

    def _where(self, keep: Callable[[FileRecord], bool]) -> list[FileRecord]:
        return [copy.deepcopy(r) for _, r in sorted(self._files.items()) if keep(r)]

    async def active(self, inbox: str | None = None) -> list[FileRecord]:
        return self._where(
            lambda r: r.state is not State.FILED and (inbox is None or r.inbox == inbox)
        )

    async def in_states(self, states: Iterable[State]) -> list[FileRecord]:
        wanted = set(states)
        return self._where(lambda r: r.state in wanted)

    async def completed_with_sha(
        self, inbox: str, sha256: str, exclude_id: int
    ) -> FileRecord | None:
        found = self._where(
            lambda r: (
                r.inbox == inbox
                and r.sha256 == sha256
                and r.outcome == "done"
                and r.id != exclude_id
                and r.conversation_id is not None
            )
        )
        return found[0] if found else None

    async def parts_of(self, inbox: str, key: str) -> list[FileRecord]:
        return self._where(lambda r: r.inbox == inbox and r.conversation_key == key)

    async def counts(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for r in self._files.values():
            state = f"filed_{r.outcome}" if r.state is State.FILED else r.state.value
            counts[(r.inbox, state)] = counts.get((r.inbox, state), 0) + 1
        return counts

    async def recent_failures(self, limit: int = 20) -> list[FileRecord]:
        failed = self._where(lambda r: r.outcome == "failed")
        return list(reversed(failed))[:limit]

    async def conversation(self, inbox: str, key: str) -> ConversationRecord:
        found = self._conversations.get((inbox, key))
        return copy.deepcopy(found) if found is not None else ConversationRecord(inbox, key)

    async def save_conversation(self, record: ConversationRecord) -> None:
        self._conversations[(record.inbox, record.key)] = copy.deepcopy(record)

    async def conversations(self) -> list[ConversationRecord]:
        return [copy.deepcopy(c) for _, c in sorted(self._conversations.items())]

    async def filed_failure_at(self, inbox: str, filed_path: str) -> FileRecord | None:
        found = self._where(
            lambda r: (
                r.inbox == inbox
                and r.filed_path == filed_path
                and r.state is State.FILED
                and r.outcome == "failed"
            )
        )
        return found[-1] if found else None

    async def mark_retried(self, record: FileRecord, when: float | None = None) -> None:
        record.outcome = "retried"
        record.stamp("retried", when if when is not None else time.time())
        await self.save(record)

    async def setting(self, name: str) -> str | None:
        return self._settings.get(name)

    async def put_setting(self, name: str, value: str) -> None:
        self._settings[name] = value


if TYPE_CHECKING:  # both stores are checked against the protocol
    _MEMORY: type[Journal] = MemoryJournal
    _SQLITE: type[Journal] = SqliteJournal
