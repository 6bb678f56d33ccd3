"""The stages' few lines to the cluster: a slot before an upload, ownership before filing.

Each stage asks the coordinator (``daemon.cluster``) through this one object, so that none of
them handles the database's answers, waits or failures itself:

- the uploader asks ``slot_for`` before it sends a file; refused, the file goes back to the
  front of its queue and no upload starts until the wait the coordinator named is over, or
  another host frees a slot (``slot_freed``);
- what frees or reports something (a job ended, a 429, an upload accepted, a file filed) is
  sent in the background: bookkeeping in a ``finally`` never awaits;
- the filer asks ``still_ours`` before it moves a file;
- a file this host turns out not to own any more (another host took it over while this one was
  cut off) is handed to ``on_lost``, which stops every local action on it.

For one host (``LocalCoordinator``) every answer is yes at once and nothing is sent anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from daemon.cluster.base import Coordinator
from daemon.logs import get_logger
from daemon.pipeline.supervisor import Supervisor

log = get_logger("symbl_inbox.cluster")


class Coordination:
    """What the stages ask of the cluster, and the wait for a free job slot."""

    def __init__(self, coordinator: Coordinator, supervisor: Supervisor) -> None:
        self.coordinator = coordinator
        self._supervisor = supervisor
        self._wait_until = 0.0
        self._wake_pending = False
        self._unreachable = False
        self.on_lost: Callable[[list[int]], None] = lambda file_ids: None
        self.pump: Callable[[], None] = lambda: None

    @property
    def shared(self) -> bool:
        return self.coordinator.shared

    # ------------------------------------------------------------------ job slots

    def may_start(self) -> bool:
        """Whether an upload may ask for a slot now (False while waiting for one)."""
        return time.monotonic() >= self._wait_until

    async def slot_for(self, file_id: int) -> bool:
        """A job slot of the account for this file; False: it waits (the pump is woken)."""
        if not self.shared:
            return True
        try:
            answer = await self.coordinator.take_slot(file_id)
        except Exception as exc:  # any database failure means: wait, retry
            self._trouble(exc)
            self._wait(5.0)
            return False
        self._reachable()
        if answer.granted:
            return True
        if answer.why == "lost":
            self.on_lost([file_id])
            return False
        if answer.why == "lease":
            log.warning(
                "cluster_lease_expired",
                message="this host's lease in the cluster is not renewed: it starts nothing "
                "new until the database answers again",
            )
        self._wait(answer.retry_seconds)
        return False

    def _wait(self, seconds: float) -> None:
        self._wait_until = max(self._wait_until, time.monotonic() + seconds)
        if not self._wake_pending:
            self._wake_pending = True
            self._supervisor.later(seconds, self._wake)

    def _wake(self) -> None:
        self._wake_pending = False
        if time.monotonic() < self._wait_until:
            self._wait(self._wait_until - time.monotonic())
            return
        self.pump()

    def slot_freed(self) -> None:
        """Another host freed a slot of the account (NOTIFY): ask again now."""
        self._wait_until = 0.0
        self.pump()

    def free(self, file_id: int) -> None:
        """The file's upload ended without a job, or its job ended: its slot goes back."""
        if self.shared:
            self._background(self.coordinator.free_slot(file_id))

    def rate_limited(self, job_cap: int, pause_seconds: float) -> None:
        if self.shared:
            self._background(self.coordinator.rate_limited(job_cap, pause_seconds))

    def submitted(self) -> None:
        if self.shared:
            self._background(self.coordinator.submitted())

    # ------------------------------------------------------------------ files

    async def still_ours(self, file_id: int) -> bool:
        """Before filing: whether this host still owns the file (else it is handed on)."""
        if not self.shared:
            return True
        try:
            ours = await self.coordinator.confirm(file_id)
        except Exception as exc:  # unreachable: not confirmed, tried later
            self._trouble(exc)
            return False
        self._reachable()
        if not ours and self.coordinator.lease_valid():
            self.on_lost([file_id])
        return ours

    def release(self, file_id: int) -> None:
        """The file left its inbox (filed) or vanished: its claim (and any slot) ends."""
        if self.shared:
            self._background(self.coordinator.release(file_id))

    # ------------------------------------------------------------------ plumbing

    def _background(self, work: Awaitable[object]) -> None:
        async def run() -> None:
            try:
                await work
            except Exception as exc:  # logged; the heartbeat tells the rest
                self._trouble(exc)
            else:
                self._reachable()

        self._supervisor.spawn(run())

    def _trouble(self, exc: BaseException) -> None:
        if not self._unreachable:
            self._unreachable = True
            log.warning(
                "cluster_unreachable",
                error=str(exc) or type(exc).__name__,
                message="the cluster's database does not answer; work under way goes on, "
                "nothing new starts once this host's lease runs out",
            )

    def _reachable(self) -> None:
        if self._unreachable:
            self._unreachable = False
            log.info("cluster_reachable")

    def trouble(self, exc: BaseException) -> None:
        """The heartbeat failed (told by the keeper)."""
        self._trouble(exc)

    def reachable(self) -> None:
        self._reachable()
