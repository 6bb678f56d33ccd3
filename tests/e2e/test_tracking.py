"""Following jobs without webhooks: once a job has finished, the next ones are asked where their
end is likely, so each end is seen soon after it comes, with few status requests."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import Any

from e2e_harness import DaemonHarness, wait_until

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav

# The defaults, with a blind backoff that would ask at 1 s and 2.5 s: a 2 s job's end would be
# seen 0.5 s late.
TRACKING = {
    "poll_initial_seconds": 1.0,
    "poll_max_seconds": 30.0,
    "poll_backoff_factor": 1.5,
    "poll_min_seconds": 0.1,
}


def completions(harness: DaemonHarness) -> dict[str, dict[str, Any]]:
    """``job_completed`` log events by job id."""
    return {
        str(event["job_id"]): event
        for event in harness.events()
        if event.get("event") == "job_completed"
    }


def slow_account(
    harness_factory: Callable[..., DaemonHarness],
    emulator_factory: Callable[..., EmulatorServer],
    slots: int,
) -> tuple[EmulatorServer, DaemonHarness]:
    """An account whose jobs take as long as their audio, and a daemon that knows its slots."""
    emulator = emulator_factory(job_seconds=0.0, job_seconds_per_audio_second=1.0, max_jobs=slots)
    harness = harness_factory(
        emulator=emulator,
        symbl_options={"max_concurrent_jobs": slots},
        extra={"tracking": TRACKING},
    )
    return emulator, harness


def status_requests(emulator: EmulatorServer, job_id: str) -> int:
    return sum(1 for request in emulator.state.requests if request.path == f"/v1/job/{job_id}")


def test_after_one_job_the_next_ends_are_seen_at_once_with_few_requests(
    harness_factory: Callable[..., DaemonHarness],
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    # Jobs of 2 s, one at a time.
    emulator, harness = slow_account(harness_factory, emulator_factory, slots=1)
    harness.start()
    for index in range(4):
        (harness.inbox / f"call-{index}.wav").write_bytes(make_wav(2.0, tone_hz=300 + index))
    harness.wait_filed(4, timeout=60)
    assert len(harness.results()) == 4

    wait_until(lambda: len(completions(harness)) == 4, 10, "four job_completed events")
    seen = completions(harness)
    jobs = {job["id"]: job for job in emulator.state.job_times()}
    late = {}
    for job_id, event in seen.items():
        noticed = datetime.fromisoformat(event["timestamp"]).timestamp()
        late[job_id] = noticed - jobs[job_id]["finished_at"]
        assert event["polls"] == status_requests(emulator, job_id)
    order = sorted(seen, key=lambda job_id: jobs[job_id]["created_at"])
    requests = [status_requests(emulator, job_id) for job_id in order]
    # The first job teaches the speed, roughly: polled each second, its end lies within one.
    assert late[order[0]] < 1.0
    # The second is asked densely across that second; from then on, just around its end.
    assert all(late[job_id] < 0.3 for job_id in order[1:]), (late, requests)
    assert requests[1] <= 16 and max(requests[2:]) <= 4, requests


def test_the_speed_learned_is_kept_across_a_restart(
    harness_factory: Callable[..., DaemonHarness],
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    # 3.4 s jobs: asked each second before anything is learned, one would be seen 0.6 s late.
    emulator, harness = slow_account(harness_factory, emulator_factory, slots=2)
    harness.start()
    for index in range(2):
        (harness.inbox / f"before-{index}.wav").write_bytes(make_wav(3.4, tone_hz=300 + index))
    harness.wait_filed(2, timeout=60)
    assert harness.stop() == 0

    harness.start()
    (harness.inbox / "after.wav").write_bytes(make_wav(3.4, tone_hz=500))
    harness.wait_filed(3, timeout=60)
    wait_until(lambda: len(completions(harness)) == 3, 10, "three job_completed events")
    after = next(event for event in completions(harness).values() if event["file"] == "after.wav")
    job = next(job for job in emulator.state.job_times() if job["id"] == after["job_id"])
    noticed = datetime.fromisoformat(after["timestamp"]).timestamp()
    assert noticed - job["finished_at"] < 0.3, harness.log_text()[-2000:]
    assert status_requests(emulator, after["job_id"]) <= 16  # at most a window's worth


def test_a_damaged_speed_in_the_journal_is_said_once_and_learned_again(
    harness_factory: Callable[..., DaemonHarness],
    emulator_factory: Callable[..., EmulatorServer],
) -> None:
    _, harness = slow_account(harness_factory, emulator_factory, slots=1)
    harness.start()
    assert harness.stop() == 0
    journal = harness.state_dir / "journal.sqlite3"
    with sqlite3.connect(journal) as db:
        db.execute(
            "INSERT OR REPLACE INTO settings (name, value, updated_at) VALUES (?, ?, 0)",
            ("tracking.speed", '{"not": "lessons"'),
        )
    harness.start()
    for index in range(2):
        (harness.inbox / f"call-{index}.wav").write_bytes(make_wav(1.5, tone_hz=300 + index))
    harness.wait_filed(2, timeout=60)
    assert set(harness.results()) == {"call-0.wav", "call-1.wav"}
    warnings = [e for e in harness.events() if e.get("event") == "job_speed_unreadable"]
    assert len(warnings) == 1 and warnings[0]["level"] == "warning"
    assert "learned again" in warnings[0]["message"]
    assert harness.stop() == 0
    with sqlite3.connect(journal) as db:
        (kept,) = db.execute("SELECT value FROM settings WHERE name = 'tracking.speed'").fetchone()
    assert len(json.loads(kept)) == 2  # what the two jobs taught
