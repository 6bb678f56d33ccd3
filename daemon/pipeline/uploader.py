"""Uploading: the next ready file sent to Symbl, its submission recorded, its failure classified.

The pump starts as many uploads as the scheduler allows, at most once a loop turn. An upload
opens the admitted file across the trust boundary and refuses one that changed since it was
checked; an accepted one is committed (job id, conversation id) before its job is followed.
A failure is classified: refused credentials block every upload, a 429 pauses them, a
transient error sends the file again later, a final one fails it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.files.audio import AudioProblem
from daemon.files.convert import note_produced, original_submission, produced_for_upload
from daemon.files.records import iso
from daemon.fsboundary import (
    Boundaries,
    Checked,
    Folder,
    InboxFiles,
    NotRegularFile,
    display,
    open_in,
)
from daemon.http.endpoint import resolve_webhook_secret
from daemon.journal import FileRecord, Kind, State
from daemon.live import UploadMeters
from daemon.logs import MASK, get_logger
from daemon.pipeline.admission import NOT_REGULAR_MESSAGE
from daemon.pipeline.coordination import Coordination
from daemon.pipeline.filer import RETRY_CAP_SECONDS
from daemon.pipeline.scheduler import PAUSE_CAP_SECONDS, Scheduler, backoff
from daemon.pipeline.shell import Shell
from daemon.pipeline.supervisor import Supervisor
from daemon.pipeline.tracker import Tracker
from daemon.stalls import StallBoard, StallKind
from daemon.symbl.client import (
    AuthenticationError,
    FileChangedError,
    FinalError,
    NotFoundError,
    Opening,
    RateLimitedError,
    Submission,
    SymblError,
    TransientError,
    sniff_and_read,
)

log = get_logger("symbl_inbox.uploader")

# A credential block is lifted this often, to try again with a new token.
_CREDENTIALS_RETRY_SECONDS = 60.0
# An upload that failed for a reason of our own is tried again after this long.
_INTERNAL_ERROR_RETRY_SECONDS = 30.0


class Uploader:
    """The uploads in flight, and how far each got."""

    def __init__(
        self,
        shell: Shell,
        scheduler: Scheduler,
        supervisor: Supervisor,
        tracker: Tracker,
        boundaries: Boundaries,
        stalls: StallBoard,
    ) -> None:
        self._shell = shell
        # One host alone; ``Cluster.join`` puts the coordination of shared hosts here.
        self.coordination = Coordination()
        self._scheduler = scheduler
        self._supervisor = supervisor
        self._tracker = tracker
        self._boundaries = boundaries
        self._stalls = stalls
        self.uploading: dict[int, asyncio.Task[None]] = {}
        self.meters = UploadMeters()
        self._pump_scheduled = False
        # One pump at a time: taking the next file awaits the journal (a round trip on
        # PostgreSQL), and two pumps between their slot check and their start overfill the cap.
        self._pumping = asyncio.Lock()
        self._webhook_secret: str | None = None

    async def finish(self, grace_seconds: float) -> None:
        """Shutdown: let the uploads in flight end for up to ``grace_seconds``, then cancel them
        (a cancelled one goes back to ``ready``: nothing committed says the API has it)."""
        uploads = list(self.uploading.values())
        if uploads:
            _, pending = await asyncio.wait(uploads, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    def forget_webhook_secret(self) -> None:
        """The http settings changed: the secret is resolved again for the next upload."""
        self._webhook_secret = None

    async def make_ready(self, record: FileRecord) -> None:
        record.state = State.READY
        await self._shell.db.save(record)
        self._scheduler.enqueue(record.inbox, record.id)
        self.pump()

    def _requeue(self, record: FileRecord, delay: float, *, front: bool = False) -> None:
        def back() -> None:
            if self._scheduler.enqueue(record.inbox, record.id, front=front):
                self.pump()

        if delay <= 0:
            back()
        else:
            self._supervisor.later(delay, back)

    def pump(self) -> None:
        """Start as many uploads as the caps allow (coalesced: at most once per loop turn)."""
        if self._pump_scheduled:
            return
        self._pump_scheduled = True
        self._supervisor.spawn(self._pump_now())

    def _can_start(self) -> bool:
        return (
            not self._supervisor.stopping
            and self._shell.has_room()
            and self._scheduler.can_start()
            and self.coordination.may_start()
        )

    async def _pump_now(self) -> None:
        self._pump_scheduled = False
        async with self._pumping:
            if not self._scheduler.paused():
                self._stalls.clear(StallKind.RATE_LIMITED)
            while self._can_start():
                record = await self._scheduler.take_next(self._shell.db)
                if record is None:
                    break
                self._scheduler.upload_started(record.id)
                self.uploading[record.id] = self._supervisor.spawn(self._upload(record))
            self._scheduler.pumped()

    async def _upload(self, record: FileRecord) -> None:
        slot = await self.coordination.slot_for(record.id)
        if not slot.granted:
            # Another host's jobs fill the account, or the file is not ours any more.
            self.uploading.pop(record.id, None)
            self._scheduler.upload_ended(record.id)
            if slot.why != "lost":
                self._requeue(record, 0.0, front=True)
            return
        try:
            await self._send(record)
        except asyncio.CancelledError:
            # Shutdown: nothing committed says the API has it, so it is sent again next run.
            if record.state is State.UPLOADING:
                record.state = State.READY
                await self._shell.db.save(record)
            raise
        except Exception:
            log.exception("internal_error", inbox=record.inbox, file=record.rel_path)
            record.state = State.READY
            await self._shell.db.save(record)
            self._requeue(record, _INTERNAL_ERROR_RETRY_SECONDS)
        finally:
            self.uploading.pop(record.id, None)
            self._scheduler.upload_ended(record.id)
            self.meters.end(record.id)
            if record.state is not State.SUBMITTED:
                self.coordination.free(record.id)  # no job holds its slot
            self.pump()

    async def _send(self, record: FileRecord) -> None:
        target = await self._shell.conversations.target(record)
        params = dict(record.data.get("params", {}))
        if target is None:
            # Symbl names a conversation after its id unless told; the file name reads better.
            params.setdefault("name", display(Path(record.rel_path).name))
        sent = params
        if self._shell.config.http is not None and self._shell.config.http.public_url:
            # The journal and the records keep the URL without its secret; only the request
            # carries it.
            masked = self._webhook_url(masked=True)
            if params.setdefault("webhookUrl", masked) == masked:
                sent = {**params, "webhookUrl": self._webhook_url()}
        record.data["params"] = params
        record.state = State.UPLOADING
        record.data["attempts"] = int(record.data.get("attempts", 0)) + 1
        record.stamp("upload_started")
        if not await self._still_held(record):
            return
        log.info(
            "upload_started",
            inbox=record.inbox,
            file=record.rel_path,
            append_to=target,
            attempt=record.data["attempts"],
        )
        try:
            if record.kind is Kind.URL:
                submission = await self._shell.client.submit_url(
                    str(record.data["url"]), sent, conversation_id=target
                )
            elif record.data.get("send", {}).get("action", "as_is") != "as_is":
                submission = await self._submit_produced(record, sent, target)
            else:
                submission = await self._submit_checked(record, sent, target)
        except NotRegularFile as exc:
            record.data["entry_type"] = exc.entry_type
            await self._shell.fail(
                record, "not_a_regular_file", NOT_REGULAR_MESSAGE.format(exc.strerror)
            )
        except SymblError as error:
            self._note_attempts(record, error.attempts)
            await self._upload_failed(record, error, appending=target is not None)
        except AudioProblem as problem:
            await self._shell.fail(record, problem.reason, problem.message)
        except (FileNotFoundError, NotADirectoryError):
            await self._shell.vanished(record.inbox, record.id)
        except OSError as exc:
            await self._shell.fail(
                record, "unreadable_file", f"cannot read the file: {exc.strerror}"
            )
        else:
            await self._submitted(record, submission)

    async def _open_admitted(self, record: FileRecord) -> Checked:
        """The file, opened across the trust boundary and checked again: one that is not the
        file admitted (size, mtime) is settled and checked anew."""
        files = self._files_of(record)
        return await asyncio.to_thread(_open_unchanged, files.inbox, _Admitted.of(record))

    async def _submit_checked(
        self, record: FileRecord, params: dict[str, Any], target: str | None
    ) -> Submission:
        """Upload the admitted file's own descriptor, as it is."""
        files = self._files_of(record)
        content_type = record.data.get("content_type")
        # One trip to a worker thread opens, checks and reads the start (all of a small file).
        checked, opening = await asyncio.to_thread(
            _open_and_read, files.inbox, _Admitted.of(record), content_type
        )
        with checked:
            return await self._shell.client.submit_descriptor(
                checked.fd,
                params,
                conversation_id=target,
                content_type=content_type,
                label=display(record.rel_path),
                progress=self.meters.begin(record.id, record.inbox, record.rel_path, record.size),
                opening=opening,
            )

    def _files_of(self, record: FileRecord) -> InboxFiles:
        inbox = self._shell.inbox(record.inbox)
        if inbox is None:
            raise FileNotFoundError(record.rel_path)
        return self._boundaries.of(inbox.key, inbox.path, inbox.done, inbox.failed)

    async def _submit_produced(
        self, record: FileRecord, params: dict[str, Any], target: str | None
    ) -> Submission:
        """Upload a mono mix or a conversion, made in state_dir from the admitted descriptor."""
        action = record.data["send"]["action"]
        with await self._open_admitted(record) as checked:
            made = produced_for_upload(
                action,
                checked,
                self._shell.config.state_dir,
                str(record.id),
                display(record.rel_path),
            )
            async with made as produced:
                note_produced(record.data, produced)
                submission = await self._shell.client.submit_file(
                    produced.path,
                    params,
                    conversation_id=target,
                    content_type="audio/wav",
                    progress=self.meters.begin(
                        record.id, record.inbox, record.rel_path, produced.size
                    ),
                )
                return original_submission(submission, produced)

    def _webhook_url(self, *, masked: bool = False) -> str:
        assert self._shell.config.http is not None and self._shell.config.http.public_url
        base = f"{self._shell.config.http.public_url.rstrip('/')}/webhook/"
        if masked:
            return base + MASK
        if self._webhook_secret is None:
            http = self._shell.config.http
            self._webhook_secret = http.webhook_secret or resolve_webhook_secret(self._shell.config)
        return base + self._webhook_secret

    @staticmethod
    def _note_attempts(record: FileRecord, attempts: tuple[Any, ...]) -> None:
        log_entries = record.data.setdefault("attempt_log", [])
        for attempt in attempts:
            log_entries.append(
                {
                    "startedAt": attempt.started_at,
                    "finishedAt": attempt.finished_at,
                    "status": attempt.status,
                    "error": attempt.error,
                }
            )

    async def _submitted(self, record: FileRecord, submission: Submission) -> None:
        self._note_attempts(record, submission.attempts)
        record.conversation_id = submission.conversation_id
        record.job_id = submission.job_id
        if submission.sha256 is not None:
            record.sha256 = submission.sha256
        record.state = State.SUBMITTED
        record.data["job_status"] = "scheduled"
        record.stamp("submitted")
        if not await self._still_held(record):
            return
        self._scheduler.submitted()
        self.coordination.submitted()
        self._shell.api_answer()
        log.info(
            "file_submitted",
            inbox=record.inbox,
            file=record.rel_path,
            conversation_id=record.conversation_id,
            job_id=record.job_id,
        )
        await self._shell.conversations.note_predecessor_outcome(record)
        await self._shell.part_settled(record, accepted=True)
        self._tracker.start(record)

    async def _still_held(self, record: FileRecord) -> bool:
        """Save the record; False when the journal refused it because another host took the
        file over while this host was cut off: that host sends or follows it (counting a
        resend), so nothing more happens to it here, or it would be sent twice uncounted."""
        if await self._shell.db.save(record):
            return True
        self.uploading.pop(record.id, None)  # this very upload ends here, not cancelled
        self.coordination.on_lost([record.id])
        return False

    async def _upload_failed(
        self, record: FileRecord, error: SymblError, *, appending: bool
    ) -> None:
        attempts = int(record.data.get("attempts", 1))
        self._shell.api_answer(error)
        if isinstance(error, AuthenticationError):
            self.credentials_refused(error)
            await self.back_to_ready(record, 0.0, front=True)
        elif isinstance(error, RateLimitedError):
            self._rate_limited()
            await self.back_to_ready(record, 0.0, front=True)
        elif isinstance(error, TransientError):
            delay = backoff(attempts, 2.0, RETRY_CAP_SECONDS)
            log.warning(
                "upload_deferred",
                inbox=record.inbox,
                file=record.rel_path,
                error=error.message,
                retry_seconds=delay,
            )
            await self.back_to_ready(record, delay)
        elif isinstance(error, FileChangedError):
            record.state = State.WAITING
            await self._shell.db.save(record)
            self._shell.retrack(record)
        elif isinstance(error, NotFoundError) and appending:
            await self._shell.fail_http(record, "unknown_conversation", error)
        elif isinstance(error, FinalError):
            reason = "too_large" if error.status == 413 else "rejected_by_api"
            await self._shell.fail_http(record, reason, error)
        else:
            await self.back_to_ready(record, backoff(attempts, 2.0, RETRY_CAP_SECONDS))

    def _rate_limited(self) -> None:
        """429: the scheduler learns how many jobs fit; a pause it begins is shown and timed."""
        pause = self._scheduler.rate_limited()
        if pause is None:
            return
        self.coordination.rate_limited(pause.job_cap, pause.seconds)  # for every host
        log.warning(
            "submissions_paused", reason="rate_limited", seconds=pause.seconds,
            job_cap=pause.job_cap,
        )  # fmt: skip
        self._stalls.begin(
            StallKind.RATE_LIMITED,
            f"Symbl's limit of concurrent jobs is reached (429): {pause.job_cap} run at once; "
            f"new submissions wait until one ends, at the latest until "
            f"{iso(time.time() + pause.seconds)}",
        )
        self._supervisor.later(pause.seconds, self.pump)

    async def back_to_ready(self, record: FileRecord, delay: float, *, front: bool = False) -> None:
        record.state = State.READY
        await self._shell.db.save(record)
        self._requeue(record, delay, front=front)

    async def authenticate(self) -> None:
        """Fetch a token at start: bad credentials are reported before any file waits on them.

        Symbl unreachable is one warning, then quiet retries until it answers.
        """
        attempt = 0
        while not self._supervisor.stopping:
            attempt += 1
            try:
                await self._shell.client.authenticate()
            except AuthenticationError as error:
                self.credentials_refused(error)
                return
            except SymblError as error:
                self._shell.api_answer(error)
                if not isinstance(error, TransientError):
                    log.warning("symbl_refused_token", error=error.message)
                    return
                delay = backoff(attempt, 2.0, PAUSE_CAP_SECONDS)
                (log.warning if attempt == 1 else log.debug)(
                    "symbl_unreachable",
                    error=error.message,
                    message=f"no answer from Symbl; trying again every {PAUSE_CAP_SECONDS:.0f} s "
                    "at most, files wait in their inboxes",
                    retry_seconds=delay,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._supervisor.stop_event.wait(), delay)
                continue
            self._shell.api_answer()
            if attempt > 1:
                log.info("symbl_reachable", attempts=attempt)
            return

    def credentials_refused(self, error: SymblError) -> None:
        if self._scheduler.block(error.message):
            log.error(
                "credentials_rejected",
                message=f"{error.message}; submissions are paused until the credentials work",
            )
        self._stalls.begin(
            StallKind.CREDENTIALS_REFUSED,
            f"{error.message}. Nothing is sent until they work: fix them, then reload "
            "(systemctl reload symbl-inbox)",
        )
        self._supervisor.later(_CREDENTIALS_RETRY_SECONDS, self._unblock_credentials)

    def _unblock_credentials(self) -> None:
        self._scheduler.unblock()
        self.pump()


@dataclass(frozen=True)
class _Admitted:
    """What admission checked of a file, for a worker thread to compare with what it opens."""

    rel_path: str
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, record: FileRecord) -> _Admitted:
        return cls(record.rel_path, record.size, record.mtime_ns)


def _open_unchanged(folder: Folder, admitted: _Admitted) -> Checked:
    """The admitted file, opened across the trust boundary; one that is not the file admitted
    (size, mtime) is refused, to be settled and checked anew. Blocking: in a worker thread."""
    checked = open_in(folder, admitted.rel_path)
    info = checked.info
    if (info.st_size, info.st_mtime_ns) != (admitted.size, admitted.mtime_ns):
        checked.close()
        raise FileChangedError(f"{display(admitted.rel_path)} changed since it was checked")
    return checked


def _open_and_read(
    folder: Folder, admitted: _Admitted, content_type: str | None
) -> tuple[Checked, Opening]:
    """``_open_unchanged``, and the start of the file for its upload. Blocking."""
    checked = _open_unchanged(folder, admitted)
    try:
        return checked, sniff_and_read(checked.fd, content_type)
    except BaseException:
        checked.close()
        raise
