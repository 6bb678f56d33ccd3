"""Types shared by the configuration tests and their fixtures."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """What ``symbl-inbox check-config`` did: exit code, stdout, and stderr split into lines."""

    code: int
    out: str
    errors: list[str]
