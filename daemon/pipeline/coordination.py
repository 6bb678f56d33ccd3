"""The stages' few lines to the cluster: a slot before an upload, ownership before filing.

Each stage asks the coordinator (``daemon.cluster``) through this one object, so that none of
them handles the database's answers, waits or failures itself:

- the inboxes ``claim`` a file before they record it, and ``bind`` the record to the claim; a
  host that holds ``budget`` files already ``defer``s new ones (the other hosts may take them)
  and looks at them again as its own files are ``release``d;
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

from daemon.cluster.base import Coordinator, SlotAnswer, Wakeups
from daemon.cluster.local import LocalCoordinator
from daemon.logs import get_logger
from daemon.pipeline.supervisor import Supervisor

log = get_logger("symbl_inbox.cluster")

_GRANTED = SlotAnswer(True)


class Coordination:
    """What the stages ask of the cluster, and the wait for a free job slot."""

    def __init__(
        self, coordinator: Coordinator | None = None, supervisor: Supervisor | None = None
    ) -> None:
        """Without arguments: one host alone (every answer yes), as unit tests of stages use."""
        coordinator = coordinator or LocalCoordinator()
        supervisor = supervisor or Supervisor()
        self.coordinator = coordinator
        self._supervisor = supervisor
        # The database did not answer: the uploads ask again after this long.
        self._retry_seconds = 2.0
        self._wait_until = 0.0
        self._wake_pending = False
        self._unreachable = False
        # Files whose claim the database did not answer.
        self._claim_failed: dict[tuple[str, str], None] = {}
        self._following: dict[int, str] = {}
        self._frees = 0  # slots freed by any host so far, as NOTIFY told
        # Files seen and left unclaimed while this host held ``budget`` files (oldest first).
        self._deferred: dict[tuple[str, str], None] = {}
        self.budget = 1 << 30
        self.see_again: Callable[[tuple[str, str]], None] = lambda key: None
        self.on_lost: Callable[[list[int]], None] = lambda file_ids: None
        self.pump: Callable[[], None] = lambda: None

    @property
    def shared(self) -> bool:
        return self.coordinator.shared

    # ------------------------------------------------------------------ job slots

    def may_start(self) -> bool:
        """Whether an upload may ask for a slot now (False while waiting for one)."""
        return time.monotonic() >= self._wait_until

    async def slot_for(self, file_id: int) -> SlotAnswer:
        """A job slot of the account for this file. Refused, the uploads wait (the pump is
        woken when they may ask again); refused as ``lost``, the file is let go."""
        if not self.shared:
            return _GRANTED
        frees = self._frees
        try:
            answer = await self.coordinator.take_slot(file_id)
        except Exception as exc:  # any database failure means: wait, retry
            self._trouble(exc)
            self._wait(self._retry_seconds)
            return SlotAnswer(False, self._retry_seconds, "unreachable")
        self._reachable()
        if answer.granted:
            return answer
        if answer.why == "lost":
            self.on_lost([file_id])
            return answer
        if answer.why == "lease":
            log.warning(
                "cluster_lease_expired",
                message="this host's lease in the cluster is not renewed: it starts nothing "
                "new until the database answers again",
            )
        if answer.why == "full" and self._frees != frees:
            # A slot was freed while the answer travelled: ask again now, not after the wait.
            self._supervisor.later(0.0, self.pump)
            return answer
        self._wait(answer.retry_seconds)
        return answer

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
        self._frees += 1
        self._wait_until = 0.0
        self.pump()

    def free(self, file_id: int) -> None:
        """The file's upload ended without a job, or its job ended: its slot goes back."""
        if self.shared:
            self._following.pop(file_id, None)
            self._background(self.coordinator.free_slot(file_id))

    def following(self, file_id: int, job_id: str) -> None:
        """The file's job is followed: a webhook saying it ended frees its slot early."""
        if self.shared:
            self._following[file_id] = job_id

    def job_ended(self, job_id: str) -> None:
        """A webhook said the job ended: its slot is free at once, as the account counts it
        (the check that files it comes later)."""
        for file_id, followed in list(self._following.items()):
            if followed == job_id:
                self.free(file_id)

    def rate_limited(self, job_cap: int, pause_seconds: float) -> None:
        if self.shared:
            self._background(self.coordinator.rate_limited(job_cap, pause_seconds))

    def submitted(self) -> None:
        if self.shared:
            self._background(self.coordinator.submitted())

    def announce_job_ended(self, job_id: str) -> None:
        """A webhook for a job this host does not follow: the host that does is woken."""
        if self.shared:
            self._background(self.coordinator.announce_job_ended(job_id))

    async def start(self, job_ended: Callable[[str], object]) -> None:
        """Join the cluster: take this host's lease, listen for the other hosts' wake-ups."""
        await self.coordinator.start(Wakeups(job_ended=job_ended, slot_freed=self.slot_freed))

    # ------------------------------------------------------------------ files

    async def still_ours(self, file_id: int) -> bool | None:
        """Before filing: True, this host still owns the file; False, another host took it
        (it is let go); None, nobody can tell now (the database does not answer, or this
        host's lease ran out): try again later."""
        if not self.shared:
            return True
        try:
            ours = await self.coordinator.confirm(file_id)
        except Exception as exc:  # unreachable: not confirmed, tried later
            self._trouble(exc)
            return None
        self._reachable()
        if ours:
            return True
        if not self.coordinator.lease_valid():
            return None
        self.on_lost([file_id])
        return False

    async def claim(self, inbox: str, rel_path: str) -> bool:
        """A file seen in a shared inbox: True when this host owns it now."""
        if not self.shared:
            return True
        if self.coordinator.known_elsewhere(inbox, rel_path):
            return False
        try:
            won = await self.coordinator.claim(inbox, rel_path)
        except Exception as exc:  # unreachable: looked at again once the database answers
            self._trouble(exc)
            self._claim_failed[(inbox, rel_path)] = None
            return False
        self._reachable()
        if not won:
            self._look_again()  # another host had it: a file left unclaimed may be free
        return won

    async def bind(self, inbox: str, rel_path: str, file_id: int) -> None:
        """The claimed file got its journal record (before any upload asks for a slot)."""
        if not self.shared:
            return
        try:
            await self.coordinator.bind(inbox, rel_path, file_id)
        except Exception as exc:  # unreachable: its upload finds no claim and waits
            self._trouble(exc)

    def rescanning(self) -> None:
        """A full scan: files other hosts held are claimed again (they may be gone)."""
        self.coordinator.forget_elsewhere()
        self._deferred.clear()  # the scan sees them again

    def defer(self, key: tuple[str, str], holding: int) -> bool:
        """Whether a file seen now waits unclaimed: this host holds ``holding`` files, as many
        as it can work on soon, and the other hosts may take it meanwhile."""
        if not self.shared or holding < self.budget:
            return False
        self._deferred[key] = None
        return True

    def release(self, file_id: int) -> None:
        """The file left its inbox (filed) or vanished: its claim (and any slot) ends, and a
        file seen but left unclaimed is looked at again."""
        if self.shared:
            self._background(self.coordinator.release(file_id))
            self._look_again()

    def _look_again(self) -> None:
        if self._deferred:
            key = next(iter(self._deferred))
            del self._deferred[key]
            self.see_again(key)

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
        # Not at the next full scan, minutes away: no event will tell of these files again.
        failed, self._claim_failed = self._claim_failed, {}
        for key in failed:
            self.see_again(key)

    def trouble(self, exc: BaseException) -> None:
        """The heartbeat failed (told by the keeper)."""
        self._trouble(exc)

    def reachable(self) -> None:
        self._reachable()
