"""How the emulator behaves: job timing, the account's limit, tokens and deliberate misbehaviour."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

_RATES = ("fault_rate", "lost_response_rate", "job_failure_rate")
_NON_NEGATIVE = ("job_seconds", "job_seconds_per_audio_second", "latency_seconds")
_SCHEDULED_SHARE = 0.2


@dataclass(frozen=True)
class EmulatorSettings:
    """Every knob of the emulator; the defaults behave like a healthy upgraded account."""

    job_seconds: float = 0.5
    # Job time added per second of audio, so that longer recordings take longer, as on Symbl.
    job_seconds_per_audio_second: float = 0.0
    # Each job's time varies by up to this share either way (seeded by ``seed``).
    job_seconds_spread: float = 0.0
    max_jobs: int = 50
    token_ttl: float = 86400.0
    fault_rate: float = 0.0
    lost_response_rate: float = 0.0
    latency_seconds: float = 0.0
    job_failure_rate: float = 0.0
    app_id: str | None = None
    app_secret: str | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        """What is wrong with these values, as sentences (empty when all is well)."""
        found: list[str] = []
        for name in _RATES:
            if not 0.0 <= getattr(self, name) <= 1.0:
                found.append(f"{name} must be between 0 and 1")
        for name in _NON_NEGATIVE:
            if getattr(self, name) < 0:
                found.append(f"{name} must not be negative")
        if not 0.0 <= self.job_seconds_spread < 1.0:
            found.append("job_seconds_spread must be at least 0 and below 1")
        if self.max_jobs < 1:
            found.append("max_jobs must be at least 1")
        if self.token_ttl <= 0:
            found.append("token_ttl must be positive")
        if (self.app_id is None) != (self.app_secret is None):
            found.append("app_id and app_secret go together")
        return found

    @property
    def checks_credentials(self) -> bool:
        return self.app_id is not None

    def job_time(self, audio_seconds: float, draw: float) -> tuple[float, float]:
        """A job's run and scheduled seconds for its audio; ``draw`` is uniform in [-1, 1]."""
        run = self.job_seconds + self.job_seconds_per_audio_second * audio_seconds
        run *= 1.0 + self.job_seconds_spread * draw
        return run, run * _SCHEDULED_SHARE

    def replace(self, **changes: Any) -> EmulatorSettings:
        """A copy with ``changes`` applied; unknown field names raise ``TypeError``."""
        known = {field.name for field in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise TypeError(f"unknown emulator settings: {', '.join(unknown)}")
        return dataclasses.replace(self, **changes)

    def public_view(self) -> dict[str, Any]:
        """The settings as JSON, with the secret masked."""
        view = dataclasses.asdict(self)
        if view["app_secret"] is not None:
            view["app_secret"] = "***"
        return view
