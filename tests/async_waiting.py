"""Waiting on a condition inside a test's event loop: polled, bounded, with a clear failure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

WAIT_SECONDS = 15.0


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]], within: float = WAIT_SECONDS
) -> None:
    """Poll ``predicate`` (plain or async) until it holds; fail with a clear message if never."""
    deadline = time.monotonic() + within
    while True:
        outcome = predicate()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)
