"""The daemon: the stages wired together, started, recovered after a crash, reloaded, stopped.

A file travels through stages that each own their state (``daemon.pipeline``): inboxes (seen,
settled) -> admitter and admission (checked) -> conversations (part order) -> scheduler and
uploader (sent) -> tracker (followed until final) -> filer (done/ or failed/). One asyncio loop
runs them all. Every transition is committed to the journal before the action that depends on
it; see ``daemon.journal.sqlite`` for what a restart does with each state. This module only
connects the stages (it is the ``Shell`` they ask) and runs the daemon's lifecycle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from dataclasses import replace

from daemon.config.changes import config_changes
from daemon.config.model import Config, Inbox
from daemon.config.profiles import convert_extra_installed
from daemon.files.convert import clear_work_folder
from daemon.fsboundary import Boundaries
from daemon.hooks import HookRunner
from daemon.http.endpoint import Endpoint
from daemon.http.metrics import Metrics
from daemon.http.serving import HttpService
from daemon.journal import FINAL_STATES, FileRecord, Journal, State
from daemon.live import LiveState, keep_live, remove_live, runtime_dir
from daemon.lock import AlreadyRunning, StateLock
from daemon.logs import get_logger, masker, set_level
from daemon.notify import SystemdNotifier
from daemon.pipeline.admitter import Admitter
from daemon.pipeline.cluster import JournalUnavailable, open_and_join
from daemon.pipeline.conditions import Conditions
from daemon.pipeline.conversations import Conversations, Decision, Reject, Release
from daemon.pipeline.filer import Filer
from daemon.pipeline.inboxes import MAINTENANCE_SECONDS, Inboxes, InboxRuntime
from daemon.pipeline.retention import Retention
from daemon.pipeline.scheduler import Scheduler
from daemon.pipeline.supervisor import Supervisor
from daemon.pipeline.tracker import Tracker
from daemon.pipeline.uploader import Uploader
from daemon.stalls import StallBoard
from daemon.symbl.client import (
    ClientStats,
    SymblClient,
    SymblError,
)

log = get_logger("symbl_inbox.daemon")


class Daemon:
    """The long-running service; ``await run()`` returns the process exit code."""

    def __init__(
        self,
        config: Config,
        *,
        notifier: SystemdNotifier | None = None,
        client: SymblClient | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier or SystemdNotifier()
        self._client = client
        self.journal: Journal | None = None
        self._conversations: Conversations | None = None
        self.supervisor = Supervisor()
        self.stop_event = self.supervisor.stop_event
        # Set once the startup scan is done (systemd's READY=1 goes out at the same moment).
        self.ready_event = asyncio.Event()
        self.scheduler = Scheduler(
            max_jobs=config.symbl.max_concurrent_jobs,
            max_uploads=config.symbl.max_concurrent_uploads,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self.metrics = Metrics(host_id=config.cluster.host_id)
        self.tracker = Tracker(self, self.scheduler, self.supervisor, self.metrics)
        # Conditions that stop work, for status, /healthz, the status page and hooks.
        self.stalls = StallBoard()
        self.conditions = Conditions(
            config,
            self.stalls,
            hooks=lambda: self.hooks,
            announce=lambda: self.notifier.status(self.status_line()),
            resume=lambda: self.supervisor.spawn(self._resume()),
        )
        self.hooks: HookRunner | None = None
        # Every file-system operation on inboxes, done/ and failed/ goes through these.
        self.boundaries = Boundaries()
        self.watched = Inboxes(
            self,
            self.supervisor,
            self.scheduler,
            self.stalls,
            self.boundaries,
            has_room=self.conditions.has_room,
            settled=lambda *settled: self.admitter.settled(*settled),
        )
        self.admitter = Admitter(
            self,
            self.supervisor,
            self.scheduler,
            self.watched,
            can_convert=convert_extra_installed(),
        )
        self.uploader = Uploader(
            self,
            self.scheduler,
            self.supervisor,
            self.tracker,
            self.boundaries,
            self.stalls,
        )
        self.filer = Filer(
            self, self.supervisor, self.boundaries, self.stalls, self.metrics, lambda: self.hooks
        )
        self.http = HttpService(self)
        self._reload_requested = asyncio.Event()

    # ================================================================ lifecycle

    @property
    def client(self) -> SymblClient:
        assert self._client is not None
        return self._client

    @property
    def db(self) -> Journal:
        assert self.journal is not None
        return self.journal

    @property
    def tracking(self) -> dict[int, asyncio.Task[None]]:
        """The jobs being followed, by file id."""
        return self.tracker.tracking

    @property
    def job_wakeups(self) -> dict[str, asyncio.Event]:
        return self.tracker.job_wakeups

    def job_ended(self, job_id: str) -> bool:
        """A webhook said this job ended (the endpoint's ``WebhookSink``)."""
        return self.tracker.webhook_said_ended(job_id)

    @property
    def endpoint(self) -> Endpoint | None:
        """The HTTP endpoint while it listens."""
        return self.http.endpoint

    async def state_room(self) -> None:
        await self.conditions.wait_for_room()

    def has_room(self) -> bool:
        return self.conditions.room()

    @property
    def uploading(self) -> dict[int, asyncio.Task[None]]:
        """The uploads in flight, by file id."""
        return self.uploader.uploading

    def pump(self) -> None:
        self.uploader.pump()

    def credentials_refused(self, error: SymblError) -> None:
        self.uploader.credentials_refused(error)

    async def part_settled(self, record: FileRecord, *, accepted: bool) -> None:
        await self.act(await self.conversations.settled(record, accepted=accepted))

    async def vanished(self, inbox: str, record_id: int) -> None:
        runtime = self.inboxes.get(inbox)
        if runtime is not None:
            await self.watched.vanished(runtime, record_id)

    def retrack(self, record: FileRecord) -> None:
        runtime = self.inboxes.get(record.inbox)
        if runtime is not None:
            self.watched.track(runtime, record)

    async def make_ready(self, record: FileRecord) -> None:
        await self.uploader.make_ready(record)

    @property
    def inboxes(self) -> dict[str, InboxRuntime]:
        """The runtime of every inbox watched, by key."""
        return self.watched.runtimes

    @property
    def active(self) -> dict[tuple[str, str], int]:
        """(inbox, path) -> id of every file not yet filed."""
        return self.watched.active

    @property
    def conversations(self) -> Conversations:
        assert self._conversations is not None
        return self._conversations

    async def run(self) -> int:
        self._loop = asyncio.get_running_loop()
        masker.register(self.config.secrets())
        lock = StateLock(self.config.state_dir)
        try:
            lock.acquire()
        except (AlreadyRunning, OSError) as exc:
            log.error("state_dir_unavailable", message=str(exc))
            return 1
        try:
            return await self._run_locked()
        finally:
            lock.release()

    async def _run_locked(self) -> int:
        assert self._loop is not None
        try:
            self.journal = await open_and_join(self)  # with the hosts that share it
        except JournalUnavailable as exc:
            log.error("journal_unreadable", message=str(exc))
            return 1
        self._conversations = Conversations(self.journal)
        self.journal.commit_per_turn(self._loop.call_soon)
        self.journal.on_full = self.conditions.journal_full
        clear_work_folder(self.config.state_dir)  # half-made mixes of a run that stopped
        if self._client is None:
            self._client = SymblClient(self.config.symbl)
        await self._client.prepare()
        self._install_signal_handlers()
        try:
            for warning in self.config.warnings:
                log.warning("config_warning", message=warning)
            # Listening before anything is submitted, so no webhook finds the door shut.
            if not await self.http.start(self.config, at_start=True):
                return 1
            self._start_hooks()
            await self._recover()
            for inbox in self.config.inboxes:
                await self._add_inbox(inbox)
            await self.watched.scanned()
            self.pump()
            self.notifier.ready(self.status_line())
            self.ready_event.set()
            log.info("daemon_ready", inboxes=len(self.inboxes), active=len(self.active))
            interval = min(
                MAINTENANCE_SECONDS, self.notifier.watchdog_seconds or MAINTENANCE_SECONDS
            )
            self.supervisor.spawn(self.supervisor.every(interval, self._maintain))
            self.supervisor.spawn(self._reloader())
            self.supervisor.spawn(Retention(self).run(self.stop_event))
            self.supervisor.spawn(self.uploader.authenticate())
            self.supervisor.spawn(
                keep_live(runtime_dir(self.config.state_dir), self.live_state, self.stop_event)
            )
            await self.stop_event.wait()
        finally:
            await self._shutdown()
        return 0

    def stop(self) -> None:
        self.stop_event.set()

    def _install_signal_handlers(self) -> None:
        assert self._loop is not None
        # Handlers only set an event; the loop does the work.
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(signum, self.stop_event.set)
        with contextlib.suppress(NotImplementedError, RuntimeError):
            self._loop.add_signal_handler(signal.SIGHUP, self._reload_requested.set)

    async def _shutdown(self) -> None:
        self.notifier.stopping()

        log.info("daemon_stopping", uploading=len(self.uploading), tracking=len(self.tracking))
        self.watched.stop_watching()
        self.supervisor.cancel_timers()
        followed = self.tracker.stop()
        await self.uploader.finish(self.config.shutdown_timeout_seconds)
        await self.supervisor.end_all(*followed)
        if self.hooks is not None:
            await self.hooks.stop()
        remove_live(runtime_dir(self.config.state_dir))
        await self.http.stop()
        if self._client is not None:
            await self._client.aclose()
        self.filer.close()
        self.boundaries.close()
        if self.journal is not None:
            await self.journal.close()
        log.info("daemon_stopped")

    # ================================================================ stalls, hooks, live state

    def _start_hooks(self) -> None:
        self.hooks = HookRunner(
            self.config, count=self.metrics.hook_finished, health=self._health_line
        )
        self.hooks.start()

    def live_state(self) -> LiveState:
        """What the endpoint, the status page and ``status`` (through live.json) show."""
        return LiveState(
            updated=time.time(),
            pid=os.getpid(),
            started=self.ready_event.is_set(),
            stopping=self.stop_event.is_set(),
            stalls=tuple(self.stalls.active()),
            inboxes=self.watched.watched(),
            polled=self.watched.polled_instead(),
            uploads=self.uploader.meters.snapshot(),
            uploading=len(self.uploading),
            jobs=len(self.tracking),
            credentials_rejected=self.scheduler.blocked is not None,
            pause_seconds=self.scheduler.pause_remaining(),
        )

    def client_stats(self) -> ClientStats | None:
        return self._client.stats if self._client is not None else None

    def _health_line(self) -> tuple[bool, str]:
        """Whether work proceeds (for pings) and the status line."""
        return not self.live_state().stops_all_work(), self.status_line()

    def api_answer(self, error: SymblError | None = None) -> None:
        self.conditions.api_answer(error)

    async def _resume(self) -> None:
        """The state folder has room again: look for what arrived meanwhile, send again."""
        await self.watched.rescan_all()
        self.pump()

    # ================================================================ recovery

    async def _recover(self) -> None:
        """Pick up where the last run stopped, as the journal's docstring describes."""
        for entry in await self.db.active_files():
            self.active[(entry.inbox, entry.rel_path)] = entry.id
        for record in await self.db.in_states((State.UPLOADING, State.HELD)):
            if record.state is State.UPLOADING:
                # At-least-once: the upload may have been accepted, but no job id was committed.
                record.state = State.SUBMITTED if record.job_id else State.READY
                await self.db.save(record)
            if record.state is State.HELD:
                self._expire_hold(record, Conversations.hold_seconds(record, now=time.time()))
        for record in await self.db.in_states((State.SUBMITTED,)):
            self.tracker.start(record)
        for record in await self.db.in_states(FINAL_STATES):
            self.supervisor.spawn(self.file(record))

    # ================================================================ inboxes

    async def _add_inbox(self, inbox: Inbox) -> None:
        runtime = self.watched.add(inbox)
        self.scheduler.add_inbox(inbox.key)
        entries = await self.db.active_files(inbox.key)
        self.watched.resume(runtime, entries)
        held = {entry.conversation_key for entry in entries if entry.state is State.HELD}
        for key in held:
            if key is not None:
                await self.act(await self.conversations.reconcile(inbox.key, key))
        await self.watched.bring_up(runtime)

    def _remove_inbox(self, inbox: Inbox) -> None:
        """Stop watching; files already submitted are still tracked and filed where they were."""
        self.watched.remove(inbox)
        self.scheduler.remove_inbox(inbox.key)

    # ================================================================ conversations

    async def act(self, decisions: list[Decision]) -> None:
        """Carry out what the conversation order decided."""
        for decision in decisions:
            if isinstance(decision, Release):
                await self.uploader.make_ready(decision.record)
            elif isinstance(decision, Reject):
                await self.fail(decision.record, decision.reason, decision.message)
            else:
                await self.conversations.hold(decision)
                self._expire_hold(decision.record, decision.seconds)

    def _expire_hold(self, record: FileRecord, seconds: float) -> None:
        async def expired() -> None:
            rejected = await self.conversations.hold_expired(record.id)
            await self.act([rejected] if rejected is not None else [])

        self.supervisor.later(seconds, expired)

    def webhooks_on(self) -> bool:
        http = self.config.http
        return self.http.endpoint is not None and http is not None and bool(http.public_url)

    # ================================================================ failing and filing

    async def fail_http(self, record: FileRecord, reason: str, error: SymblError) -> None:
        await self.filer.fail_http(record, reason, error)

    async def fail(self, record: FileRecord, reason: str, message: str) -> None:
        await self.filer.fail(record, reason, message)

    async def file(self, record: FileRecord) -> None:
        await self.filer.file(record)

    def filed(self, record: FileRecord) -> None:
        self.active.pop((record.inbox, record.rel_path), None)

    def inbox(self, key: str) -> Inbox | None:
        runtime = self.inboxes.get(key)
        return runtime.inbox if runtime else self.watched.inbox_by_key(key)

    # ================================================================ reload (SIGHUP)

    async def _reloader(self) -> None:
        while not self.stop_event.is_set():
            await self._reload_requested.wait()
            self._reload_requested.clear()
            self.notifier.send("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
            try:
                await self.reload()
            except Exception:
                log.exception("internal_error", during="reload")
            self.notifier.ready(self.status_line())

    async def reload(self) -> bool:
        """Re-read the configuration; apply it if valid, else keep running on the old one."""
        from daemon.config import ConfigError, load_config

        try:
            new = load_config(self.config.source, prepare_folders=False)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("config_reload_rejected", problem=str(problem))
            log.error(
                "config_kept",
                message="the configuration was not changed",
                source=str(self.config.source),
            )
            return False
        await self._apply(new)
        return True

    async def _apply(self, new: Config) -> None:
        old = self.config
        masker.register(new.secrets())
        change = config_changes(old, new)
        if change.needs_restart:
            log.warning(
                "config_needs_restart", key=change.needs_restart, keeping=str(old.state_dir)
            )
            new = replace(new, state_dir=old.state_dir, journal=old.journal, cluster=old.cluster)
        if change.symbl:
            self._swap_client(new)
        if change.http:
            self.uploader.forget_webhook_secret()
            self.supervisor.spawn(self.http.restart(old, new))
        self.config = new
        if change.hooks and self.hooks is not None:
            self.supervisor.spawn(self.hooks.stop())  # sends what it gathered, in the background
            self._start_hooks()
        old_inboxes = {inbox.key: inbox for inbox in old.inboxes}
        new_inboxes = {inbox.key: inbox for inbox in new.inboxes}
        for key in change.inboxes_removed + change.inboxes_changed:
            self._remove_inbox(old_inboxes[key])
        for key in change.inboxes_changed + change.inboxes_added:
            await self._add_inbox(new_inboxes[key])
        await self.admitter.rebuild_params(set(change.profiles_changed))
        log.info(
            "config_reloaded",
            inboxes_added=list(change.inboxes_added),
            inboxes_removed=list(change.inboxes_removed),
            inboxes_changed=list(change.inboxes_changed),
            profiles_changed=sorted(change.profiles_changed),
        )
        if change.log_level:
            set_level(new.log_level)  # after the line above, which says what changed
        self.pump()

    def _swap_client(self, new: Config) -> None:
        """New work uses a client with the new settings; uploads under way finish on the old."""
        old_client = self._client
        self._client = SymblClient(new.symbl)
        self.scheduler.configure(
            max_jobs=new.symbl.max_concurrent_jobs, max_uploads=new.symbl.max_concurrent_uploads
        )
        self.conditions.reconfigure(new)
        self.supervisor.spawn(
            self.uploader.authenticate()
        )  # tells at once whether the new credentials work
        if old_client is not None:
            self.supervisor.spawn(self._retire(old_client, list(self.uploading.values())))

    @staticmethod
    async def _retire(client: SymblClient, uploads: list[asyncio.Task[None]]) -> None:
        if uploads:
            await asyncio.wait(uploads)
        await client.aclose()

    # ================================================================ housekeeping

    async def _maintain(self) -> None:
        """Bring back inboxes that went missing, rescan on schedule, keep systemd informed."""
        if not self.conditions.has_room(may_resume=True):
            self.notifier.watchdog()
            return
        await self.watched.maintain_all(time.monotonic())
        self.notifier.watchdog()
        self.notifier.status(self.status_line())

    def status_line(self) -> str:
        waiting = self.watched.settling() + self.admitter.queued()
        ready = self.scheduler.ready_count()
        paused = " (paused: credentials rejected)" if self.scheduler.blocked else ""
        stalled = "".join(f"; {stall.kind}: {stall.message}" for stall in self.stalls.active())
        return (
            f"{waiting} settling, {ready} ready, {len(self.uploading)} uploading, "
            f"{len(self.tracking)} jobs running{paused}{stalled}"
        )
