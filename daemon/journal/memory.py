"""A journal in memory: the Journal protocol without a store, for unit tests of the stages."""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from daemon.model import ActiveFile, ConversationRecord, FileRecord, Kind, PruneCursor, State

if TYPE_CHECKING:
    from daemon.journal.base import Journal
    from daemon.journal.sqlite import SqliteJournal


class MemoryJournal:
    """Keeps copies, as a real store does: a record changes only when it is saved."""

    def __init__(self) -> None:
        self._files: dict[int, FileRecord] = {}
        self._conversations: dict[tuple[str, str], ConversationRecord] = {}
        # Kept with every write, as a real store keeps them; pruning does not lower them.
        self._counts: dict[tuple[str, str], int] = {}
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
        kept = copy.deepcopy((self._files, self._conversations, self._counts))
        try:
            yield
        except BaseException:
            self._files, self._conversations, self._counts = kept
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
        self._count(record, 1)
        return record

    async def save(self, record: FileRecord) -> bool:
        before = self._files.get(record.id)
        if before is not None:
            self._count(before, -1)
            self._files[record.id] = copy.deepcopy(record)
            self._count(record, 1)
        return True

    async def forget(self, record: FileRecord) -> None:
        before = self._files.pop(record.id, None)
        if before is not None and before.state is not State.FILED:
            self._count(before, -1)

    def _count(self, record: FileRecord, step: int) -> None:
        key = (record.inbox, _counted_as(record))
        self._counts[key] = self._counts.get(key, 0) + step

    async def get(self, file_id: int) -> FileRecord | None:
        record = self._files.get(file_id)
        return copy.deepcopy(record) if record is not None else None

    def _where(self, keep: Callable[[FileRecord], bool]) -> list[FileRecord]:
        return [copy.deepcopy(r) for _, r in sorted(self._files.items()) if keep(r)]

    async def active(self, inbox: str | None = None) -> list[FileRecord]:
        return self._where(
            lambda r: r.state is not State.FILED and (inbox is None or r.inbox == inbox)
        )

    async def active_files(self, inbox: str | None = None) -> list[ActiveFile]:
        return [
            ActiveFile(r.id, r.inbox, r.rel_path, r.state, r.size, r.mtime_ns, r.conversation_key)
            for r in await self.active(inbox)
        ]

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
        return {key: count for key, count in self._counts.items() if count != 0}

    async def recent_failures(self, limit: int = 20) -> list[FileRecord]:
        failed = self._where(lambda r: r.outcome == "failed")
        return list(reversed(failed))[:limit]

    async def prune_filed(
        self,
        before: float,
        keep_twins_in: Collection[str],
        limit: int,
        after: PruneCursor | None = None,
    ) -> tuple[int, PruneCursor | None]:
        # The memory store has no updated_at column: a record's last stamp stands for it.
        filed = sorted(
            (_last_written(r), r.id)
            for r in self._files.values()
            if r.state is State.FILED and _last_written(r) < before
        )
        examined = [entry for entry in filed if after is None or entry > after][:limit]
        deleted = 0
        for _, file_id in examined:
            record = self._files[file_id]
            if not await self._needed(record, keep_twins_in):
                del self._files[file_id]
                deleted += 1
        cursor = examined[-1] if len(examined) == limit else None
        return deleted, cursor

    async def _needed(self, record: FileRecord, keep_twins_in: Collection[str]) -> bool:
        """What ``Journal.prune_filed`` keeps: a conversation's latest filed part, and the first
        done file of each content in the inboxes named."""
        if record.conversation_key is not None:
            parts = [
                r.id
                for r in self._files.values()
                if (r.inbox, r.conversation_key) == (record.inbox, record.conversation_key)
                and r.state is State.FILED
            ]
            if record.id == max(parts):
                return True
        if (
            record.inbox in keep_twins_in
            and record.outcome == "done"
            and record.sha256 is not None
            and record.conversation_id is not None
        ):
            first = await self.completed_with_sha(record.inbox, record.sha256, exclude_id=-1)
            return first is not None and first.id == record.id
        return False

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


def _counted_as(record: FileRecord) -> str:
    return f"filed_{record.outcome or ''}" if record.state is State.FILED else record.state.value


def _last_written(record: FileRecord) -> float:
    return max(record.times.values(), default=0.0)


if TYPE_CHECKING:  # both stores are checked against the protocol
    _MEMORY: type[Journal] = MemoryJournal
    _SQLITE: type[Journal] = SqliteJournal
