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


def arrive(journal: MemoryJournal, conversations: Conversations, name: str) -> FileRecord:
    """A file admitted to the inbox ``in``: joined to its conversation, placed, acted on."""
    record = journal.add_file("in", name, Kind.AUDIO, 1, 1, State.WAITING)
    conversation = conversations.join(record, Directions(), PROFILE)
    assert conversation is not None
    decision = conversations.place(record, conversation)
    act(journal, conversations, [decision])
    return record


def act(journal: MemoryJournal, conversations: Conversations, decisions: list[object]) -> None:
    """What the daemon does with each decision, as far as the journal sees it."""
    for decision in decisions:
        if isinstance(decision, Release):
            decision.record.state = State.READY
            journal.save(decision.record)
        elif isinstance(decision, Hold):
            conversations.hold(decision)
        elif isinstance(decision, Reject):
            decision.record.state, decision.record.reason = State.FAILED, decision.reason
            journal.save(decision.record)


def state(journal: MemoryJournal, record: FileRecord) -> State:
    again = journal.get(record.id)
    assert again is not None
    return again.state


def saved(journal: MemoryJournal, record: FileRecord) -> FileRecord:
    again = journal.get(record.id)
    assert again is not None
    return again


def submit(journal: MemoryJournal, record: FileRecord, conversation_id: str = "c-1") -> None:
    record.state, record.job_id, record.conversation_id = State.SUBMITTED, "j", conversation_id
    journal.save(record)


def test_a_lone_file_joins_no_conversation(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    record = journal.add_file("in", "lone.wav", Kind.AUDIO, 1, 1, State.WAITING)
    assert conversations.join(record, Directions(), PROFILE) is None
    assert conversations.target(record) is None


def test_a_later_part_is_held_until_the_one_before_is_accepted(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    second = arrive(journal, conversations, "call-part2.wav")
    assert state(journal, second) is State.HELD
    first = arrive(journal, conversations, "call-part1.wav")
    assert state(journal, first) is State.READY
    submit(journal, first)
    decisions = conversations.settled(first, accepted=True)
    assert decisions == [Release(saved(journal, second))]
    assert conversations.target(second) == "c-1"


def test_a_hold_lasts_the_profiles_wait(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    record = journal.add_file("in", "call-part3.wav", Kind.AUDIO, 1, 1, State.WAITING)
    conversation = conversations.join(record, Directions(), PROFILE)
    assert conversation is not None
    decision = conversations.place(record, conversation)
    assert isinstance(decision, Hold) and decision.seconds == 600.0
    conversations.hold(decision)
    held = journal.get(record.id)
    assert held is not None
    assert Conversations.hold_seconds(held, now=held.times["held"] + 100) == 500.0


def test_a_rejected_first_part_rejects_the_parts_held_behind_it(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    second = arrive(journal, conversations, "call-part2.wav")
    first = arrive(journal, conversations, "call-part1.wav")
    (decision,) = conversations.settled(first, accepted=False)
    assert isinstance(decision, Reject)
    assert decision.record.id == second.id and decision.reason == "predecessor_rejected"


def test_a_part_whose_predecessor_never_came_expires_as_missing(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    third = arrive(journal, conversations, "call-part3.wav")
    rejected = conversations.hold_expired(third.id)
    assert rejected is not None and rejected.reason == "missing_part"
    assert "part 1 of conversation" in rejected.message
    act(journal, conversations, [rejected])
    assert conversations.hold_expired(third.id) is None, "no longer held: nothing to expire"


def test_a_part_number_sent_already_is_a_duplicate(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    first = arrive(journal, conversations, "call-part1.wav")
    again = journal.add_file("in", "copy/call-part1.wav", Kind.AUDIO, 1, 1, State.WAITING)
    directions = Directions(conversation="call", part=1)
    assert conversations.join(again, directions, PROFILE) is not None
    duplicate = conversations.duplicate_part(again)
    assert duplicate is None, "another folder: its own conversation"
    same = journal.add_file("in", "call-part1.wav", Kind.AUDIO, 1, 1, State.WAITING)
    assert conversations.join(same, Directions(), PROFILE) is not None
    duplicate = conversations.duplicate_part(same)
    assert duplicate is not None and duplicate.reason == "duplicate_part"
    assert state(journal, first) is State.READY


def test_a_gap_keeps_later_settled_parts_until_it_closes(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    first = arrive(journal, conversations, "call-part1.wav")
    second = arrive(journal, conversations, "call-part2.wav")
    third = arrive(journal, conversations, "call-part3.wav")
    submit(journal, first)
    assert conversations.settled(first, accepted=True) == [Release(saved(journal, second))]
    assert state(journal, third) is State.HELD


def test_after_a_crash_the_conversation_catches_up_from_its_parts(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    first = arrive(journal, conversations, "call-part1.wav")
    second = arrive(journal, conversations, "call-part2.wav")
    submit(journal, first, "c-9")  # committed; the crash came before the conversation's commit
    (decision,) = conversations.reconcile("in", "call")
    assert isinstance(decision, Release) and decision.record.id == second.id
    assert journal.conversation("in", "call").conversation_id == "c-9"


def test_a_part_learns_that_the_one_before_it_failed(
    journal: MemoryJournal, conversations: Conversations
) -> None:
    first = arrive(journal, conversations, "call-part1.wav")
    second = arrive(journal, conversations, "call-part2.wav")
    first.state, first.reason = State.FAILED, "rejected_by_api"
    journal.save(first)
    record = journal.get(second.id)
    assert record is not None
    conversations.note_predecessor_outcome(record)
    again = journal.get(second.id)
    assert again is not None and again.data["predecessor_failed"] == "rejected_by_api"
