"""One host alone: it owns every file it sees and every slot of its account.

The stages ask the coordinator before they act; for one host every answer is yes at once and
nothing is written anywhere, so a daemon with the SQLite journal behaves exactly as it did
before there were clusters: its scheduler's own count of jobs is the account's, its 429 pause
is the account's, and nobody else can take a file from it.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable

from daemon.cluster.base import Adopted, HostHolding, SlotAnswer, Wakeups


class LocalCoordinator:
    """The Coordinator of a daemon that shares its journal with nobody."""

    def __init__(self, host_id: str | None = None) -> None:
        self._host_id = host_id or socket.gethostname()

    @property
    def host_id(self) -> str:
        return self._host_id

    @property
    def shared(self) -> bool:
        return False

    async def start(self, wakeups: Wakeups) -> None:
        return None

    async def close(self) -> None:
        return None

    def lease_valid(self) -> bool:
        return True

    async def heartbeat(self) -> list[int]:
        return []

    def owns(self, file_id: int) -> bool:
        return True

    def known_elsewhere(self, inbox: str, rel_path: str) -> bool:
        return False

    def forget_elsewhere(self) -> None:
        return None

    async def claim(self, inbox: str, rel_path: str) -> bool:
        return True

    async def bind(self, inbox: str, rel_path: str, file_id: int) -> None:
        return None

    async def confirm(self, file_id: int) -> bool:
        return True

    async def release(self, file_id: int) -> None:
        return None

    async def take_slot(self, file_id: int) -> SlotAnswer:
        return SlotAnswer(granted=True)

    async def free_slot(self, file_id: int) -> None:
        return None

    async def rate_limited(self, job_cap: int, pause_seconds: float) -> None:
        return None

    async def submitted(self) -> None:
        return None

    async def adopt(self, inboxes: Iterable[str]) -> list[Adopted]:
        return []

    async def note_reupload(self, file_id: int) -> None:
        return None

    async def holdings(self) -> list[HostHolding]:
        return []

    async def announce_job_ended(self, job_id: str) -> None:
        return None
