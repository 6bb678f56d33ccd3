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

from collections.abc import Callable, Collection, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from daemon.model import (
    ActiveFile,
    ConversationRecord,
    FileRecord,
    Kind,
    PruneCursor,
    State,
)


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
    ) -> FileRecord:
        """A new row; its id is known at once. A scan adds thousands in a row: a store may
        gather them and insert them together (before its next read, and within the commit)."""

    async def save(self, record: FileRecord) -> bool:
        """Write the record. False: another host of a cluster holds the file now, so the
        write was refused (and logged) and this host must leave the file alone."""

    async def forget(self, record: FileRecord) -> None:
        """Drop a row whose file vanished before anything was sent."""

    async def get(self, file_id: int) -> FileRecord | None: ...

    async def active(self, inbox: str | None = None) -> list[FileRecord]:
        """Every record not yet filed (optionally of one inbox), oldest first."""

    async def active_files(self, inbox: str | None = None) -> list[ActiveFile]:
        """``active``, without the records' data: one light row per file, oldest first."""

    async def in_states(self, states: Iterable[State]) -> list[FileRecord]: ...

    async def completed_with_sha(
        self, inbox: str, sha256: str, exclude_id: int
    ) -> FileRecord | None:
        """The earliest file of this inbox with this content that reached done/."""

    async def parts_of(self, inbox: str, key: str) -> list[FileRecord]:
        """Every file of one conversation key, oldest first."""

    async def counts(self) -> dict[tuple[str, str], int]:
        """(inbox, state or ``filed_<outcome>``) -> number of files; no key with 0.

        Read on every ``/metrics`` scrape and ``status``, so it must cost the same whatever the
        history: kept as counts beside the rows, changed in the same transaction as every write
        that adds a row, changes its state or outcome, or forgets it; never by counting rows.
        ``prune_filed`` does not lower them: ``filed_*`` count every file filed since the
        journal began, pruned or not (a filed row is never forgotten any other way).
        """

    async def recent_failures(self, limit: int = 20) -> list[FileRecord]: ...

    async def prune_filed(
        self,
        before: float,
        keep_twins_in: Collection[str],
        limit: int,
        after: PruneCursor | None = None,
    ) -> tuple[int, PruneCursor | None]:
        """Retention: delete filed rows last written before ``before`` that nothing needs.

        Examines at most ``limit`` filed rows older than ``before``, oldest first (by when they
        were last written, then id), starting after ``after``; deletes those of them not kept
        and answers (rows deleted, the cursor of the last row examined), the cursor None once
        no older filed row is left. One short transaction per call: the daemon calls it in a
        loop, letting other work in between, and starts each pass from the beginning.

        Kept, whatever their age (what later files need):
        - of each conversation (inbox, ``conversation_key``), the filed row with the highest id:
          the next part reads its outcome and folder (``parts_of``);
        - in the inboxes named in ``keep_twins_in`` (``on_duplicate: skip``), the row that
          ``completed_with_sha`` answers for each content: the first done row with that sha256
          and a conversation id.
        Conversation records are never pruned. Counts stay as they are (see ``counts``).
        """

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
