"""When to ask Symbl for a job's status: where its end is likely, within a request budget.

Pure decisions, no clock or I/O of their own: every time is a number handed in.

- ``Speed`` is what completed jobs taught about the account: how long a job takes for its
  length of audio. A poll only bounds a job's end from above (it ended at some moment between
  the last answer that said running and the first that said final), so each lesson is a
  bracket; a webhook's arrival closes it to a moment. From the recent lessons it predicts a
  window in which a new job's end is likely.
- ``JobPolls`` plans one job's polls: sparse until its window, dense across it, then backing
  off proportionally to how long it has run. Without a window (nothing learned yet, or the
  length of the audio is unknown) it follows the configured backoff.
- ``RequestBudget`` is the account's ceiling on status requests per second, shared by every
  job in flight: each request takes the first free slot at or after the moment it wants.

Bounds (``tracking:``): polls of one job are never closer than ``poll_min_seconds`` nor further
apart than ``poll_max_seconds``; the account sends at most ``max_polls_per_second``.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

# Lessons kept: the recent ones say how fast the account is now.
KEEP_LESSONS = 20
# The most polls spent across one window; a wider window gets them further apart.
WINDOW_POLLS = 16
# The window reaches this share of the expected job time beyond what the lessons spread over.
WINDOW_MARGIN = 0.02
# Before anything is learned, a job with known audio length waits at most this share of the
# time it has run between polls (or poll_initial_seconds): its end is noticed at most 15 % late,
# and its lesson is sharp enough to teach the rest.
LEARNING_SHARE = 0.15
# A job that outlives its window waits at most this share of the time it has run between polls.
LATE_SHARE = 0.05
# A webhook arrives just after the job ended; its lesson is this bracket wide.
WEBHOOK_SECONDS = 0.1
# A bracket at most this share of its middle either side tells the job's end.
SHARP_SHARE = 0.08
# Durations differing by less than this factor cannot tell a fixed cost from a per-second one.
FIT_SPREAD = 1.5


@dataclass(frozen=True)
class Bounds:
    """The ``tracking:`` settings a plan stays within."""

    initial: float  # poll_initial_seconds: the first wait, while nothing is learned
    longest: float  # poll_max_seconds: the longest wait between two polls of one job
    factor: float  # poll_backoff_factor: how fast waits grow, while nothing is learned
    shortest: float  # poll_min_seconds: the shortest wait between two polls of one job


@dataclass(frozen=True)
class Lesson:
    """One finished job: it had not ended ``low`` seconds after submission, had by ``high``."""

    audio_seconds: float
    low: float
    high: float

    @property
    def middle(self) -> float:
        return (self.low + self.high) / 2


@dataclass(frozen=True)
class Window:
    """Seconds after submission between which a job's end is likely."""

    start: float
    end: float

    @property
    def spacing(self) -> float:
        return (self.end - self.start) / WINDOW_POLLS


class Speed:
    """The account's processing speed, from the brackets of recently finished jobs."""

    def __init__(self, lessons: Iterable[Lesson] = ()) -> None:
        self._lessons: deque[Lesson] = deque(lessons, maxlen=KEEP_LESSONS)

    @property
    def lessons(self) -> list[Lesson]:
        return list(self._lessons)

    def learn(self, lesson: Lesson) -> bool:
        """Keep a lesson; False (and nothing kept) when it says nothing about speed."""
        if not (lesson.audio_seconds > 0 and 0 <= lesson.low <= lesson.high and lesson.high > 0):
            return False
        self._lessons.append(lesson)
        return True

    def expected(self, audio_seconds: float | None) -> Window | None:
        """Where the end of a job on ``audio_seconds`` of audio is likely; None if unknown."""
        if not self._lessons or audio_seconds is None or audio_seconds <= 0:
            return None
        points, half = self._points()
        fixed, per_second = _fit(points)
        # How far each lesson's end lay from the fit, as a share of the fit.
        # One lesson in ten on either side may be an outlier (a job Symbl held back).
        off = sorted(end / (fixed + per_second * audio) for audio, end in points)
        trim = len(off) // 10
        expected = fixed + per_second * audio_seconds
        start = expected * max(0.0, off[trim] - half - WINDOW_MARGIN)
        end = expected * (off[-1 - trim] + half + WINDOW_MARGIN)
        return Window(start, end)

    def _points(self) -> tuple[list[tuple[float, float]], float]:
        """Each lesson's most likely end, and the typical half width of a sharp bracket.

        A sharp bracket's middle is its end. A wide one (a job that ended before its first
        poll) only bounds the end: what the sharp lessons predict, moved into the bracket.
        """
        sharp = [lesson for lesson in self._lessons if _share(lesson) <= SHARP_SHARE]
        if not sharp:
            points = [(lesson.audio_seconds, lesson.middle) for lesson in self._lessons]
            return points, statistics.median(_share(lesson) for lesson in self._lessons)
        fixed, per_second = _fit([(lesson.audio_seconds, lesson.middle) for lesson in sharp])
        points = []
        for lesson in self._lessons:
            end = lesson.middle
            if _share(lesson) > SHARP_SHARE:
                guess = fixed + per_second * lesson.audio_seconds
                end = min(max(guess, lesson.low), lesson.high)
            points.append((lesson.audio_seconds, end))
        return points, statistics.median(_share(lesson) for lesson in sharp)

    # ------------------------------------------------------------ persisted as text

    def to_json(self) -> str:
        return json.dumps(
            [[lesson.audio_seconds, lesson.low, lesson.high] for lesson in self._lessons]
        )

    @classmethod
    def from_json(cls, text: str | None) -> Speed:
        """The speed saved by ``to_json`` (nothing learned for None); rows that make no sense
        are left out. ``ValueError`` when the text is not such a list at all."""
        speed = cls()
        rows = json.loads(text) if text else []
        if not isinstance(rows, list):
            raise ValueError("not a list of lessons")
        for row in rows:
            if (
                isinstance(row, list)
                and len(row) == 3
                and all(isinstance(value, int | float) and math.isfinite(value) for value in row)
            ):
                speed.learn(Lesson(float(row[0]), float(row[1]), float(row[2])))
        return speed


def _share(lesson: Lesson) -> float:
    """Half the width of a lesson's bracket, as a share of its middle."""
    return (lesson.high - lesson.low) / 2 / lesson.middle


def _fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Job seconds as ``fixed + per_second * audio``, least squares over ``(audio, end)``.

    Durations too alike to tell the two apart give the ratio alone (``fixed`` 0); so does a fit
    whose fixed cost comes out negative.
    """
    durations = [audio for audio, _ in points]
    ratio = statistics.median(end / audio for audio, end in points)
    if len(points) < 3 or max(durations) < FIT_SPREAD * min(durations):
        return 0.0, ratio
    per_second, fixed = statistics.linear_regression(durations, [end for _, end in points])
    if per_second <= 0 or fixed < 0:
        return 0.0, ratio
    return fixed, per_second


class JobPolls:
    """One job's polls, in seconds since the epoch (or any one clock)."""

    def __init__(self, submitted_at: float, audio_seconds: float | None, bounds: Bounds) -> None:
        self.submitted_at = submitted_at
        self.audio_seconds = audio_seconds
        self.polls = 0
        self._bounds = bounds
        self._last: float | None = None
        self._gap = bounds.initial
        self._running_at = submitted_at  # the last moment the job was known to be running
        self._webhook_at: float | None = None
        self._retry = 0.0  # the wait after polls that got no answer, growing while they fail

    def next_at(self, now: float, window: Window | None, *, webhooks: bool = False) -> float:
        """When to ask next (never before ``now``).

        With webhooks on, they say when the job ends and polling is the slow safety net.
        """
        bounds = self._bounds
        last = self._last if self._last is not None else self.submitted_at
        if self._retry:
            return max(now, last + self._retry)
        if webhooks:
            return max(now, last + bounds.longest)
        elapsed = max(0.0, now - self.submitted_at)
        if window is None:
            gap = self._gap  # the configured backoff
            if self.audio_seconds is not None:
                gap = min(gap, max(bounds.initial, LEARNING_SHARE * elapsed))
            return max(now, last + min(max(gap, bounds.shortest), bounds.longest))
        start = self.submitted_at + window.start
        end = self.submitted_at + window.end
        spacing = min(max(window.spacing, bounds.shortest), bounds.longest)
        if last + spacing < start:
            return max(now, min(start, last + bounds.longest))  # sparse until the window
        if last + spacing <= end:
            return max(now, last + spacing)  # dense across it
        late = min(max(LATE_SHARE * elapsed, spacing), bounds.longest)
        return max(now, last + late)  # the job outlives what was learned

    def asked(self, at: float, *, final: bool, answered: bool = True) -> Lesson | None:
        """A poll at ``at``; when its answer was final, what the job taught about speed.

        A poll that got no answer (an error) says nothing of the job; while polls fail, the
        waits back off as configured.
        """
        bounds = self._bounds
        self.polls += 1
        self._last = at
        self._gap = min(self._gap * bounds.factor, bounds.longest)
        if not answered:
            self._retry = min(max(self._retry * bounds.factor, bounds.initial), bounds.longest)
            return None
        self._retry = 0.0
        if not final:
            self._running_at = max(self._running_at, at)
            return None
        if self.audio_seconds is None:
            return None
        high, low = at, self._running_at
        if self._webhook_at is not None and self._webhook_at >= self._running_at:
            high = min(high, self._webhook_at)
            low = max(low, high - WEBHOOK_SECONDS)
        return Lesson(self.audio_seconds, low - self.submitted_at, high - self.submitted_at)

    def webhook(self, at: float) -> None:
        """A webhook said at ``at`` that the job ended: the end is known to the moment."""
        if self._webhook_at is None:
            self._webhook_at = at


class RequestBudget:
    """At most ``per_second`` status requests per second for the whole account.

    Time is cut into slots of ``1 / per_second`` seconds, one request each; a request takes the
    first free slot at or after the moment it wants.
    """

    def __init__(self, per_second: float) -> None:
        self._width = 1.0 / per_second
        self._taken: set[int] = set()

    def grant(self, wanted: float, now: float) -> float:
        """The moment a request wanted at ``wanted`` may go (its slot is then taken)."""
        self._taken = {slot for slot in self._taken if (slot + 1) * self._width > now}
        slot = math.floor(max(wanted, now) / self._width)
        while slot in self._taken:
            slot += 1
        self._taken.add(slot)
        return max(wanted, now, slot * self._width)
