"""Tasks and timers of the pipeline: spawned, timed, logged when they fail, ended in order.

Every stage starts its background work here, so that the shutdown finds all of it: timers are
cancelled first (nothing new begins), then the tasks a stage names are ended in its order, then
every other task. An exception in a task or a timer is logged as ``internal_error``; it never
stops the daemon. A task's bookkeeping (the slot it frees) runs in its ``finally`` without
awaiting anything, so a cancellation cannot cut it short; the state it puts back in the journal
is awaited, and should a second cancellation cut that short, recovery at the next start puts it
back the same way.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from daemon.logs import get_logger

log = get_logger("symbl_inbox.supervisor")

T = TypeVar("T")


class Supervisor:
    """Owns the daemon's background tasks and timers, and its stop event."""

    def __init__(self) -> None:
        self.stop_event = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``coroutine`` as a task of the daemon's; its failure is logged."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("internal_error", exc_info=task.exception())

    def later(self, delay: float, callback: Callable[[], Awaitable[None] | None]) -> None:
        """Run ``callback`` on the loop after ``delay``; errors are logged, never fatal.

        A callback that is a coroutine function runs as a task of the daemon's. Nothing runs
        once the daemon is stopping.
        """
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            if self.stop_event.is_set():
                return
            try:
                result = callback()
            except Exception:
                log.exception("internal_error")
                return
            if inspect.isawaitable(result):
                self.spawn(_awaited(result))

        handle = asyncio.get_running_loop().call_later(max(0.0, delay), fire)
        self._timers.add(handle)

    async def every(self, seconds: float, tick: Callable[[], Awaitable[None] | None]) -> None:
        """Call ``tick`` every ``seconds`` until the daemon stops; a failing tick is logged."""
        while not self.stop_event.is_set():
            await asyncio.sleep(seconds)
            try:
                result = tick()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("internal_error")

    def cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    async def end_all(self, *also: Awaitable[Any]) -> None:
        """Cancel every task still running and wait for them (and ``also``) to end."""
        others = [task for task in self._tasks if not task.done()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, *also, return_exceptions=True)


async def _awaited(awaitable: Awaitable[None]) -> None:
    await awaitable
