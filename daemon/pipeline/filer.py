"""Failing and filing: a final file, its record, transcript and exports, moved to done/ or failed/.

Filing happens in its own threads (it fsyncs several times a file), across the trust boundary
(``daemon.fsboundary``): the plan (the name in done/ or failed/) is committed before the move,
so a crash in between files the same file under the same name. On trouble the file stays where
it is and filing is tried again; a swapped done/ or failed/ stops filing there, as a stall.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from daemon.files.filing import TRANSCRIPT_SUFFIX, choose_target_in, file_into, record_suffix
from daemon.files.records import error_record, result_record
from daemon.fsboundary import Boundaries, Folder, FolderSwapped, companion_name, display
from daemon.hooks import Happening, HookEvent, HookRunner
from daemon.http.metrics import Metrics
from daemon.journal import FINAL_STATES, FileRecord, State
from daemon.logs import get_logger
from daemon.pipeline.coordination import Coordination
from daemon.pipeline.scheduler import backoff
from daemon.pipeline.shell import Shell
from daemon.pipeline.supervisor import Supervisor
from daemon.stalls import StallBoard, StallKind
from daemon.symbl.client import SymblError
from daemon.symbl.exports import Exports, fetch_exports, name_export_files

log = get_logger("symbl_inbox.filer")

RETRY_CAP_SECONDS = 300.0
# These failures say nothing about the part's slot in its conversation: it stays open.
NOT_THE_PARTS_OWN_FAILURE = ("missing_part", "predecessor_rejected", "duplicate_part")
_SWAPPED_RETRY_SECONDS = 2.0


class Filer:
    """Moves finished files out of their inbox; its thread pool is its own."""

    def __init__(
        self,
        shell: Shell,
        supervisor: Supervisor,
        boundaries: Boundaries,
        stalls: StallBoard,
        metrics: Metrics,
        hooks: Callable[[], HookRunner | None],
    ) -> None:
        self._shell = shell
        # One host alone; ``Cluster.join`` puts the coordination of shared hosts here.
        self.coordination = Coordination()
        self._supervisor = supervisor
        self._boundaries = boundaries
        self._stalls = stalls
        self._metrics = metrics
        self._hooks = hooks
        # Filing fsyncs several times per file; in its own threads it never queues ahead of
        # the file reads that uploads need from the default pool.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="symbl-filing")

    def close(self) -> None:
        """Wait for the filing under way, then let the threads go."""
        self._pool.shutdown(wait=True)

    async def fail_http(self, record: FileRecord, reason: str, error: SymblError) -> None:
        record.data["http_status"] = error.status
        record.data["http_body"] = error.body
        await self.fail(record, reason, error.message)

    async def fail(self, record: FileRecord, reason: str, message: str) -> None:
        was_pending = record.state in (State.WAITING, State.READY, State.HELD, State.UPLOADING)
        record.state = State.FAILED
        record.reason = reason
        record.data["message"] = message
        record.stamp("failed")
        await self._shell.db.save(record)
        log.warning(
            "file_failed", inbox=record.inbox, file=record.rel_path, reason=reason, message=message
        )
        if was_pending and reason not in NOT_THE_PARTS_OWN_FAILURE:
            await self._shell.act(await self._shell.conversations.settled(record, accepted=False))
        self._supervisor.spawn(self.file(record))

    async def file(self, record: FileRecord, attempt: int = 1) -> None:
        """Move the file and its record to done/ or failed/; on trouble, keep it and retry."""
        await self._shell.state_room()
        inbox = self._shell.inbox(record.inbox)
        if inbox is None:
            log.warning("filing_postponed", file=record.rel_path, reason="inbox not configured")
            return
        ours = await self.coordination.still_ours(record.id)
        if not ours:
            if ours is None:  # the cluster's database does not answer: tried again later
                delay = backoff(attempt, 1.0, RETRY_CAP_SECONDS)
                log.info("filing_postponed", file=record.rel_path, reason="cluster", retry=delay)
                # This record, not the journal's: a completed job is committed as it is filed.
                self._supervisor.later(delay, lambda: self.file(record, attempt + 1))
            return
        outcome = "done" if record.state is State.COMPLETED else "failed"
        target_root = inbox.done if outcome == "done" else inbox.failed
        files = self._boundaries.of(inbox.key, inbox.path, inbox.done, inbox.failed)
        sidecar = record.data.get("sidecar")
        companions = {sidecar: sidecar} if sidecar else {}
        extra_files: dict[str, str] = {}
        loop = asyncio.get_running_loop()
        try:
            # Checked before the exports are fetched: a stopped folder costs no API calls.
            target: Folder | None = await loop.run_in_executor(self._pool, files.target, outcome)
        except FolderSwapped as exc:
            self._filing_stopped(record, exc)
            return
        except OSError:
            target = None  # tried again below, and reported with the other filing errors
        if outcome == "done":
            exports = await self._exports_of(record)
            if exports.transcript is not None:
                extra_files[TRANSCRIPT_SUFFIX] = exports.transcript
            extra_files.update(exports.files)
            if exports.errors:
                record.data["export_errors"] = exports.errors
            payload = result_record(record, exports.data)
        else:
            payload = error_record(record)
        try:
            if target is None:
                target = await loop.run_in_executor(self._pool, files.target, outcome)
            if record.filed_path is None:
                taken_with = [*companions, *extra_files]
                record.filed_path = await loop.run_in_executor(
                    self._pool, choose_target_in, target, record.rel_path, taken_with
                )
                record.outcome = outcome
            name_export_files(payload, record.filed_path)
            await self._shell.db.save(record)
            await self._shell.db.commit()  # the plan is on disk before the filing thread acts on it
            await loop.run_in_executor(
                self._pool,
                file_into,
                files.inbox,
                record.rel_path,
                target,
                record.filed_path,
                payload,
                outcome,
                companions,
                extra_files,
            )
        except FolderSwapped as exc:
            self._filing_stopped(record, exc)
            return
        except FileExistsError as exc:
            # Something took the chosen name since: choose again, and file nothing over it.
            log.warning("filing_name_taken", file=display(record.rel_path), error=str(exc))
            record.filed_path = None
            await self._shell.db.save(record)
            self._supervisor.later(0.1, lambda: self._refile(record.id, attempt + 1))
            return
        except OSError as exc:
            delay = backoff(attempt, 1.0, RETRY_CAP_SECONDS)
            log.error(
                "filing_failed",
                inbox=record.inbox,
                file=record.rel_path,
                target=str(target_root),
                error=str(exc),
                retry_seconds=delay,
            )
            self._supervisor.later(delay, lambda: self._refile(record.id, attempt + 1))
            return
        if self._stalls.clear(StallKind.INBOX_UNAVAILABLE, filing_subject(record.inbox)):
            log.info("filing_resumed", inbox=record.inbox)
        record.state = State.FILED
        record.stamp("filed")
        await self._shell.db.save(record)
        self._shell.filed(record)
        self.coordination.release(record.id)
        self._metrics.file_filed(record.inbox, outcome, record.reason)
        self._hook_filed(record, target_root, outcome, TRANSCRIPT_SUFFIX in extra_files)
        log.info(
            "file_filed",
            inbox=record.inbox,
            file=record.rel_path,
            outcome=outcome,
            reason=record.reason,
            to=str(target_root / record.filed_path),
        )

    def _filing_stopped(self, record: FileRecord, error: FolderSwapped) -> None:
        """done/ or failed/ was swapped: file nothing there until it is put right."""
        message = f"filing stopped: {error.strerror}; put the folder back (or make it anew as "
        message += "the daemon's user) and filing resumes by itself"
        subject = filing_subject(record.inbox)
        if self._stalls.begin(StallKind.INBOX_UNAVAILABLE, message, subject=subject):
            log.error("filing_stopped", inbox=record.inbox, message=message)
        else:
            log.debug("filing_still_stopped", inbox=record.inbox, message=message)
        self._supervisor.later(_SWAPPED_RETRY_SECONDS, lambda: self._refile(record.id, 1))

    async def _exports_of(self, record: FileRecord) -> Exports:
        profile = self._shell.config.profiles.get(record.profile or "")
        skipped = record.data.get("job_status") == "skipped_duplicate"
        if profile is None or not profile.export or not record.conversation_id or skipped:
            return Exports()
        exports = await fetch_exports(
            self._shell.client, record.conversation_id, profile.export, profile.transcript_options
        )
        for name, message in exports.errors.items():
            log.warning("export_failed", file=record.rel_path, export=name, error=message)
        return exports

    async def _refile(self, record_id: int, attempt: int) -> None:
        record = await self._shell.db.get(record_id)
        if record is not None and record.state in FINAL_STATES:
            self._supervisor.spawn(self.file(record, attempt))

    def _hook_filed(
        self, record: FileRecord, target_root: Path, outcome: str, with_transcript: bool
    ) -> None:
        event = HookEvent.DONE if outcome == "done" else HookEvent.FAILED
        hooks = self._hooks()
        if hooks is None or record.filed_path is None:
            return
        if not hooks.listens(event, record.profile):
            return
        filed = target_root / record.filed_path
        # The names filing gave them (shortened past 255 bytes), not a look below done/ again.
        record_name = companion_name(filed.name, record_suffix(outcome))[0]
        transcript_name = companion_name(filed.name, TRANSCRIPT_SUFFIX)[0]
        hooks.emit(
            Happening(
                event,
                time.time(),
                inbox=record.inbox,
                file=record.rel_path,
                filed_as=str(filed),
                record=str(filed.with_name(record_name)),
                transcript=str(filed.with_name(transcript_name)) if with_transcript else None,
                profile=record.profile,
                reason=record.reason,
                message=record.data.get("message") if outcome == "failed" else None,
                conversation_id=record.conversation_id,
                job_id=record.job_id,
            ),
            record.profile,
        )


def filing_subject(inbox_key: str) -> str:
    """The subject of a stopped-filing stall: apart from the inbox folder's own stall, so that
    an inbox coming back does not clear a swapped done/ (or a filing clear a missing inbox)."""
    return f"{inbox_key} (filing)"
