"""One host alone: the coordinator says yes to everything and writes nothing anywhere."""

from __future__ import annotations

import socket

from daemon.cluster.base import Coordinator, Wakeups
from daemon.cluster.local import LocalCoordinator


class TestLocalCoordinator:
    """Today's behaviour: every file and every slot is this host's."""

    async def test_every_file_and_slot_is_granted(self) -> None:
        coordinator: Coordinator = LocalCoordinator()
        await coordinator.start(Wakeups())
        assert not coordinator.shared and coordinator.lease_valid()
        assert await coordinator.claim("sales", "x.wav")
        assert not coordinator.known_elsewhere("sales", "x.wav")
        await coordinator.bind("sales", "x.wav", 1)
        assert await coordinator.confirm(1)
        answers = [await coordinator.take_slot(n) for n in range(1000)]
        assert all(answer.granted for answer in answers)
        await coordinator.close()

    async def test_it_never_adopts_loses_or_reports_hosts(self) -> None:
        coordinator = LocalCoordinator()
        assert await coordinator.heartbeat() == []
        assert await coordinator.adopt(["sales"]) == []
        assert await coordinator.holdings() == []

    def test_its_host_id_defaults_to_the_host_name(self) -> None:
        assert LocalCoordinator().host_id == socket.gethostname()
        assert LocalCoordinator("edge-1").host_id == "edge-1"
