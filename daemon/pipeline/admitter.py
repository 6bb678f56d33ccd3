"""Admitting settled files: examined in a worker thread, judged, placed in their conversation.

Settled files are admitted in batches (one journal transaction each), so uploads start while a
backlog is admitted; once the ready files would fill every free slot, the rest waits for the
uploads' pauses. The verdicts come from ``admission``; this shell acts on them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from pathlib import Path

from daemon.config.model import Inbox
from daemon.files.dropped import Examination, examine
from daemon.files.intake import Candidate, TrackedFile, classify
from daemon.files.recordings import params_as_planned
from daemon.fsboundary import NotRegularFile, open_in, sha256_of
from daemon.journal import FileRecord, Kind, State
from daemon.logs import get_logger
from daemon.params import dotted, merge_params, validate_params
from daemon.pipeline.admission import (
    NOT_REGULAR_MESSAGE,
    Rejected,
    Vanished,
    duplicate_notes,
    judge,
    still_short,
)
from daemon.pipeline.inboxes import Inboxes, InboxRuntime
from daemon.pipeline.scheduler import Scheduler
from daemon.pipeline.shell import Shell
from daemon.pipeline.supervisor import Supervisor

log = get_logger("symbl_inbox.admission")

_BATCH = 32


class Admitter:
    """The settled files waiting to be admitted, and the task admitting them."""

    def __init__(
        self,
        shell: Shell,
        supervisor: Supervisor,
        scheduler: Scheduler,
        inboxes: Inboxes,
        *,
        can_convert: bool,
    ) -> None:
        self._shell = shell
        self._supervisor = supervisor
        self._scheduler = scheduler
        self._inboxes = inboxes
        self._can_convert = can_convert
        self._queue: deque[tuple[InboxRuntime, TrackedFile, int, int]] = deque()
        self._in_hand = 0  # files of the batch being examined, not yet admitted
        self._task: asyncio.Task[None] | None = None

    def settled(
        self, runtime: InboxRuntime, tracked: TrackedFile, size: int, mtime_ns: int
    ) -> None:
        """A file has been quiet for its settle window: admit it soon."""
        self._queue.append((runtime, tracked, size, mtime_ns))
        if self._task is None or self._task.done():
            self._task = self._supervisor.spawn(self._admit_settled())

    def queued(self) -> int:
        """Settled files not yet admitted: a scan's backlog waiting here, and the batch being
        examined (no longer settling, not yet ready: counted nowhere else)."""
        return len(self._queue) + self._in_hand

    async def rebuild_params(self, changed_profiles: set[str]) -> None:
        """Files not yet submitted take the new profile's parameters (plus their sidecar's)."""
        if not changed_profiles:
            return
        for record in await self._shell.db.in_states((State.READY, State.HELD)):
            inbox = self._inboxes.inbox_by_key(record.inbox)
            if inbox is None or inbox.profile not in changed_profiles:
                continue
            profile = self._shell.config.profile_for(inbox)
            params, problems = validate_params(
                merge_params(profile.params, record.data.get("overrides", {}))
            )
            record.profile = profile.name
            if problems:
                message = "; ".join(f"params.{dotted(p.loc)}: {p.message}" for p in problems)
                await self._shell.fail(record, "bad_parameters", f"after the reload: {message}")
                continue
            record.data["params"] = params_as_planned(record.data.get("send"), params)
            await self._shell.db.save(record)

    async def _admit_settled(self) -> None:
        """Admit settled files in small batches, so uploads start while a backlog is admitted.

        A backlog of thousands of files settles in the same instant; admitting all of them in
        one turn of the loop would hold back the first upload until the last is checked. Each
        batch is one journal transaction.
        """
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
            self._in_hand = len(batch)
            # Opening, sniffing and sidecar parsing happen in a worker thread, off the loop.
            examined = await asyncio.to_thread(self._examine_batch, batch)
            try:
                async with self._shell.db.transaction():
                    for (runtime, tracked, size, mtime_ns), exam in zip(
                        batch, examined, strict=True
                    ):
                        await self._admit_one(runtime, tracked, size, mtime_ns, exam)
                        self._in_hand -= 1
            except Exception:
                # The batch's transaction failed (a shared journal's connection cut): nothing
                # of it was kept, so every file of it is looked at again, as one that failed.
                log.exception("internal_error", during="admission batch", files=len(batch))
                for runtime, tracked, _, _ in batch:
                    runtime.tracked[tracked.rel] = tracked
                    self._inboxes.check_later(runtime, tracked, 30.0)
            finally:
                self._in_hand = 0
            await asyncio.sleep(0)
            if self._scheduler.enough_ready():
                # The uploads have work queued: the rest is admitted in their pauses.
                await self._scheduler.wait_for_quiet_uploads()

    def _examine_batch(
        self, batch: list[tuple[InboxRuntime, TrackedFile, int, int]]
    ) -> list[Examination]:
        examined = []
        for runtime, tracked, _, _ in batch:
            is_drop = classify(Path(tracked.rel).name) is Candidate.URL_DROP
            try:
                folder = self._inboxes.files(runtime.inbox).inbox
            except OSError as exc:
                examined.append(Examination(audio=exc))
                continue
            examined.append(examine(folder, tracked.rel, is_drop=is_drop))
        return examined

    async def _admit_one(
        self,
        runtime: InboxRuntime,
        tracked: TrackedFile,
        size: int,
        mtime_ns: int,
        exam: Examination,
    ) -> None:
        record = await self._shell.db.get(tracked.record_id)
        if record is None or record.state is not State.WAITING:
            return
        record.size, record.mtime_ns = size, mtime_ns
        try:
            await self._admit(runtime, record, tracked, exam)
        except Exception:
            log.exception("internal_error", inbox=record.inbox, file=record.rel_path)
            runtime.tracked[record.rel_path] = tracked
            self._inboxes.check_later(runtime, tracked, 30.0)

    async def _admit(
        self, runtime: InboxRuntime, record: FileRecord, tracked: TrackedFile, exam: Examination
    ) -> None:
        """Act on admission's verdict; place the file in its conversation."""
        inbox = runtime.inbox
        if exam.vanished:
            await self._inboxes.vanished(runtime, record.id)
            return
        inspected = exam.audio if record.kind is Kind.AUDIO else None
        now = time.monotonic()
        if still_short(inspected, tracked.short_since or now, now, inbox.settle_seconds):
            # A WAV shorter than its header says may still be written: it gets a grace period.
            tracked.short_since = tracked.short_since or now
            runtime.tracked[tracked.rel] = tracked
            self._inboxes.check_later(runtime, tracked, max(inbox.settle_seconds, 0.2))
            return
        profile = self._shell.config.profile_for(inbox)
        record.profile = profile.name
        record.stamp("ready")
        if exam.sidecar is not None:
            record.data["sidecar"] = exam.sidecar
        if exam.size is not None and exam.mtime_ns is not None:
            # What was checked is what is sent: the upload refuses a file changed since.
            record.size, record.mtime_ns = exam.size, exam.mtime_ns
        verdict = judge(record, exam, profile, can_convert=self._can_convert)
        if isinstance(verdict, Rejected):
            await self._reject(record, verdict)
            return
        directions = verdict.directions
        record.data["params"] = dict(directions.params)
        if directions.overrides:
            record.data["overrides"] = dict(directions.overrides)
        if directions.url is not None:
            record.data["url"] = directions.url
        conversations = self._shell.conversations
        conversation = await conversations.join(record, directions, profile)
        duplicate = None if conversation is None else await conversations.duplicate_part(record)
        if duplicate is not None:
            await self._shell.act([duplicate])
            return
        if isinstance(verdict.audio, Vanished):
            await self._inboxes.vanished(runtime, record.id)
            return
        if isinstance(verdict.audio, Rejected):
            await self._reject(record, verdict.audio)
            return
        record.data.update(verdict.audio.notes)
        if conversation is None:
            if inbox.on_duplicate == "skip" and record.kind is Kind.AUDIO:
                self._supervisor.spawn(self._ready_unless_duplicate(runtime, record))
            else:
                await self._shell.make_ready(record)
        else:
            await self._shell.act([conversations.place(record, conversation)])

    async def _reject(self, record: FileRecord, rejected: Rejected) -> None:
        record.data.update(rejected.notes)
        if rejected.params is not None:
            record.data["params"] = rejected.params
        await self._shell.fail(record, rejected.reason, rejected.message)

    async def _ready_unless_duplicate(self, runtime: InboxRuntime, record: FileRecord) -> None:
        """``on_duplicate: skip``: hash the file off the loop (it may be gigabytes), then send
        it, or file it at once if the same content already reached done/ from this inbox."""
        try:
            record.sha256 = await asyncio.to_thread(self._hash, runtime.inbox, record.rel_path)
        except NotRegularFile as exc:
            record.data["entry_type"] = exc.entry_type
            await self._shell.fail(
                record, "not_a_regular_file", NOT_REGULAR_MESSAGE.format(exc.strerror)
            )
            return
        except (FileNotFoundError, NotADirectoryError):
            await self._inboxes.vanished(runtime, record.id)
            return
        except OSError as exc:
            await self._shell.fail(
                record, "unreadable_file", f"cannot read the file: {exc.strerror}"
            )
            return
        original = await self._shell.db.completed_with_sha(record.inbox, record.sha256, record.id)
        if original is None:
            await self._shell.make_ready(record)
            return
        record.conversation_id, record.job_id = original.conversation_id, original.job_id
        record.data.update(duplicate_notes(original))
        record.state = State.COMPLETED
        await self._shell.db.save(record)
        log.info("file_duplicate_skipped", inbox=record.inbox, file=record.rel_path)
        await self._shell.file(record)

    def _hash(self, inbox: Inbox, rel: str) -> str:
        with open_in(self._inboxes.files(inbox).inbox, rel) as checked:
            return sha256_of(checked)
