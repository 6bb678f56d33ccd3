"""The poll plan: where a job's end is likely, and how many requests finding it costs.

Every time here is a number; a simulated account (jobs whose length follows their audio, with
some spread) shows what the plan does over many jobs, without a clock.
"""

from __future__ import annotations

import heapq
import itertools
import random
from dataclasses import dataclass

import pytest

from daemon.pipeline.pollplan import Bounds, JobPolls, Lesson, RequestBudget, Speed, Window

DEFAULTS = Bounds(initial=1.0, longest=30.0, factor=1.5, shortest=0.25)


def polls_until(
    polls: JobPolls, speed: Speed, ends_at: float, *, webhooks: bool = False
) -> list[float]:
    """Ask until the job (ending at ``ends_at``) answers final; the moments asked."""
    moments: list[float] = []
    now = polls.submitted_at
    while True:
        now = polls.next_at(now, speed.expected(polls.audio_seconds), webhooks=webhooks)
        moments.append(now)
        final = now >= ends_at
        lesson = polls.asked(now, final=final)
        if final:
            if lesson is not None:
                speed.learn(lesson)
            return moments


def sharp_lessons(ratio: float, durations: list[float], fixed: float = 0.0) -> Speed:
    """A speed learned from jobs that took ``fixed + ratio * audio``, each bracket 0.2 s wide."""
    speed = Speed()
    for audio in durations:
        end = fixed + ratio * audio
        assert speed.learn(Lesson(audio, end - 0.1, end + 0.1))
    return speed


def test_without_audio_length_or_lessons_the_configured_backoff_is_followed() -> None:
    polls = JobPolls(100.0, None, DEFAULTS)
    moments = polls_until(polls, Speed(), ends_at=100.0 + 200)
    gaps = [round(b - a, 3) for a, b in zip([100.0, *moments], moments, strict=False)]
    assert gaps[:4] == [1.0, 1.5, 2.25, 3.375]
    assert max(gaps) == 30.0 and gaps[-1] == 30.0


def test_before_anything_is_learned_an_end_is_noticed_at_most_15_percent_late() -> None:
    for length in (15.0, 45.0, 120.0):
        polls = JobPolls(0.0, 2 * length, DEFAULTS)
        moments = polls_until(polls, Speed(), ends_at=length)
        assert moments[-1] - length <= 0.15 * length + 1e-9
        assert len(moments) <= 30


def test_lessons_predict_a_narrow_window_around_the_end() -> None:
    speed = sharp_lessons(0.5, [60.0, 60.0, 60.0])
    window = speed.expected(60.0)
    assert window is not None and window.start < 30.0 < window.end
    assert window.end - window.start < 0.1 * 30.0
    assert speed.expected(None) is None and Speed().expected(60.0) is None


def test_a_fixed_cost_per_job_is_told_from_the_cost_per_second() -> None:
    speed = sharp_lessons(0.5, [20.0, 60.0, 100.0, 200.0], fixed=10.0)
    for audio in (30.0, 150.0):
        window = speed.expected(audio)
        assert window is not None and window.start < 10 + 0.5 * audio < window.end
        assert window.end - window.start < 0.1 * (10 + 0.5 * audio)


def test_a_job_that_ended_before_its_first_poll_only_bounds_the_end() -> None:
    speed = sharp_lessons(0.5, [60.0] * 5)
    speed.learn(Lesson(60.0, 0.0, 29.5))  # final at the first poll: ended some time before
    window = speed.expected(60.0)
    assert window is not None and 28.0 < window.start < 29.5 and window.end > 30.0


def test_one_held_back_job_in_ten_does_not_widen_the_window() -> None:
    speed = sharp_lessons(0.5, [60.0] * 12)
    speed.learn(Lesson(60.0, 89.9, 90.1))
    window = speed.expected(60.0)
    assert window is not None and window.end < 32.0


def test_polls_are_sparse_before_the_window_dense_across_it_and_back_off_after() -> None:
    speed = sharp_lessons(0.5, [240.0] * 5)  # jobs of 120 s
    window = speed.expected(240.0)
    assert window is not None
    late = JobPolls(0.0, 240.0, DEFAULTS)
    moments = polls_until(late, speed, ends_at=200.0)
    before = [moment for moment in moments if moment < window.start]
    gaps = [b - a for a, b in zip([0.0, *before], before, strict=False)]
    assert before and max(gaps) <= DEFAULTS.longest
    inside = [moment for moment in moments if window.start <= moment <= window.end]
    assert 3 <= len(inside) <= 16
    assert min(b - a for a, b in itertools.pairwise(inside)) >= DEFAULTS.shortest
    after = [moment for moment in moments if moment > window.end]
    assert all(b - a <= 0.05 * b + 1e-9 for a, b in itertools.pairwise(after))


def test_a_lesson_is_the_bracket_between_the_last_running_answer_and_the_final_one() -> None:
    polls = JobPolls(10.0, 30.0, DEFAULTS)
    assert polls.asked(20.0, final=False) is None
    assert polls.asked(25.0, final=True) == Lesson(30.0, 10.0, 15.0)
    assert JobPolls(0.0, None, DEFAULTS).asked(5.0, final=True) is None  # length unknown


def test_a_webhook_closes_the_bracket_even_when_the_check_comes_later() -> None:
    polls = JobPolls(0.0, 30.0, DEFAULTS)
    polls.asked(10.0, final=False)
    polls.webhook(14.0)
    lesson = polls.asked(16.0, final=True)
    assert lesson is not None and lesson.high == 14.0 and lesson.high - lesson.low <= 0.1


def test_with_webhooks_polling_is_the_slow_safety_net() -> None:
    speed = sharp_lessons(0.5, [30.0] * 3)
    polls = JobPolls(0.0, 30.0, DEFAULTS)
    assert polls.next_at(0.0, speed.expected(30.0), webhooks=True) == DEFAULTS.longest


def test_the_account_budget_spreads_requests_and_never_moves_one_earlier() -> None:
    budget = RequestBudget(10.0)
    granted = [budget.grant(5.0, now=5.0) for _ in range(30)]
    assert granted[0] == 5.0 and all(moment >= 5.0 for moment in granted)
    slots = {int(moment * 10 + 1e-6) for moment in granted}
    assert len(slots) == 30 and max(granted) < 8.0 + 1e-9
    assert budget.grant(20.0, now=5.0) == 20.0  # a request later on is not held back
    assert budget.grant(1.0, now=9.0) >= 9.0


def test_what_was_learned_survives_as_text_and_garbage_is_refused() -> None:
    speed = sharp_lessons(0.5, [60.0, 90.0])
    again = Speed.from_json(speed.to_json())
    assert again.lessons == speed.lessons
    for text in (None, "", "[[1, 2]]", '[["a", 1, 2]]', "[[0, 1, 2]]", "[[1, 2, NaN]]"):
        assert Speed.from_json(text).lessons == []
    for text in ("not json", "{}", "3"):
        with pytest.raises(ValueError):
            Speed.from_json(text)


def test_only_lessons_that_say_something_are_kept() -> None:
    speed = Speed()
    assert not speed.learn(Lesson(0.0, 1.0, 2.0))
    assert not speed.learn(Lesson(10.0, 3.0, 2.0))
    assert speed.learn(Lesson(10.0, 2.0, 3.0))
    for _ in range(40):
        speed.learn(Lesson(10.0, 2.0, 3.0))
    assert len(speed.lessons) == 20


# ---------------------------------------------------------------- a simulated account


@dataclass
class Outcome:
    late_shares: list[float]  # how late each end was noticed, as a share of the job
    requests: list[int]


def simulate(
    job_seconds: list[float],
    *,
    slots: int = 5,
    spread: float = 0.05,
    seed: int = 1,
    audio: float | None = None,
) -> Outcome:
    """Jobs of ``job_seconds`` on ``audio`` seconds of audio (else twice the job), each slot
    refilled when its end is seen."""
    chance = random.Random(seed)
    speed, budget = Speed(), RequestBudget(20.0)
    free = [(0.0, slot) for slot in range(slots)]
    outcome = Outcome([], [])
    for planned in job_seconds:
        submitted, slot = heapq.heappop(free)
        length = planned * (1 + chance.uniform(-spread, spread))
        polls = JobPolls(submitted, audio or 2 * planned, DEFAULTS)
        now = submitted
        while True:
            wanted = polls.next_at(now, speed.expected(polls.audio_seconds))
            now = budget.grant(wanted, now)
            final = now >= submitted + length
            lesson = polls.asked(now, final=final)
            if final:
                break
        assert lesson is not None
        speed.learn(lesson)
        outcome.late_shares.append((now - submitted - length) / length)
        outcome.requests.append(polls.polls)
        heapq.heappush(free, (now, slot))
    return outcome


def test_once_learned_ends_are_noticed_within_three_percent_of_each_job() -> None:
    mix = [random.Random(7).uniform(15, 90) for _ in range(40)]
    for jobs in ([15.0] * 30, [45.0] * 30, [75.0] * 30, mix):
        outcome = simulate(jobs)
        steady = outcome.late_shares[5:]
        assert sum(steady) / len(steady) < 0.03, jobs[0]
        assert max(outcome.late_shares) <= 0.15 + 1e-9


def test_two_minute_jobs_cost_at_most_30_requests_each() -> None:
    outcome = simulate([120.0] * 20)
    assert max(outcome.requests) <= 30
    assert sum(outcome.requests[5:]) / 15 <= 20


def test_a_window_is_sixteen_polls_wide_at_most() -> None:
    assert Window(0.0, 16.0).spacing == 1.0


def test_polls_that_get_no_answer_back_off_as_configured_even_in_the_window() -> None:
    speed = sharp_lessons(0.5, [240.0] * 3)
    window = speed.expected(240.0)
    assert window is not None
    polls = JobPolls(0.0, 240.0, DEFAULTS)
    now = window.start
    waits = []
    for _ in range(2):
        assert polls.asked(now, final=False, answered=False) is None
        following = polls.next_at(now, window)
        waits.append(following - now)
        now = following
    assert waits == [1.0, 1.5]
    polls.asked(now, final=False)
    assert polls.next_at(now, window) - now < 1.0  # answered again: dense once more


def test_when_the_account_turns_faster_or_slower_the_plan_follows_within_a_few_rounds() -> None:
    for before, after in ((120.0, 60.0), (60.0, 120.0)):
        outcome = simulate([before] * 20 + [after] * 40, audio=240.0)
        changed = outcome.late_shares[20:]
        assert max(changed) > 0.03  # the change is noticed late at first
        settled = changed[20:]  # four rounds of 5 slots later
        assert sum(settled) / len(settled) < 0.02, (before, after)
        assert max(outcome.requests[20:]) <= 40
