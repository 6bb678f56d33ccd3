"""A file taken over from a dead host resumes as that host's restart would resume it."""

from __future__ import annotations

import pytest

from daemon.cluster.takeover import Resume, resume
from daemon.model import FileRecord, Kind, State


def record(state: State, job_id: str | None = None) -> FileRecord:
    return FileRecord(1, "sales", "x.wav", Kind.AUDIO, 10, 20, state, job_id=job_id)


class TestResume:
    """Each state of a dead host's file has one way on."""

    def test_a_submitted_job_is_followed_not_sent_again(self) -> None:
        taken = record(State.SUBMITTED, "job-1")
        assert resume(taken, "host-a", now=5.0) is Resume.FOLLOW
        assert taken.state is State.SUBMITTED
        assert taken.data["takeovers"] == [
            {"from": "host-a", "state": "submitted", "resent": False}
        ]
        assert taken.times["taken_over"] == 5.0

    def test_an_upload_without_a_job_id_is_sent_again_and_says_so(self) -> None:
        taken = record(State.UPLOADING)
        assert resume(taken, "host-a") is Resume.RESEND
        assert taken.state is State.READY
        assert taken.data["takeovers"][0]["resent"] is True

    def test_an_upload_whose_job_id_was_committed_is_followed(self) -> None:
        taken = record(State.UPLOADING, "job-1")
        assert resume(taken, "host-a") is Resume.FOLLOW
        assert taken.state is State.SUBMITTED

    @pytest.mark.parametrize(
        ("state", "action"),
        [
            (State.COMPLETED, Resume.FILE),
            (State.FAILED, Resume.FILE),
            (State.READY, Resume.QUEUE),
            (State.WAITING, Resume.SETTLE),
            (State.HELD, Resume.HOLD),
        ],
    )
    def test_other_states_go_on_where_they_were(self, state: State, action: Resume) -> None:
        taken = record(state)
        assert resume(taken, "host-a") is action
        assert taken.state is state

    def test_a_filed_file_is_left_alone(self) -> None:
        taken = record(State.FILED)
        assert resume(taken, "host-a") is Resume.NOTHING
        assert "takeovers" not in taken.data
