"""The Coordinator protocol: what the stages ask before they act on a file, a slot or a host.

One daemon alone owns every file it sees and every job slot of its account; the stages then
ask nothing of anyone and ``local.LocalCoordinator`` answers yes at once. Daemons on several
hosts that share a PostgreSQL journal must agree instead (``postgres.PostgresCoordinator``):

- **files**: a file has one owner. A host ``claim``s a file it sees before it writes a record
  of it; a file claimed by another host is left alone. Before an upload and before filing, a
  host ``confirm``s it still owns the file and its lease is valid: a host that was cut off for
  longer than its lease may have lost the file to another host, and then never touches it.
- **job slots**: the account's concurrent-job limit is a set of slot rows with owners, so two
  hosts never both see the last slot free. A slot is taken before an upload and freed when its
  job ends (or the upload ends without a job). The cap learned from 429s and the pause they
  start are the account's, shared by every host.
- **hosts**: each host renews its lease every ``heartbeat_seconds``; a host whose lease expired
  is dead to the others, who ``adopt`` its files: ``submitted`` jobs are followed on, files
  ``uploading`` without a job id are sent again (the at-least-once window, counted), final
  files not yet filed are filed. A host that cannot renew its lease starts nothing new.
- **wake-ups**: a webhook may reach any host; the host that receives it tells the owner
  (``announce_job_ended``), and a freed slot wakes the hosts waiting for one.

Every method that may reach the database is a coroutine; the answers are plain values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class SlotAnswer:
    """Whether a job slot was granted; when not, how long to wait before asking again."""

    granted: bool
    retry_seconds: float = 0.0
    why: str = ""


@dataclass(frozen=True)
class Adopted:
    """A file taken over from a host whose lease expired."""

    file_id: int
    from_host: str


@dataclass(frozen=True)
class HostHolding:
    """What one host holds, for ``status``: its lease, its files and slots, its re-uploads."""

    host_id: str
    alive: bool
    heartbeat_age_seconds: float
    files: int
    slots: int
    reuploads_after_takeover: int
    adopted: int


@dataclass
class Wakeups:
    """What the coordinator calls when another host tells this one something."""

    job_ended: Callable[[str], object] = field(default=lambda job_id: None)
    slot_freed: Callable[[], object] = field(default=lambda: None)


class Coordinator(Protocol):
    """Agreement between the hosts that share one journal (or none, for one host)."""

    @property
    def host_id(self) -> str:
        """This host's name in the cluster (``cluster.host_id``, by default the host name)."""

    @property
    def shared(self) -> bool:
        """Whether other hosts may share the journal (False: every answer is yes at once)."""

    async def start(self, wakeups: Wakeups) -> None:
        """Join: register this host and take its first lease; listen for wake-ups."""

    async def close(self) -> None:
        """Leave: stop heartbeating and listening. Claims and slots stay (a restart resumes)."""

    # ------------------------------------------------------------------ lease

    def lease_valid(self) -> bool:
        """Whether this host's lease, as last renewed, still holds (no database round trip)."""

    async def heartbeat(self) -> list[int]:
        """Renew the lease; the ids of files this host believed it owned but no longer does
        (taken over while it was cut off). Raises when the database cannot be reached."""

    # ------------------------------------------------------------------ files

    def owns(self, file_id: int) -> bool:
        """Whether this host holds the file, as far as it knows (no database round trip)."""

    def known_elsewhere(self, inbox: str, rel_path: str) -> bool:
        """Whether another host owned this file at the last claim (no database round trip)."""

    def forget_elsewhere(self) -> None:
        """Before a rescan: files claimed elsewhere are claimed again (they may be filed)."""

    async def claim(self, inbox: str, rel_path: str) -> bool:
        """Become the file's owner; False when another live host owns it."""

    async def bind(self, inbox: str, rel_path: str, file_id: int) -> None:
        """Note the journal record that the claimed file got (takeover finds it by this)."""

    async def confirm(self, file_id: int) -> bool:
        """Whether this host still owns the file with a valid lease (before acting on it)."""

    async def release(self, file_id: int) -> None:
        """The file left the inbox (filed) or vanished: its claim ends."""

    # ------------------------------------------------------------------ job slots

    async def take_slot(self, file_id: int) -> SlotAnswer:
        """A job slot of the account for this file's upload and job (kept if it has one)."""

    async def free_slot(self, file_id: int) -> None:
        """The file's job ended, or its upload ended without a job: its slot is free."""

    async def rate_limited(self, job_cap: int, pause_seconds: float) -> None:
        """A 429: the account takes ``job_cap`` jobs; nobody submits for ``pause_seconds``."""

    async def submitted(self) -> None:
        """An upload was accepted: a shared pause streak ends."""

    # ------------------------------------------------------------------ hosts

    async def adopt(self, inboxes: Iterable[str]) -> list[Adopted]:
        """Take over the files (of these inboxes) and slots of hosts whose lease expired."""

    async def note_reupload(self, file_id: int) -> None:
        """An adopted file that was ``uploading`` is sent again: counted for ``status``."""

    async def holdings(self) -> list[HostHolding]:
        """Per host: lease, files and slots held, re-uploads after takeover."""

    # ------------------------------------------------------------------ wake-ups

    async def announce_job_ended(self, job_id: str) -> None:
        """A webhook said this job ended, and no job of this host has that id: tell its owner."""
