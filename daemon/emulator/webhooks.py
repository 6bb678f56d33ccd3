"""Job status updates POSTed to each job's ``webhookUrl``, retried until answered 200.

One background task follows the clock: it sleeps until the next status change is due (or until
the state says something changed), then hands the changes over. Each job's updates go out one
after another, in order, so a receiver never sees ``completed`` before ``in_progress``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from daemon.emulator.poster import JsonPoster, PostFailed
from daemon.emulator.state import EmulatorState, StatusChange, WebhookDelivery
from daemon.logs import get_logger

FINAL_STATUSES = ("completed", "failed")
_IDLE_WAKE_SECONDS = 1.0
_FIRST_RETRY_SECONDS = 0.05
_MAX_RETRY_SECONDS = 2.0
# About ten minutes of retrying at the capped interval: "until answered 200", within reason.
MAX_ATTEMPTS = 300
# Updates for many jobs go out at once; a few kept-alive connections carry them without a new
# TCP connection per update.
_CONNECTIONS = 16
_POST_TIMEOUT_SECONDS = 5.0

log = get_logger(__name__)


class WebhookSender:
    """Runs inside the server's event loop for as long as the app lives (see ``running``)."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._queues: dict[str, asyncio.Queue[StatusChange]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def wake_up() -> None:
            loop.call_soon_threadsafe(wake.set)

        self.state.on_change = wake_up
        poster = JsonPoster(timeout=_POST_TIMEOUT_SECONDS, per_origin=_CONNECTIONS)
        watcher = asyncio.create_task(self._watch(wake, poster))
        try:
            yield
        finally:
            self.state.on_change = lambda: None
            for task in (watcher, *self._tasks):
                task.cancel()
            await asyncio.gather(watcher, *self._tasks, return_exceptions=True)
            poster.close()

    async def _watch(self, wake: asyncio.Event, poster: JsonPoster) -> None:
        while True:
            wake.clear()
            for change in self.state.take_status_changes():
                self._enqueue(change, poster)
            delay = self.state.next_change_in()
            timeout = _IDLE_WAKE_SECONDS if delay is None else min(delay, _IDLE_WAKE_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout)

    def _enqueue(self, change: StatusChange, poster: JsonPoster) -> None:
        queue = self._queues.get(change.job_id)
        if queue is None:
            queue = self._queues[change.job_id] = asyncio.Queue()
            task = asyncio.create_task(self._deliver_in_order(change.job_id, queue, poster))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        queue.put_nowait(change)

    async def _deliver_in_order(
        self, job_id: str, queue: asyncio.Queue[StatusChange], poster: JsonPoster
    ) -> None:
        try:
            while True:
                change = await queue.get()
                await self._deliver(change, poster)
                if change.status in FINAL_STATUSES:
                    return
        finally:
            self._queues.pop(job_id, None)

    async def _deliver(self, change: StatusChange, poster: JsonPoster) -> None:
        # The docs say ``jobId``; their own sample receiver reads ``id``: send both.
        payload = {"jobId": change.job_id, "id": change.job_id, "status": change.status}
        delay = _FIRST_RETRY_SECONDS
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if await _post(poster, change.webhook_url, payload):
                self.state.record_webhook(_delivery(change, attempt, answered=True))
                return
            await asyncio.sleep(delay)
            delay = min(delay * 2, _MAX_RETRY_SECONDS)
        log.warning("webhook_abandoned", job_id=change.job_id, status=change.status)
        self.state.record_webhook(_delivery(change, MAX_ATTEMPTS, answered=False))


async def _post(poster: JsonPoster, url: str, payload: dict[str, str]) -> bool:
    try:
        return await poster.post(url, payload) == 200
    except PostFailed:
        return False


def _delivery(change: StatusChange, attempts: int, *, answered: bool) -> WebhookDelivery:
    return WebhookDelivery(change.job_id, change.status, change.webhook_url, attempts, answered)
