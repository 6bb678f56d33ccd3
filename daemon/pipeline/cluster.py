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
import time
from typing import Protocol

from prometheus_client import Counter

from daemon.cluster.factory import coordinator_for
from daemon.cluster.takeover import Resume, resume
from daemon.http.metrics import PREFIX, Metrics
from daemon.journal import Journal
from daemon.journal.opening import JournalUnavailable, open_journal
from daemon.logs import get_logger
from daemon.model import FileRecord
from daemon.pipeline.coordination import Coordination
from daemon.pipeline.filer import Filer
from daemon.pipeline.inboxes import Inboxes
from daemon.pipeline.scheduler import Scheduler
from daemon.pipeline.shell import Shell
from daemon.pipeline.supervisor import Supervisor
from daemon.pipeline.tracker import Tracker
from daemon.pipeline.uploader import Uploader

log = get_logger("symbl_inbox.cluster")

ADOPT_CHECK_SECONDS = 1.0


__all__ = ["Cluster", "JournalUnavailable", "open_and_join"]


async def open_and_join(daemon: ClusterHost) -> Journal:
    """The daemon's journal (``open_journal``), with this host joined to the hosts that share
    it (nothing to join for SQLite). Raises ``JournalUnavailable``, saying why."""
    return await Cluster(daemon).join(await open_journal(daemon.config))


class ClusterHost(Shell, Protocol):
    """What the cluster needs of the daemon: its stages, its tasks, its metrics."""

    supervisor: Supervisor
    scheduler: Scheduler
    tracker: Tracker
    watched: Inboxes
    uploader: Uploader
    filer: Filer
    ready_event: asyncio.Event
    metrics: Metrics


class Cluster:
    """This host among the hosts that share the journal: joining, heartbeat, takeover."""

    def __init__(self, daemon: ClusterHost) -> None:
        self._daemon = daemon
        self._supervisor = daemon.supervisor
        self._scheduler = daemon.scheduler
        self._tracker = daemon.tracker
        self._inboxes = daemon.watched
        self._uploader = daemon.uploader
        self._seconds = daemon.config.cluster.heartbeat_seconds
        self._coordination = Coordination(coordinator_for(daemon.config), daemon.supervisor)
        self._coordination.on_lost = self.lost
        # A host claims what it can work on soon, leaving the rest of a backlog to the others.
        symbl = daemon.config.symbl
        self._coordination.budget = 2 * symbl.max_concurrent_jobs + symbl.max_concurrent_uploads
        self._coordination.see_again = daemon.watched.see_again
        self._counted = _Counters(daemon.metrics) if self._coordination.shared else None
        # Every stage asks the same coordination (the stages keep a one-host one otherwise).
        for stage in (daemon.uploader, daemon.tracker, daemon.filer, daemon.watched):
            stage.coordination = self._coordination

    @property
    def _shell(self) -> ClusterHost:
        return self._daemon

    async def join(self, journal: Journal) -> Journal:
        """Take this host's lease and start heartbeating; then the journal is this host's to
        use. Raises ``JournalUnavailable`` (saying why) when the cluster cannot be joined."""
        if not self._coordination.shared:
            return journal
        # Here, not at the top: psycopg is 10 MiB of memory that one host on SQLite never needs.
        from daemon.journal.postgres import PostgresJournal

        if isinstance(journal, PostgresJournal):
            journal.this_host_only = True  # this host's work is the files it holds
        self._coordination.pump = self._daemon.pump
        try:
            await self._coordination.start(self._tracker.job_ended)
        except Exception as exc:
            await journal.close()
            raise JournalUnavailable(f"cannot join the hosts that share it: {exc}") from exc
        self._supervisor.spawn(self.run())
        return journal

    async def run(self) -> None:
        """Heartbeat until the daemon stops; once it is up (its own files recovered), take
        over the files of hosts whose lease ran out."""
        try:
            await self._keep_up()
        finally:  # the daemon stops: its claims and slots stay for its next start
            await self._coordination.coordinator.close()

    async def _keep_up(self) -> None:
        stop = self._supervisor.stop_event
        next_beat = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_beat:
                    next_beat = time.monotonic() + self._seconds
                    await self.beat()
                if self._daemon.ready_event.is_set():
                    await self.adopt()
            except Exception as exc:  # the database does not answer: told once, tried again
                self._coordination.trouble(exc)
            # A dead host's lease is looked for more often than this host's is renewed: its
            # work is taken over within a second of the lease running out.
            wait = min(ADOPT_CHECK_SECONDS, max(0.0, next_beat - time.monotonic()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)

    async def beat(self) -> None:
        """Renew this host's lease; let go of the files another host took meanwhile."""
        lost = await self._coordination.coordinator.heartbeat()
        self._coordination.reachable()
        if lost:
            self.lost(lost)

    async def adopt(self) -> None:
        """Take over the files of hosts whose lease ran out, in the inboxes this host has."""
        coordinator = self._coordination.coordinator
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
        if self._counted is not None:
            self._counted.taken_over.labels(from_host).inc()
            if action is Resume.RESEND:
                self._counted.resent.labels(from_host).inc()
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
            await self._shell.act(
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
                    if self._counted is not None:
                        self._counted.lost.inc()
                    log.warning(
                        "file_lost_to_another_host",
                        inbox=inbox,
                        file=rel_path,
                        message="this host's lease ran out and another host took the file "
                        "over: nothing more is done with it here",
                    )


class _Counters:
    """What takeovers did on this host, for /metrics (registered only on a cluster)."""

    def __init__(self, metrics: Metrics) -> None:
        self.taken_over = Counter(
            PREFIX + "files_taken_over",
            "Files this host took over from a host whose lease ran out, by that host.",
            ("from_host",),
            registry=metrics.registry,
        )
        self.resent = Counter(
            PREFIX + "files_sent_again_after_takeover",
            "Files taken over while being uploaded, sent again (the at-least-once window).",
            ("from_host",),
            registry=metrics.registry,
        )
        self.lost = Counter(
            PREFIX + "files_lost_to_other_hosts",
            "Files another host took over while this one could not renew its lease.",
            registry=metrics.registry,
        )
