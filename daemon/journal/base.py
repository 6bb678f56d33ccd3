"""The Journal protocol: what every stage may ask of the store of files and conversations.

Written for more than one store: today's SQLite file in ``state_dir`` (``sqlite.py``), an
in-memory one for unit tests (``memory.py``), and next a PostgreSQL database that several hosts
share. So nothing here names a file or a path, and transactions are explicit: a store reached
over the network commits when told (``commit``, ``transaction``), or once per turn of the event
loop when ``commit_per_turn`` asks for it, never behind the caller's back. Every call that may
reach the store is a coroutine, so a round trip over the network never blocks the event loop;
a local store simply answers at once.

Records are copies: a stage changes the record it holds and ``save``s it; what another stage
reads is what was saved, never a shared object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from daemon.model import ConversationRecord, FileRecord, Kind, State


class Journal(Protocol):
    """The store of every file's record and every conversation's progress."""

    # Told, instead of an exception, when a commit at the end of a turn finds no room.
    on_full: Callable[[Exception], None] | None

    @property
    def location(self) -> str:
        """Where the store is, for people: a path, or a host and database (never a password)."""

    # ------------------------------------------------------------------ transactions

    def commit_per_turn(self, schedule: Callable[[Callable[[], None]], object]) -> None:
        """Let the writes of one loop turn share a commit; ``schedule`` is ``loop.call_soon``."""

    async def commit(self) -> None:
        """Commit what was written so far (before another process or thread acts on it)."""

    async def try_commit(self) -> bool:
        """``commit``, but a full store goes to ``on_full`` instead of raising: False then."""

    def transaction(self) -> AbstractAsyncContextManager[None]:
        """Group many writes into one commit; an exception inside rolls all of them back."""

    async def close(self) -> None:
        """Commit what is pending and let go of the store."""

    # ------------------------------------------------------------------ files

    async def add_file(
        self, inbox: str, rel_path: str, kind: Kind, size: int, mtime_ns: int, state: State
    ) -> FileRecord: ...

    async def save(self, record: FileRecord) -> None: ...

    async def forget(self, record: FileRecord) -> None:
        """Drop a row whose file vanished before anything was sent."""

    async def get(self, file_id: int) -> FileRecord | None: ...

    async def active(self, inbox: str | None = None) -> list[FileRecord]:
        """Every record not yet filed (optionally of one inbox), oldest first."""

    async def in_states(self, states: Iterable[State]) -> list[FileRecord]: ...

    async def completed_with_sha(
        self, inbox: str, sha256: str, exclude_id: int
    ) -> FileRecord | None:
        """The earliest file of this inbox with this content that reached done/."""

    async def parts_of(self, inbox: str, key: str) -> list[FileRecord]:
        """Every file of one conversation key, oldest first."""

    async def counts(self) -> dict[tuple[str, str], int]:
        """(inbox, state or ``filed_<outcome>``) -> number of files."""

    async def recent_failures(self, limit: int = 20) -> list[FileRecord]: ...

    # ------------------------------------------------------------------ conversations

    async def conversation(self, inbox: str, key: str) -> ConversationRecord:
        """The conversation's record; a fresh one (not yet saved) when the key is new."""

    async def save_conversation(self, record: ConversationRecord) -> None: ...

    async def conversations(self) -> list[ConversationRecord]: ...

    # ------------------------------------------------------------------ operator commands

    async def filed_failure_at(self, inbox: str, filed_path: str) -> FileRecord | None: ...

    async def mark_retried(self, record: FileRecord, when: float | None = None) -> None: ...

    # ------------------------------------------------------------------ settings

    async def setting(self, name: str) -> str | None:
        """A value the daemon learned and keeps across restarts (e.g. the account's speed)."""

    async def put_setting(self, name: str, value: str) -> None: ...
