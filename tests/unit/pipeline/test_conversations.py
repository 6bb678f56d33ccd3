"""Conversation order as decisions: release, hold, reject; on an in-memory journal."""

from __future__ import annotations

import re

import pytest

from daemon.config.model import Profile
from daemon.files.intake import Directions
from daemon.journal import FileRecord, Kind, MemoryJournal, State
from daemon.pipeline.conversations import Conversations, Hold, Reject, Release

PROFILE = Profile(
    "calls",
    {},
    continuation_pattern=re.compile(r"^(?P<conversation>.+)-part(?P<part>\d+)\.wav$"),
    continuation_wait_seconds=600.0,
)


@pytest.fixture
def journal() -> MemoryJournal:
    return MemoryJournal()


@pytest.fixture
def conversations(journal: MemoryJournal) -> Conversations:
    return Conversations(journal)


async def arrive(journal: MemoryJournal, conversations: Conversations, name: str) -> FileRecord:
    """A file admitted to the inbox ``in``: joined to its conversation, placed, acted on."""
    record = await journal.add_file("in", name, Kind.AUDIO, 1, 1, State.WAITING)
    conversation = await conversations.join(record, Directions(), PROFILE)
    assert conversation is not None
    decision = conversations.place(record, conversation)
    await act(journal, conversations, [decision])
    return record


async def act(
    journal: MemoryJournal, conversations: Conversations, decisions: list[object]
) -> None:
    """What the daemon does with each decision, as far as the journal sees it."""
    for decision in decisions:
        if isinstance(decision, Release):
            decision.record.state = State.READY
            await journal.save(decision.record)
        elif isinstance(decision, Hold):
            await conversations.hold(decision)
        elif isinstance(decision, Reject):
            decision.record.state, decision.record.reason = State.FAILED, decision.reason
            await journal.save(decision.record)


async def state(journal: MemoryJournal, record: FileRecord) -> State:
    again = await journal.get(record.id)
    assert again is not None
    return again.state


async def saved(journal: MemoryJournal, record: FileRecord) -> FileRecord:
    again = await journal.get(record.id)
    assert again is not None
    return again


async def submit(journal: MemoryJournal, record: FileRecord, conversation_id: str = "c-1") -> None:
    record.state, record.job_id, record.conversation_id = State.SUBMITTED, "j", conversation_id
    await journal.save(record)


async def test_a_lone_file_joins_no_conversation(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    record = await journal.add_file("in", "lone.wav", Kind.AUDIO, 1, 1, State.WAITING)
    assert await conversations.join(record, Directions(), PROFILE) is None
    assert await conversations.target(record) is None


async def test_a_later_part_is_held_until_the_one_before_is_accepted(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    second = await arrive(journal, conversations, "call-part2.wav")
    assert await state(journal, second) is State.HELD
    first = await arrive(journal, conversations, "call-part1.wav")
    assert await state(journal, first) is State.READY
    await submit(journal, first)
    decisions = await conversations.settled(first, accepted=True)
    assert decisions == [Release(await saved(journal, second))]
    assert await conversations.target(second) == "c-1"


async def test_a_hold_lasts_the_profiles_wait(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    record = await journal.add_file("in", "call-part3.wav", Kind.AUDIO, 1, 1, State.WAITING)
    conversation = await conversations.join(record, Directions(), PROFILE)
    assert conversation is not None
    decision = conversations.place(record, conversation)
    assert isinstance(decision, Hold) and decision.seconds == 600.0
    await conversations.hold(decision)
    held = await journal.get(record.id)
    assert held is not None
    assert Conversations.hold_seconds(held, now=held.times["held"] + 100) == 500.0


async def test_a_rejected_first_part_rejects_the_parts_held_behind_it(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    second = await arrive(journal, conversations, "call-part2.wav")
    first = await arrive(journal, conversations, "call-part1.wav")
    (decision,) = await conversations.settled(first, accepted=False)
    assert isinstance(decision, Reject)
    assert decision.record.id == second.id and decision.reason == "predecessor_rejected"


async def test_a_part_whose_predecessor_never_came_expires_as_missing(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    third = await arrive(journal, conversations, "call-part3.wav")
    rejected = await conversations.hold_expired(third.id)
    assert rejected is not None and rejected.reason == "missing_part"
    assert "part 1 of conversation" in rejected.message
    await act(journal, conversations, [rejected])
    assert await conversations.hold_expired(third.id) is None, "no longer held: nothing to expire"


async def test_a_part_number_sent_already_is_a_duplicate(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    first = await arrive(journal, conversations, "call-part1.wav")
    again = await journal.add_file("in", "copy/call-part1.wav", Kind.AUDIO, 1, 1, State.WAITING)
    directions = Directions(conversation="call", part=1)
    assert await conversations.join(again, directions, PROFILE) is not None
    duplicate = await conversations.duplicate_part(again)
    assert duplicate is None, "another folder: its own conversation"
    same = await journal.add_file("in", "call-part1.wav", Kind.AUDIO, 1, 1, State.WAITING)
    assert await conversations.join(same, Directions(), PROFILE) is not None
    duplicate = await conversations.duplicate_part(same)
    assert duplicate is not None and duplicate.reason == "duplicate_part"
    assert await state(journal, first) is State.READY


async def test_a_gap_keeps_later_settled_parts_until_it_closes(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    first = await arrive(journal, conversations, "call-part1.wav")
    second = await arrive(journal, conversations, "call-part2.wav")
    third = await arrive(journal, conversations, "call-part3.wav")
    await submit(journal, first)
    assert await conversations.settled(first, accepted=True) == [
        Release(await saved(journal, second))
    ]
    assert await state(journal, third) is State.HELD


async def test_after_a_crash_the_conversation_catches_up_from_its_parts(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    first = await arrive(journal, conversations, "call-part1.wav")
    second = await arrive(journal, conversations, "call-part2.wav")
    await submit(
        journal, first, "c-9"
    )  # committed; the crash came before the conversation's commit
    (decision,) = await conversations.reconcile("in", "call")
    assert isinstance(decision, Release) and decision.record.id == second.id
    assert (await journal.conversation("in", "call")).conversation_id == "c-9"


async def test_a_part_learns_that_the_one_before_it_failed(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    first = await arrive(journal, conversations, "call-part1.wav")
    second = await arrive(journal, conversations, "call-part2.wav")
    first.state, first.reason = State.FAILED, "rejected_by_api"
    await journal.save(first)
    record = await journal.get(second.id)
    assert record is not None
    await conversations.note_predecessor_outcome(record)
    again = await journal.get(second.id)
    assert again is not None and again.data["predecessor_failed"] == "rejected_by_api"
