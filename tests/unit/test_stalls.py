"""The stall board: what begins, repeats and clears, and who is told."""

from __future__ import annotations

from daemon.stalls import Stall, StallBoard, StallKind


class TestStallBoard:
    """Stalls are keyed by kind and subject; listeners hear each start and end once."""

    def test_begin_is_reported_once_and_keeps_its_start(self) -> None:
        now = [100.0]
        board = StallBoard(clock=lambda: now[0])
        heard: list[tuple[StallKind, bool]] = []
        board.subscribe(lambda stall, began: heard.append((stall.kind, began)))
        assert board.begin(StallKind.STATE_FULL, "no space left in /var/lib/symbl-inbox")
        now[0] = 160.0
        assert not board.begin(StallKind.STATE_FULL, "still no space")
        assert board.active() == [Stall(StallKind.STATE_FULL, 100.0, "still no space")]
        assert heard == [(StallKind.STATE_FULL, True)]

    def test_subjects_are_separate_stalls(self) -> None:
        board = StallBoard(clock=lambda: 1.0)
        board.begin(StallKind.INBOX_UNAVAILABLE, "gone", subject="sales")
        board.begin(StallKind.INBOX_UNAVAILABLE, "gone", subject="support")
        assert board.clear(StallKind.INBOX_UNAVAILABLE, subject="sales") is not None
        assert [stall.subject for stall in board.active()] == ["support"]
        assert board.has(StallKind.INBOX_UNAVAILABLE, "support")

    def test_clear_of_nothing_tells_nobody(self) -> None:
        board = StallBoard()
        heard: list[bool] = []
        board.subscribe(lambda stall, began: heard.append(began))
        assert board.clear(StallKind.API_UNREACHABLE) is None
        board.begin(StallKind.API_UNREACHABLE, "connection refused")
        board.clear(StallKind.API_UNREACHABLE)
        assert heard == [True, False]
