"""What becomes of a file taken over from a host whose lease expired: a plain decision.

The same as a restart of that host would decide (``daemon.service``'s recovery), since a
takeover is a restart on another host: a job already submitted is followed on, never sent
again; an upload that was under way without a job id committed is sent again (the
at-least-once window: the dead host may have been answered before it could commit, so the
resend is counted and the record says so); a final file is filed; a waiting or ready file
goes on from where it was.
"""

from __future__ import annotations

import time
from enum import StrEnum

from daemon.model import FINAL_STATES, FileRecord, State


class Resume(StrEnum):
    FOLLOW = "follow"  # submitted: its job is followed to the end
    RESEND = "resend"  # was uploading, no job id: sent again
    QUEUE = "queue"  # ready: waits for a slot
    SETTLE = "settle"  # waiting: settles, then is admitted
    HOLD = "hold"  # a later part held behind its predecessor
    FILE = "file"  # final: filed to done/ or failed/
    NOTHING = "nothing"  # filed already


def resume(record: FileRecord, from_host: str, *, now: float | None = None) -> Resume:
    """Decide, and note in the record (saved by the caller) that it was taken over."""
    when = time.time() if now is None else now
    action = _action(record)
    if action is Resume.NOTHING:
        return action
    if action is Resume.RESEND:
        record.state = State.READY
    elif record.state is State.UPLOADING:
        record.state = State.SUBMITTED
    record.data.setdefault("takeovers", []).append(
        {"from": from_host, "state": record.state.value, "resent": action is Resume.RESEND}
    )
    record.stamp("taken_over", when)
    return action


def _action(record: FileRecord) -> Resume:
    if record.state is State.UPLOADING:
        return Resume.FOLLOW if record.job_id else Resume.RESEND
    if record.state is State.SUBMITTED:
        return Resume.FOLLOW
    if record.state in FINAL_STATES:
        return Resume.FILE
    if record.state is State.READY:
        return Resume.QUEUE
    if record.state is State.WAITING:
        return Resume.SETTLE
    if record.state is State.HELD:
        return Resume.HOLD
    return Resume.NOTHING
