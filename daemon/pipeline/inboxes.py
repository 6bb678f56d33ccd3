"""The inboxes: watched for events, rescanned, files settling until quiet, files that vanish.

A file is seen (an event or a scan), recorded as ``waiting`` and watched until it has been
quiet for the inbox's ``settle_seconds``; then it is handed to admission. An inbox that goes
missing or cannot be watched is a stall, brought back within seconds of returning.

One inotify instance watches every inbox, a watch per folder (``daemon.files.watch``). An inbox
the kernel's limits leave without a watch is polled instead, said once in a warning and
listed by ``status``; an inbox on a network filesystem (or ``watch: poll``) is polled anyway.
Polling is a rescan every ``poll_interval_seconds``. A rescan walks the inbox a slice of a few
milliseconds at a time, handing the event loop back between slices, and passes over a file
whose size, mtime and inode are those of the last scan at the cost of a dictionary look-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from daemon.config.model import Inbox
from daemon.files.intake import Candidate, TrackedFile, audio_name_of_sidecar, classify
from daemon.files.watch import watch_mode
from daemon.fsboundary import Boundaries, InboxFiles, display, lstat_in
from daemon.journal import ActiveFile, FileRecord, Kind, State
from daemon.logs import get_logger
from daemon.pipeline.coordination import Coordination
from daemon.pipeline.scheduler import Scheduler
from daemon.pipeline.shell import Shell
from daemon.pipeline.supervisor import Supervisor
from daemon.pipeline.watching import InboxRuntime as InboxRuntime  # the stages know it from here
from daemon.pipeline.watching import (
    Settled,
    Watches,
    folder_present,
    log_mode,
    make_filter,
    quiet_since,
    signature,
)
from daemon.stalls import StallBoard, StallKind

log = get_logger("symbl_inbox.inboxes")

MAINTENANCE_SECONDS = 5.0
# A rescan hands the event loop back after this long, and looks at the clock every 64 entries.
SLICE_SECONDS = 0.002
# Inboxes rescanned at the same time (the others wait their turn): each slice of each scan
# stands between a request and its answer.
SCANS_AT_ONCE = 4


class Inboxes:
    """Every watched inbox's runtime, and the files in flight by (inbox, path)."""

    def __init__(
        self,
        shell: Shell,
        supervisor: Supervisor,
        scheduler: Scheduler,
        stalls: StallBoard,
        boundaries: Boundaries,
        *,
        has_room: Callable[[], bool],
        settled: Settled,
    ) -> None:
        self._shell = shell
        # One host alone; ``Cluster.join`` puts the coordination of shared hosts here.
        self.coordination = Coordination()
        self._claiming: set[tuple[str, str]] = set()
        self._supervisor = supervisor
        self._scheduler = scheduler
        self._stalls = stalls
        self._boundaries = boundaries
        self._has_room = has_room
        self._settled = settled
        self.runtimes: dict[str, InboxRuntime] = {}
        # (inbox, path) -> id of every file not yet filed.
        self.active: dict[tuple[str, str], int] = {}
        # Inboxes removed by a reload whose files are still in flight.
        self._retired: dict[str, Inbox] = {}
        self._watches = Watches(self)
        self._scan_slots = asyncio.Semaphore(SCANS_AT_ONCE)

    def add(self, inbox: Inbox) -> InboxRuntime:
        """A new runtime for ``inbox`` (not yet watched: ``bring_up`` starts it)."""
        runtime = InboxRuntime(inbox, make_filter(inbox), mode=watch_mode(inbox))
        self.runtimes[inbox.key] = runtime
        self._retired.pop(inbox.key, None)
        return runtime

    def stop_watching(self) -> None:
        for runtime in self.runtimes.values():
            if runtime.scanner is not None:
                runtime.scanner.cancel()
        self._watches.close()

    async def scanned(self) -> None:
        """Until every inbox has been scanned once (or found missing)."""
        for runtime in list(self.runtimes.values()):
            await runtime.scanned.wait()

    def polled_instead(self) -> dict[str, str]:
        """Inbox key -> the kernel limit that has it polled instead of watched."""
        return {
            key: runtime.fallback
            for key, runtime in self.runtimes.items()
            if runtime.fallback is not None
        }

    def settling(self) -> int:
        """Files waiting to settle, in every inbox."""
        return sum(len(runtime.tracked) for runtime in self.runtimes.values())

    def watched(self) -> dict[str, bool]:
        """Inbox key -> watched right now, asked every second (live.json, /healthz). The folder
        is looked at: the kernel tells of an inbox folder removed only once the daemon has
        closed it too."""
        return {
            key: runtime.available and folder_present(runtime)
            for key, runtime in self.runtimes.items()
        }

    async def maintain_all(self, now: float) -> None:
        """Bring back inboxes that went missing or lost their watch."""
        for runtime in list(self.runtimes.values()):
            try:
                await self.maintain(runtime, now)
            except Exception:
                log.exception("internal_error", inbox=runtime.inbox.key)

    async def bring_up(self, runtime: InboxRuntime) -> None:
        """Start watching and scan; a missing inbox is reported and tried again later."""
        inbox = runtime.inbox
        if not inbox.path.is_dir():
            if runtime.available or runtime.next_rescan == 0.0:
                log.error("inbox_unavailable", inbox=inbox.key, retry_seconds=MAINTENANCE_SECONDS)
            self._inbox_stalled(inbox, "is missing")
            runtime.available = False
            runtime.next_rescan = time.monotonic() + MAINTENANCE_SECONDS
            runtime.scanned.set()
            return
        try:
            folder = self.files(inbox).inbox
            if not runtime.polled and not runtime.watching:
                self._watches.watch_folder(runtime, "", folder.fd)
        except OSError as exc:
            log.error("inbox_watch_failed", inbox=inbox.key, error=str(exc))
            self._inbox_stalled(inbox, f"cannot be watched ({exc.strerror or exc})")
            runtime.next_rescan = time.monotonic() + MAINTENANCE_SECONDS
            runtime.scanned.set()
            return
        if not runtime.available:
            log_mode(runtime)
        runtime.available = True
        self._stalls.clear(StallKind.INBOX_UNAVAILABLE, inbox.key)
        with contextlib.suppress(OSError):  # pinned now: a folder swapped later is noticed
            for outcome in ("done", "failed"):
                self.files(inbox).target(outcome)
        await self.rescan(runtime)

    def changed(self, owner: str, rel: str, gone: bool, is_dir: bool) -> None:
        """An inotify event, on the loop (``daemon.files.watch.Listener``)."""
        runtime = self.runtimes.get(owner)
        if runtime is None or self._supervisor.stopping:
            return
        if is_dir:
            if not gone and runtime.inbox.recursive:
                self._wake(runtime)  # the walk watches the new folder and finds what it holds
            return
        self.on_event(owner, str(runtime.inbox.path / rel), gone)

    def lost(self, owner: str) -> None:
        """The inbox's folder was removed, moved or unmounted: unavailable until it is back."""
        runtime = self.runtimes.get(owner)
        if runtime is None or self._supervisor.stopping:
            return
        runtime.watching = False
        self._supervisor.later(0.0, lambda: self.maintain(runtime, time.monotonic()))

    def overflowed(self) -> None:
        """The kernel's event queue overflowed: what it dropped, a rescan of every inbox finds."""
        log.warning("inotify_overflow", inboxes=len(self.runtimes))
        for runtime in self.runtimes.values():
            if runtime.available:
                self._wake(runtime)

    def _inbox_stalled(self, inbox: Inbox, what: str) -> None:
        self._stalls.begin(
            StallKind.INBOX_UNAVAILABLE,
            f"the inbox folder {inbox.path} {what}; files dropped there wait, and it is watched "
            "again within seconds of coming back",
            inbox.key,
        )

    async def rescan_all(self) -> None:
        for runtime in self.runtimes.values():
            if runtime.available:
                await self.rescan(runtime)

    async def rescan(self, runtime: InboxRuntime) -> None:
        """Look at every file in the inbox soon (the safety net under events)."""
        self._wake(runtime)

    def _wake(self, runtime: InboxRuntime) -> None:
        """One scan runs at a time per inbox; requests made meanwhile make one more."""
        if runtime.scanner is None or runtime.scanner.done():
            runtime.scanner = self._supervisor.spawn(self._scanner(runtime))
        runtime.wake.set()

    def _current(self, runtime: InboxRuntime) -> bool:
        return (
            self.runtimes.get(runtime.inbox.key) is runtime
            and runtime.available
            and not self._supervisor.stopping
        )

    async def _scanner(self, runtime: InboxRuntime) -> None:
        """Scan when asked, and every ``poll_interval_seconds`` (polled) or ``rescan_seconds``."""
        try:
            while self._current(runtime):
                runtime.wake.clear()
                await self._scan(runtime)
                runtime.scanned.set()
                runtime.next_rescan = time.monotonic() + runtime.scan_every
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(runtime.scan_every):
                        await runtime.wake.wait()
        finally:
            runtime.scanned.set()

    async def _scan(self, runtime: InboxRuntime) -> None:
        """One walk of the inbox, a slice at a time; files unchanged since the last are skipped."""
        async with self._scan_slots:
            if not self._current(runtime):
                return
            inbox = runtime.inbox
            try:
                folder = self.files(inbox).inbox
            except OSError as exc:  # e.g. the inbox path is now a symlink: never followed
                log.error("inbox_scan_failed", inbox=inbox.key, error=str(exc))
                return
            self._watches.retry(runtime, folder)
            self.coordination.rescanning()
            before, now_seen, inbox_key = runtime.seen, {}, inbox.key
            # After the first scan, a sidecar new or changed since the last one restarts its
            # audio's settle window, as its event does (polled inboxes have no events).
            sidecars_told = runtime.scanned.is_set()
            found = new = 0
            deadline = time.monotonic() + SLICE_SECONDS
            entries = runtime.filter.walk(folder, self._watches.entered(runtime))
            try:
                for rel, info, kind in entries:
                    found += 1
                    current = signature(info)
                    if kind is Candidate.SIDECAR:
                        if sidecars_told and before.get(rel) != current:
                            self._sidecar_touched(runtime, audio_name_of_sidecar(rel))
                        now_seen[rel] = current
                    else:
                        key = (inbox_key, rel)
                        known = key in self.active
                        if not known or before.get(rel) != current:
                            await self._see(
                                runtime, rel, kind, info.st_size, info.st_mtime_ns, quiet=True
                            )
                            new += not known and key in self.active
                        if key in self.active:
                            now_seen[rel] = current
                    if found % 64 == 0 and time.monotonic() >= deadline:
                        await asyncio.sleep(0)  # the loop answers requests and events here
                        if not self._current(runtime):
                            return
                        deadline = time.monotonic() + SLICE_SECONDS
            except OSError as exc:
                log.error("inbox_scan_failed", inbox=inbox.key, error=str(exc))
                return
            finally:
                entries.close()
            runtime.seen = now_seen
            runtime.journaled.clear()
            if runtime.retrying:
                runtime.retrying = False
                log_mode(runtime)
            (log.info if new else log.debug)(
                "inbox_scanned", inbox=inbox.key, files=found, new_files=new
            )

    def on_event(self, inbox_key: str, path_text: str, deleted: bool) -> None:
        """An event of the shared inotify instance, on the loop; handled in turn, in order of
        arrival."""
        self._supervisor.spawn(self._on_event(inbox_key, path_text, deleted))

    async def _on_event(self, inbox_key: str, path_text: str, deleted: bool) -> None:
        runtime = self.runtimes.get(inbox_key)
        if runtime is None or self._supervisor.stopping:
            return
        path = Path(path_text)
        rel = runtime.filter.relative(path)
        kind = classify(path.name)
        if rel is None or kind is None:
            return
        try:
            if kind is Candidate.SIDECAR:
                self._sidecar_touched(runtime, audio_name_of_sidecar(rel))
            elif not deleted:
                stat = lstat_in(self.files(runtime.inbox).inbox, rel)
                await self._see(runtime, rel, kind, stat.st_size, stat.st_mtime_ns)
        except OSError:
            return  # gone, or reached only through a symlink: nothing of this inbox
        except Exception:
            log.exception("internal_error", inbox=inbox_key, file=rel)

    def see_again(self, key: tuple[str, str]) -> None:
        """A file left unclaimed: this host has room for it now, unless another took it."""
        runtime = self.runtimes.get(key[0])
        if runtime is not None:
            self.on_event(key[0], str(runtime.inbox.path / key[1]), deleted=False)

    def _sidecar_touched(self, runtime: InboxRuntime, audio_rel: str) -> None:
        """A sidecar written while its audio settles restarts the audio's settle window."""
        tracked = runtime.tracked.get(audio_rel)
        if tracked is not None:
            tracked.last_change = time.monotonic()

    async def _see(
        self,
        runtime: InboxRuntime,
        rel: str,
        kind: Candidate,
        size: int,
        mtime_ns: int,
        *,
        quiet: bool = False,
    ) -> None:
        if not self._has_room():
            return  # it stays in the inbox; the rescan when space is back finds it
        now = time.monotonic()
        tracked = runtime.tracked.get(rel)
        if tracked is not None:
            tracked.observe(size, mtime_ns, now)
            if not quiet:
                tracked.last_change = now
            return
        key = (runtime.inbox.key, rel)
        existing_id = self.active.get(key)
        if existing_id is not None:
            if runtime.journaled.pop(rel, None) != (size, mtime_ns):
                await self._seen_again(runtime, existing_id, size, mtime_ns)
            return
        if self.coordination.shared:
            # Another host may have seen it first: the file is recorded once it is ours; a
            # host that holds enough work leaves it to the others for now.
            holding = len(self.active) + len(self._claiming)
            if key not in self._claiming and not self.coordination.defer(key, holding):
                self._claiming.add(key)
                self._supervisor.spawn(self._claim(runtime, rel, kind, size, mtime_ns, quiet))
            return
        await self._record(runtime, rel, kind, size, mtime_ns, quiet)

    async def _claim(
        self,
        runtime: InboxRuntime,
        rel: str,
        kind: Candidate,
        size: int,
        mtime_ns: int,
        quiet: bool,
    ) -> None:
        key = (runtime.inbox.key, rel)
        try:
            if not await self.coordination.claim(*key):
                return
            if key in self.active or self.runtimes.get(runtime.inbox.key) is not runtime:
                return
            await self._record(runtime, rel, kind, size, mtime_ns, quiet, claimed=True)
        finally:
            self._claiming.discard(key)

    async def _record(
        self,
        runtime: InboxRuntime,
        rel: str,
        kind: Candidate,
        size: int,
        mtime_ns: int,
        quiet: bool,
        *,
        claimed: bool = False,
    ) -> None:
        """A new file of this host's: recorded as waiting, and watched until it settles."""
        key = (runtime.inbox.key, rel)
        record_kind = Kind.URL if kind is Candidate.URL_DROP else Kind.AUDIO
        record = await self._shell.db.add_file(
            runtime.inbox.key, rel, record_kind, size, mtime_ns, State.WAITING
        )
        if claimed:  # the claim names its record before anything asks for a slot for it
            await self.coordination.bind(runtime.inbox.key, rel, record.id)
        record.profile = runtime.inbox.profile
        self.active[key] = record.id
        # A scan of a large backlog would write thousands of lines; it writes one summary.
        if not quiet:
            log.info("file_seen", inbox=runtime.inbox.key, file=rel, size=size)
        # Events always wait the settle window.
        self.track(runtime, record, settled=quiet and quiet_since(runtime, mtime_ns))

    def resume(self, runtime: InboxRuntime, entries: list[ActiveFile]) -> None:
        """The inbox's files the journal holds at start: ready ones queued again, waiting ones
        settling again; the first scan passes over those unchanged since."""
        for entry in entries:
            runtime.journaled[entry.rel_path] = (entry.size, entry.mtime_ns)
            if entry.state is State.READY:
                self._scheduler.enqueue(entry.inbox, entry.id)
            elif entry.state is State.WAITING:
                self.track(runtime, entry, settled=quiet_since(runtime, entry.mtime_ns))

    async def _seen_again(
        self, runtime: InboxRuntime, record_id: int, size: int, mtime_ns: int
    ) -> None:
        """A file we already know changed: before it is sent, it settles again."""
        record = await self._shell.db.get(record_id)
        if record is None or record.state not in (State.READY, State.HELD):
            return
        if (record.size, record.mtime_ns) == (size, mtime_ns):
            return
        self._scheduler.discard(record.inbox, record.id)
        record.state, record.size, record.mtime_ns = State.WAITING, size, mtime_ns
        await self._shell.db.save(record)
        log.info("file_changed_again", inbox=record.inbox, file=record.rel_path)
        self.track(runtime, record)

    # ================================================================ settling

    def track(
        self, runtime: InboxRuntime, record: FileRecord | ActiveFile, *, settled: bool = False
    ) -> None:
        settle = runtime.inbox.settle_seconds
        last_change = time.monotonic() - (settle if settled else 0.0)
        tracked = TrackedFile(record.id, record.rel_path, record.size, record.mtime_ns, last_change)
        if settled:
            # Found by a scan with the settle window behind it: admitted without a timer and a
            # second look (admission opens it and notes what it found). A backlog of 100k
            # files at start made 100k timers and tasks before the first upload could begin.
            self._settled(runtime, tracked, record.size, record.mtime_ns)
            return
        runtime.tracked[record.rel_path] = tracked
        self.check_later(runtime, tracked, settle)

    def check_later(self, runtime: InboxRuntime, tracked: TrackedFile, delay: float) -> None:
        self._supervisor.later(delay, lambda: self._check_settled(runtime, tracked))

    async def _check_settled(self, runtime: InboxRuntime, tracked: TrackedFile) -> None:
        if self.runtimes.get(runtime.inbox.key) is not runtime:
            return  # the inbox was removed or changed by a reload; its new runtime takes over
        if runtime.tracked.get(tracked.rel) is not tracked:
            return  # superseded by a newer watch of the same file
        settle = runtime.inbox.settle_seconds
        now = time.monotonic()
        try:
            stat = lstat_in(self.files(runtime.inbox).inbox, tracked.rel)
        except (FileNotFoundError, NotADirectoryError):
            await self.vanished(runtime, tracked.record_id)
            return
        except OSError as exc:
            log.warning("file_stat_failed", file=display(tracked.rel), error=str(exc))
            self.check_later(runtime, tracked, max(settle, 1.0))
            return
        tracked.observe(stat.st_size, stat.st_mtime_ns, now)
        quiet_for = now - tracked.last_change
        if quiet_for < settle:
            self.check_later(runtime, tracked, settle - quiet_for)
            return
        runtime.tracked.pop(tracked.rel, None)
        self._settled(runtime, tracked, stat.st_size, stat.st_mtime_ns)

    def files(self, inbox: Inbox) -> InboxFiles:
        return self._boundaries.of(inbox.key, inbox.path, inbox.done, inbox.failed)

    async def vanished(self, runtime: InboxRuntime, record_id: int) -> None:
        record = await self._shell.db.get(record_id)
        if record is None:
            return
        runtime.tracked.pop(record.rel_path, None)
        self._scheduler.discard(record.inbox, record.id)
        self.active.pop((record.inbox, record.rel_path), None)
        await self._shell.db.forget(record)
        self.coordination.release(record.id)
        log.info("file_vanished", inbox=record.inbox, file=record.rel_path, state=record.state)

    async def maintain(self, runtime: InboxRuntime, now: float) -> None:
        """Bring back an inbox that went missing or lost its watch (its scanner rescans it)."""
        if self.runtimes.get(runtime.inbox.key) is not runtime:
            return
        healthy = runtime.inbox.path.is_dir() and (runtime.polled or runtime.watching)
        if not healthy:
            if runtime.available:
                log.error("inbox_unavailable", inbox=runtime.inbox.key)
                self._watches.forget(runtime.inbox.key)
                runtime.watching = False
                runtime.available = False
                runtime.next_rescan = now  # watched again as soon as it is back, not at rescan
            if now >= runtime.next_rescan:
                await self.bring_up(runtime)

    def remove(self, inbox: Inbox) -> None:
        """Stop watching; files already submitted are still tracked and filed where they were."""
        runtime = self.runtimes.pop(inbox.key, None)
        if runtime is not None:
            if runtime.scanner is not None:
                runtime.scanner.cancel()
            self._watches.forget(inbox.key)
        self._stalls.clear(StallKind.INBOX_UNAVAILABLE, inbox.key)
        self._retired[inbox.key] = inbox

    def inbox_by_key(self, key: str) -> Inbox | None:
        """A configured inbox, or one removed by a reload whose files are still in flight."""
        current = next((inbox for inbox in self._shell.config.inboxes if inbox.key == key), None)
        return current or self._retired.get(key)
