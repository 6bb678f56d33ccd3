"""Conversation order: which part goes next, which waits, which cannot be sent; as decisions.

Parts of one conversation are sent one at a time, in part order: part N waits (``held``) until
part N-1 was accepted or finally refused. The stage keeps that progress in the journal's
conversation records and answers with decisions (Release, Hold, Reject) that the daemon acts on;
it never fails, sends or files a file itself, so it calls back into no other stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from daemon.config.model import Profile
from daemon.convkeys import folder_of, scoped_key
from daemon.files.intake import Directions, continuation_from_name
from daemon.journal import ConversationRecord, FileRecord, Journal, State
from daemon.logs import get_logger

log = get_logger("symbl_inbox.conversations")

# A hold without a recorded wait (a journal from before the setting existed) lasts a day.
_DEFAULT_WAIT_SECONDS = 86400.0


@dataclass(frozen=True)
class Release:
    """The part is next in its conversation (or in none): it may be sent."""

    record: FileRecord


@dataclass(frozen=True)
class Hold:
    """The part waits for an earlier one; it is failed if that has not come in ``seconds``."""

    record: FileRecord
    seconds: float


@dataclass(frozen=True)
class Reject:
    """The part can never be sent in order: it goes to failed/ with ``reason``."""

    record: FileRecord
    reason: str
    message: str


Decision = Release | Hold | Reject


class Conversations:
    """Part order for every conversation key, kept in the journal."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal

    # ------------------------------------------------------------------ joining

    async def join(
        self, record: FileRecord, directions: Directions, profile: Profile
    ) -> ConversationRecord | None:
        """Give a continuation its conversation key and part number; None for a lone file."""
        key, part = _conversation_of(record, directions, profile)
        if key is None:
            return None
        key = await self._scoped_key(record, key)
        conversation = await self._journal.conversation(record.inbox, key)
        if directions.conversation_id and not conversation.conversation_id:
            conversation.conversation_id = directions.conversation_id
        if part is None:
            part = conversation.last_part_assigned + 1
        conversation.last_part_assigned = max(conversation.last_part_assigned, part)
        record.conversation_key, record.part = key, part
        record.data["continuation_wait_seconds"] = profile.continuation_wait_seconds
        if conversation.rejected and part == 1:
            conversation.rejected = False  # part 1 again (a retry): a new chance
        await self._journal.save_conversation(conversation)
        await self._journal.save(record)
        return conversation

    async def _scoped_key(self, record: FileRecord, key: str) -> str:
        """The key scoped to the file's folder (see ``daemon.convkeys``), unless a conversation
        begun before keys were scoped continues under the bare key in this same folder."""
        scoped = scoped_key(record.rel_path, key)
        if scoped == key:
            return key
        fresh = await self._journal.conversation(record.inbox, scoped)
        if fresh.last_part_assigned == 0 and fresh.conversation_id is None:
            folder = folder_of(record.rel_path)
            earlier = await self._journal.parts_of(record.inbox, key)
            if earlier and all(folder_of(other.rel_path) == folder for other in earlier):
                return key
        return scoped

    async def duplicate_part(self, record: FileRecord) -> Reject | None:
        """A part whose number was already sent, or is on its way, in its conversation."""
        assert record.conversation_key is not None
        for other in await self._journal.parts_of(record.inbox, record.conversation_key):
            if other.id == record.id or other.part != record.part:
                continue
            if other.outcome == "done" or other.state not in (State.FILED, State.FAILED):
                return Reject(
                    record,
                    "duplicate_part",
                    f"part {record.part} of conversation {record.conversation_key!r} was "
                    "already sent or is on its way",
                )
        return None

    # ------------------------------------------------------------------ order

    def place(self, record: FileRecord, conversation: ConversationRecord) -> Decision:
        """Where a part stands in its conversation now."""
        assert record.part is not None
        if conversation.rejected:
            return Reject(
                record,
                "predecessor_rejected",
                f"the first part of conversation {conversation.key!r} was rejected, so no "
                "conversation exists to append this part to",
            )
        if record.part <= conversation.last_part_done:
            return Reject(
                record,
                "duplicate_part",
                f"part {record.part} of conversation {conversation.key!r} was already sent",
            )
        if record.part == conversation.last_part_done + 1:
            return Release(record)
        return Hold(record, _wait_of(record))  # the hold begins now: the whole wait is ahead

    async def hold(self, decision: Hold) -> None:
        """Commit a hold: the part is ``held`` until its predecessor is dealt with."""
        record = decision.record
        record.state = State.HELD
        record.stamp("held")
        await self._journal.save(record)
        assert record.conversation_key is not None and record.part is not None
        conversation = await self._journal.conversation(record.inbox, record.conversation_key)
        log.info(
            "part_held",
            inbox=record.inbox,
            file=record.rel_path,
            conversation=conversation.key,
            part=record.part,
            waiting_for=conversation.last_part_done + 1,
        )

    @staticmethod
    def hold_seconds(record: FileRecord, *, now: float) -> float:
        """How long a held part still waits for its predecessor."""
        return record.times.get("held", now) + _wait_of(record) - now

    async def hold_expired(self, record_id: int) -> Reject | None:
        """The wait of a held part is over: if it is still held, its predecessor never came."""
        record = await self._journal.get(record_id)
        if record is None or record.state is not State.HELD:
            return None
        conversation = await self._journal.conversation(record.inbox, record.conversation_key or "")
        missing = conversation.last_part_done + 1
        wait = record.data.get("continuation_wait_seconds")
        return Reject(
            record,
            "missing_part",
            f"part {missing} of conversation {record.conversation_key!r} did not arrive within "
            f"{wait} s, so part {record.part} could not be appended in order",
        )

    async def settled(self, record: FileRecord, *, accepted: bool) -> list[Decision]:
        """A part was accepted or finally refused: the conversation moves on (or is lost).

        The answer is what becomes of the parts held behind it.
        """
        if record.conversation_key is None or record.part is None:
            return []
        conversation = await self._journal.conversation(record.inbox, record.conversation_key)
        if accepted:
            conversation.conversation_id = conversation.conversation_id or record.conversation_id
        elif conversation.conversation_id is None and record.part == 1:
            conversation.rejected = True
        _advance(conversation, {record.part})
        await self._journal.save_conversation(conversation)
        return await self._released(conversation)

    async def reconcile(self, inbox: str, key: str) -> list[Decision]:
        """After a crash between committing a part and its conversation, catch up from the parts."""
        conversation = await self._journal.conversation(inbox, key)
        accepted = {
            other.part: other
            for other in await self._journal.parts_of(inbox, key)
            if other.part is not None and other.job_id is not None
        }
        first = accepted.get(1)
        if conversation.conversation_id is None and first is not None:
            conversation.conversation_id = first.conversation_id
        _advance(conversation, set(accepted))
        await self._journal.save_conversation(conversation)
        return await self._released(conversation)

    async def _released(self, conversation: ConversationRecord) -> list[Decision]:
        decisions: list[Decision] = []
        for other in await self._journal.parts_of(conversation.inbox, conversation.key):
            if other.state is not State.HELD:
                continue
            if conversation.rejected or other.part == conversation.last_part_done + 1:
                decisions.append(self.place(other, conversation))
        return decisions

    # ------------------------------------------------------------------ sending

    async def target(self, record: FileRecord) -> str | None:
        """The Symbl conversation a part is appended to; None for a first part or a lone file."""
        if record.conversation_key is None:
            return None
        conversation = await self._journal.conversation(record.inbox, record.conversation_key)
        return conversation.conversation_id

    async def note_predecessor_outcome(self, record: FileRecord) -> None:
        """Say in a part's record when the part before it failed (its transcript has a gap)."""
        if record.conversation_key is None or record.part is None or record.part == 1:
            return
        for other in await self._journal.parts_of(record.inbox, record.conversation_key):
            if other.part != record.part - 1:
                continue
            if other.data.get("job_status") == "failed":
                record.data["predecessor_job_failed"] = True
            elif other.outcome == "failed" or other.state is State.FAILED:
                record.data["predecessor_failed"] = other.reason
        await self._journal.save(record)


def _conversation_of(
    record: FileRecord, directions: Directions, profile: Profile
) -> tuple[str | None, int | None]:
    if directions.conversation is not None:
        return directions.conversation, directions.part
    if directions.conversation_id is not None:
        # Appends to one existing conversation still go one at a time, in arrival order.
        return f"conversationId:{directions.conversation_id}", directions.part
    named = continuation_from_name(profile.continuation_pattern, Path(record.rel_path).name)
    if named is not None:
        return named
    return None, None


def _wait_of(record: FileRecord) -> float:
    return float(record.data.get("continuation_wait_seconds", _DEFAULT_WAIT_SECONDS))


def _advance(conversation: ConversationRecord, parts: set[int]) -> None:
    """Move ``last_part_done`` over every part dealt with, keeping those beyond a gap."""
    settled = set(conversation.data.get("settled_parts", [])) | parts
    while conversation.last_part_done + 1 in settled:
        conversation.last_part_done += 1
    conversation.data["settled_parts"] = sorted(
        part for part in settled if part > conversation.last_part_done
    )
