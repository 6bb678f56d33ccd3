"""The stages' answers from the cluster: a refused slot holds the uploads back until the wait
is over or a slot is freed; a lost file is let go; an unreachable database means: try later."""

from __future__ import annotations

from collections.abc import Iterable

from async_waiting import wait_until

from daemon.cluster.base import Adopted, HostHolding, SlotAnswer, Wakeups
from daemon.cluster.local import LocalCoordinator
from daemon.pipeline.coordination import Coordination
from daemon.pipeline.supervisor import Supervisor


class Shared(LocalCoordinator):
    """A coordinator of a cluster whose answers the test sets."""

    def __init__(self) -> None:
        super().__init__("test-host")
        self.slot = SlotAnswer(True)
        self.ours: bool | Exception = True
        self.lease = True
        self.freed: list[int] = []

    @property
    def shared(self) -> bool:
        return True

    def lease_valid(self) -> bool:
        return self.lease

    async def take_slot(self, file_id: int) -> SlotAnswer:
        return self.slot

    async def free_slot(self, file_id: int) -> None:
        self.freed.append(file_id)

    async def confirm(self, file_id: int) -> bool:
        if isinstance(self.ours, Exception):
            raise self.ours
        return self.ours

    async def start(self, wakeups: Wakeups) -> None:
        return None

    async def adopt(self, inboxes: Iterable[str]) -> list[Adopted]:
        return []

    async def holdings(self) -> list[HostHolding]:
        return []


def made() -> tuple[Coordination, Shared, list[str]]:
    coordinator = Shared()
    coordination = Coordination(coordinator, Supervisor())
    pumped: list[str] = []
    coordination.pump = lambda: pumped.append("pump")
    return coordination, coordinator, pumped


class TestSlots:
    """Uploads start only with a slot of the account."""

    async def test_one_host_alone_is_always_granted(self) -> None:
        coordination = Coordination()
        assert (await coordination.slot_for(1)).granted and coordination.may_start()
        assert await coordination.still_ours(1) is True

    async def test_a_full_account_holds_uploads_until_a_slot_is_freed(self) -> None:
        coordination, coordinator, pumped = made()
        coordinator.slot = SlotAnswer(False, 30.0, "full")
        assert not (await coordination.slot_for(1)).granted
        assert not coordination.may_start()
        coordination.slot_freed()  # another host's job ended
        assert coordination.may_start() and pumped == ["pump"]

    async def test_the_wait_ends_by_itself(self) -> None:
        coordination, coordinator, pumped = made()
        coordinator.slot = SlotAnswer(False, 0.05, "paused")
        await coordination.slot_for(1)
        assert not coordination.may_start()
        await wait_until(lambda: bool(pumped))
        assert coordination.may_start()

    async def test_a_file_another_host_took_is_let_go(self) -> None:
        coordination, coordinator, _ = made()
        lost: list[int] = []
        coordination.on_lost = lost.extend
        coordinator.slot = SlotAnswer(False, 0.0, "lost")
        answer = await coordination.slot_for(7)
        assert answer.why == "lost" and lost == [7] and coordination.may_start()

    async def test_freeing_is_sent_in_the_background(self) -> None:
        coordination, coordinator, _ = made()
        coordination.free(3)
        await wait_until(lambda: bool(coordinator.freed))
        assert coordinator.freed == [3]


class TestOwnership:
    """Before filing, the file must still be this host's."""

    async def test_a_file_taken_over_is_let_go(self) -> None:
        coordination, coordinator, _ = made()
        lost: list[int] = []
        coordination.on_lost = lost.extend
        coordinator.ours = False
        assert await coordination.still_ours(5) is False and lost == [5]

    async def test_without_a_lease_nobody_can_tell(self) -> None:
        coordination, coordinator, _ = made()
        coordinator.ours, coordinator.lease = False, False
        assert await coordination.still_ours(5) is None

    async def test_an_unreachable_database_means_try_later(self) -> None:
        coordination, coordinator, _ = made()
        coordinator.ours = OSError("connection refused")
        assert await coordination.still_ours(5) is None

    async def test_a_webhook_frees_the_jobs_slot_at_once(self) -> None:
        coordination, coordinator, _ = made()
        coordination.following(4, "job-4")
        coordination.job_ended("job-9")  # not ours
        coordination.job_ended("job-4")
        await wait_until(lambda: bool(coordinator.freed))
        assert coordinator.freed == [4]
