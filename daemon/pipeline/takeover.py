"""Hosts of a cluster: this host's heartbeat, the takeover of dead hosts' files, lost files.

Every ``heartbeat_seconds`` the keeper renews this host's lease and looks for hosts whose
lease ran out. Their files in the inboxes this host mounts become this host's and resume as a
restart would resume them (``daemon.cluster.takeover``): jobs are followed on, interrupted
uploads sent again (counted), final files filed. A file this host learns it lost (another host
took it over while this one could not renew its lease) is let go: no upload, poll or move of
it happens here any more, and the log says so.

For one host alone the keeper does nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from daemon.cluster.takeover import Resume, resume
from daemon.logs import get_logger
from daemon.model import FileRecord

if TYPE_CHECKING:
    from daemon.pipeline.coordination import Coordination
    from daemon.pipeline.inboxes import Inboxes
    from daemon.pipeline.scheduler import Scheduler
    from daemon.pipeline.shell import Shell
    from daemon.pipeline.supervisor import Supervisor
    from daemon.pipeline.tracker import Tracker
    from daemon.pipeline.uploader import Uploader

log = get_logger("symbl_inbox.cluster")


class Takeover:
    """The heartbeat task, and what a takeover or a lost lease does to the stages."""

    def __init__(
        self,
        shell: Shell,
        coordination: Coordination,
        supervisor: Supervisor,
        *,
        scheduler: Scheduler,
        tracker: Tracker,
        inboxes: Inboxes,
        uploader: Uploader,
        heartbeat_seconds: float,
    ) -> None:
        self._shell = shell
        self._coordination = coordination
        self._supervisor = supervisor
        self._scheduler = scheduler
        self._tracker = tracker
        self._inboxes = inboxes
        self._uploader = uploader
        self._seconds = heartbeat_seconds
        coordination.on_lost = self.lost

    async def run(self) -> None:
        """Heartbeat and adopt until the daemon stops (at once at start: a host that died
        while this one was down is taken over before new work begins)."""
        if not self._coordination.shared:
            return
        stop = self._supervisor.stop_event
        while not stop.is_set():
            try:
                await self.beat()
            except Exception as exc:  # the database does not answer: told once, tried again
                self._coordination.trouble(exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._seconds)

    async def beat(self) -> None:
        coordinator = self._coordination.coordinator
        lost = await coordinator.heartbeat()
        self._coordination.reachable()
        if lost:
            self.lost(lost)
        inboxes = [inbox.key for inbox in self._shell.config.inboxes]
        for adopted in await coordinator.adopt(inboxes):
            record = await self._shell.db.get(adopted.file_id)
            if record is not None:
                await self._resume(record, adopted.from_host)

    async def _resume(self, record: FileRecord, from_host: str) -> None:
        action = resume(record, from_host)
        if action is Resume.NOTHING:
            return
        await self._shell.db.save(record)
        self._inboxes.active[(record.inbox, record.rel_path)] = record.id
        log.info(
            "file_taken_over",
            inbox=record.inbox,
            file=record.rel_path,
            from_host=from_host,
            state=record.state,
            action=action,
        )
        if action is Resume.FOLLOW:
            self._tracker.start(record)
        elif action is Resume.RESEND:
            log.warning(
                "file_sent_again_after_takeover",
                inbox=record.inbox,
                file=record.rel_path,
                from_host=from_host,
                message=f"{from_host} was uploading it when it stopped; it may have been "
                "received, so it is sent again (at least once)",
            )
            await self._coordination.coordinator.note_reupload(record.id)
            self._scheduler.enqueue(record.inbox, record.id, front=True)
            self._shell.pump()
        elif action is Resume.QUEUE:
            self._scheduler.enqueue(record.inbox, record.id)
            self._shell.pump()
        elif action is Resume.SETTLE:
            self._shell.retrack(record)
        elif action is Resume.HOLD and record.conversation_key is not None:
            self._shell.act(
                await self._shell.conversations.reconcile(record.inbox, record.conversation_key)
            )
        elif action is Resume.FILE:
            self._supervisor.spawn(self._shell.file(record))

    def lost(self, file_ids: list[int]) -> None:
        """Files another host took over: every local action on them stops here."""
        for file_id in file_ids:
            followed = self._tracker.tracking.get(file_id)
            if followed is not None:
                followed.cancel()
            upload = self._uploader.uploading.get(file_id)
            if upload is not None:
                upload.cancel()
            for (inbox, rel_path), known in list(self._inboxes.active.items()):
                if known == file_id:
                    del self._inboxes.active[(inbox, rel_path)]
                    self._scheduler.discard(inbox, file_id)
                    runtime = self._inboxes.runtimes.get(inbox)
                    if runtime is not None:
                        runtime.tracked.pop(rel_path, None)
                    log.warning(
                        "file_lost_to_another_host",
                        inbox=inbox,
                        file=rel_path,
                        message="this host's lease ran out and another host took the file "
                        "over: nothing more is done with it here",
                    )
