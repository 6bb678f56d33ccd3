"""The judged stalls: Symbl unreachable past a threshold, and the state folder full."""

from __future__ import annotations

from pathlib import Path

from daemon.stalls import StallBoard, StallKind
from daemon.stallwatch import Reachability, StateSpace


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestReachability:
    """No answer for longer than the threshold begins api_unreachable; any answer ends it."""

    def test_short_trouble_is_no_stall(self) -> None:
        board, clock = StallBoard(), Clock()
        reach = Reachability(board, "http://api", 60.0, clock)
        reach.no_answer("connection refused")
        clock.now += 59
        reach.no_answer("connection refused")
        assert not board.has(StallKind.API_UNREACHABLE)

    def test_long_trouble_is_a_stall_until_an_answer(self) -> None:
        board, clock = StallBoard(), Clock()
        reach = Reachability(board, "http://api", 60.0, clock)
        reach.no_answer("refused", since=clock.now - 61)
        [stall] = board.active()
        assert stall.kind is StallKind.API_UNREACHABLE
        assert "http://api" in stall.message and "refused" in stall.message
        reach.answered()
        assert board.active() == []

    def test_an_answer_restarts_the_count(self) -> None:
        board, clock = StallBoard(), Clock()
        reach = Reachability(board, "http://api", 60.0, clock)
        reach.no_answer("refused")
        clock.now += 50
        reach.answered()
        clock.now += 50
        reach.no_answer("refused")
        assert not board.has(StallKind.API_UNREACHABLE)


class TestStateSpace:
    """Full means less free space than the journal needs, on the real filesystem."""

    def test_room(self, tmp_path: Path) -> None:
        assert not StateSpace(tmp_path, min_free=1).full()

    def test_full(self, tmp_path: Path) -> None:
        space = StateSpace(tmp_path, min_free=2**62)
        assert space.full()
        assert str(tmp_path) in space.message()

    def test_missing_folder_is_not_judged_full(self, tmp_path: Path) -> None:
        assert not StateSpace(tmp_path / "gone", min_free=2**62).full()
