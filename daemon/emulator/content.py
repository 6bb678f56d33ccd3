"""Conversation results with plausible content, derived from what was actually submitted.

Each completed part becomes one message that names its source and duration, spoken by a member
taken from the parameters (channel metadata, diarization) or a default speaker. Insights carry
scores, and those below the conversation's ``confidenceThreshold`` are left out as Symbl does.
The shapes are those of ``shared/symbl-api.md``; wrapper arrays are always present.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from daemon.emulator.state import Conversation, Job

_DEFAULT_THRESHOLD = 0.5


def _iso(moment: float) -> str:
    return (
        datetime.fromtimestamp(moment, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _stable_id(*parts: object) -> str:
    digest = hashlib.sha256("/".join(str(part) for part in parts).encode()).hexdigest()
    return str(int(digest[:15], 16))


# The speaker of undiarized mono audio; the same id as "Speaker 1" of a diarized part.
_SPEAKER = {"id": _stable_id("member", "Speaker 1", ""), "name": "Speaker 1", "email": ""}


class ConversationResults:
    """The results API's answers for one conversation, from its completed jobs."""

    def __init__(self, conversation: Conversation, jobs: list[Job]) -> None:
        self.conversation = conversation
        self.jobs = jobs
        self.completed = [job for job in jobs if job.status == "completed"]
        first_params = jobs[0].part.params if jobs else {}
        self.threshold = float(first_params.get("confidenceThreshold", _DEFAULT_THRESHOLD))

    @property
    def running(self) -> bool:
        return any(not job.finished for job in self.jobs)

    # ------------------------------------------------------------ members and messages

    def members(self) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for job in self.jobs:
            for member in _members_of(job):
                seen.setdefault(member["id"], member)
        return list(seen.values()) or [dict(_SPEAKER)]

    def _start_of(self, job: Job) -> float:
        offset = sum(other.part.seconds for other in self.completed[: self.completed.index(job)])
        return self.conversation.created_at + offset

    def _message_id(self, job: Job) -> str:
        return _stable_id(self.conversation.id, job.id, "message")

    def messages(self, verbose: bool) -> list[dict[str, Any]]:
        return [self._message(index, job, verbose) for index, job in enumerate(self.completed)]

    def _message(self, index: int, job: Job, verbose: bool) -> dict[str, Any]:
        start = self._start_of(job)
        end = start + job.part.seconds
        text = (
            f"Part {index + 1} of this conversation is {job.part.label}, "
            f"{job.part.seconds:.1f} seconds of audio."
        )
        speakers = _members_of(job)
        speaker = speakers[index % len(speakers)]
        phrases = (
            [{"type": "action_phrase", "text": f"review {job.part.label}"}]
            if job.part.params.get("detectPhrases")
            else []
        )
        return {
            "id": self._message_id(job),
            "text": text,
            "from": speaker,
            "startTime": _iso(start),
            "endTime": _iso(end),
            "timeOffset": round(start - self.conversation.created_at, 3),
            "duration": round(job.part.seconds, 3),
            "conversationId": self.conversation.id,
            "phrases": phrases,
            "sentiment": {"polarity": {"score": 0.1}, "suggested": "neutral"},
            "words": _words(text, start, job.part.seconds) if verbose else [],
        }

    # ------------------------------------------------------------ insights

    def _insight(self, kind: str, job: Job, text: str, score: float) -> dict[str, Any]:
        return {
            "id": _stable_id(self.conversation.id, job.id, kind),
            "text": text,
            "type": kind,
            "score": score,
            "messageIds": [self._message_id(job)],
        }

    def _kept(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [item for item in items if item["score"] >= self.threshold]

    def topics(self) -> list[dict[str, Any]]:
        items = [
            {**self._insight("topic", job, job.part.label, 0.8), "parentRefs": []}
            for job in self.completed
        ]
        return self._kept(items)

    def questions(self) -> list[dict[str, Any]]:
        items = [
            {
                **self._insight(
                    "question", job, f"Is {job.part.label} the complete recording?", 0.9
                ),
                "from": {"id": _SPEAKER["id"], "name": _SPEAKER["name"], "userId": ""},
            }
            for job in self.completed
        ]
        return self._kept(items)

    def action_items(self) -> list[dict[str, Any]]:
        return self._kept([self._task("action_item", job, 0.85) for job in self.completed])

    def follow_ups(self) -> list[dict[str, Any]]:
        return self._kept([self._task("follow_up", job, 0.7) for job in self.completed[-1:]])

    def _task(self, kind: str, job: Job, score: float) -> dict[str, Any]:
        verb = "Review" if kind == "action_item" else "Follow up on"
        return {
            **self._insight(kind, job, f"{verb} the transcript of {job.part.label}.", score),
            "entities": [],
            "phrases": [],
            "definitive": True,
            "assignee": dict(_SPEAKER),
            "from": {"id": _SPEAKER["id"], "name": _SPEAKER["name"], "userId": ""},
        }

    def entities(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for job in self.completed:
            if not job.part.params.get("detectEntities"):
                continue
            for entity in job.part.params.get("entities", []):
                found.append(
                    {
                        "type": "custom",
                        "customType": entity["customType"],
                        "value": entity["text"],
                        "text": entity["text"],
                        "messageRefs": [{"id": self._message_id(job), "text": entity["text"]}],
                    }
                )
        return found

    def trackers(self) -> list[dict[str, Any]]:
        by_name: dict[str, dict[str, Any]] = {}
        for job in self.completed:
            for tracker in job.part.params.get("trackers", []):
                entry = by_name.setdefault(
                    tracker["name"],
                    {
                        "id": _stable_id(self.conversation.id, "tracker", tracker["name"]),
                        "name": tracker["name"],
                        "matches": [],
                    },
                )
                entry["matches"].append(self._tracker_match(job, tracker["vocabulary"][0]))
        return list(by_name.values())

    def _tracker_match(self, job: Job, phrase: str) -> dict[str, Any]:
        return {
            "type": "vocabulary",
            "value": phrase,
            "messageRefs": [{"id": self._message_id(job), "text": phrase, "offset": 0}],
            "insightRefs": [],
        }

    def summary(self) -> list[dict[str, Any]]:
        if not self.completed:
            return []
        labels = ", ".join(job.part.label for job in self.completed)
        seconds = sum(job.part.seconds for job in self.completed)
        return [
            {
                "id": _stable_id(self.conversation.id, "summary"),
                "text": f"The conversation covers {labels}, {seconds:.1f} seconds in all.",
                "messageRefs": [{"id": self._message_id(job)} for job in self.completed],
            }
        ]

    def conversation_data(self) -> dict[str, Any]:
        seconds = sum(job.part.seconds for job in self.completed)
        return {
            "id": self.conversation.id,
            "type": "meeting",
            "name": self.conversation.name,
            "startTime": _iso(self.conversation.created_at),
            "endTime": _iso(self.conversation.created_at + seconds),
            "members": self.members(),
            "metadata": {},
        }


def _members_of(job: Job) -> list[dict[str, Any]]:
    params = job.part.params
    channels = params.get("channelMetadata") or []
    if params.get("enableSeparateRecognitionPerChannel") and channels:
        return [
            _member(entry["speaker"].get("name"), entry["speaker"].get("email"))
            for entry in channels
        ]
    if params.get("enableSpeakerDiarization"):
        count = int(params.get("diarizationSpeakerCount", 2))
        return [_member(f"Speaker {number}", "") for number in range(1, count + 1)]
    return [dict(_SPEAKER)]


def _member(name: str | None, email: str | None) -> dict[str, Any]:
    shown = name or email or "Speaker"
    return {"id": _stable_id("member", shown, email or ""), "name": shown, "email": email or ""}


def _words(text: str, start: float, seconds: float) -> list[dict[str, Any]]:
    tokens = text.split()
    step = seconds / max(1, len(tokens))
    return [
        {
            "word": token,
            "startTime": _iso(start + index * step),
            "endTime": _iso(start + (index + 1) * step),
            "speakerTag": 1,
        }
        for index, token in enumerate(tokens)
    ]
