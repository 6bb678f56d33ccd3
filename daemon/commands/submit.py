"""``symbl-inbox submit FILE --profile NAME``: one file, once, by hand; the journal is not touched.

The file is checked as the daemon would check it, uploaded with the profile's parameters and a
progress bar on stderr, and its conversationId and jobId printed on stdout. With ``--wait`` the
job is followed until it is final. Exit 0 when the job completed (or, without ``--wait``, was
accepted), 1 when it failed or the API refused, 2 for a usage or configuration error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from daemon.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from daemon.commands.status import load_operator_config
from daemon.config import Config
from daemon.files.audio import AudioProblem, inspect_file
from daemon.logs import configure_logging, masker
from daemon.symbl.client import FileChangedError, Submission, SymblClient, SymblError

FINAL_JOB_STATES = ("completed", "failed")
# A pipe or a log file gets a plain line at most this often, not a carriage-return animation.
PLAIN_LINE_SECONDS = 5.0
TERMINAL_REDRAW_SECONDS = 0.1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="a WAV or MP3 file")
    parser.add_argument(
        "--profile", required=True, metavar="NAME", help="the profile whose params to send"
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow the job until it completes or fails"
    )
    parser.add_argument(
        "--conversation-id",
        metavar="ID",
        help="append the file to this existing Symbl conversation instead of starting one",
    )


class Refusal(Exception):
    """Why the file is not sent; ``code`` is the exit code to return."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def main(args: argparse.Namespace) -> int:
    config = load_operator_config(args.config_path, need_secrets=True)
    if config is None:
        return EXIT_USAGE
    path = Path(args.file)
    try:
        params = profile_params(config, args.profile)
        check_file(path, params)
    except Refusal as refusal:
        print(f"symbl-inbox submit: {refusal.message}", file=sys.stderr)
        return refusal.code
    # The client logs retries; they belong on stderr with the progress, never on stdout.
    configure_logging("warning", json=False, stream=sys.stderr)
    return asyncio.run(submit(config, path, params, args.conversation_id, wait=args.wait))


def profile_params(config: Config, name: str) -> Mapping[str, Any]:
    profile = config.profiles.get(name)
    if profile is None:
        known = ", ".join(sorted(config.profiles))
        raise Refusal(f"unknown profile {name!r}; the configuration has: {known}", EXIT_USAGE)
    return profile.params


def check_file(path: Path, params: Mapping[str, Any]) -> None:
    """The checks the daemon makes before an upload, with the same words."""
    if not path.exists():
        raise Refusal(f"{path}: no such file", EXIT_USAGE)
    if not path.is_file():
        raise Refusal(f"{path}: not a file", EXIT_USAGE)
    try:
        info = inspect_file(path)
    except AudioProblem as problem:
        raise Refusal(f"{path}: {problem.reason}: {problem.message}", EXIT_FAILURE) from problem
    except OSError as exc:
        raise Refusal(f"{path}: cannot read the file: {exc.strerror}", EXIT_FAILURE) from exc
    per_channel = params.get("enableSeparateRecognitionPerChannel") is True
    if info.channels > 1 and not per_channel:
        raise Refusal(
            f"{path}: stereo_audio: the file has {info.channels} channels; Symbl expects mono "
            "audio unless the profile sets enableSeparateRecognitionPerChannel: true",
            EXIT_FAILURE,
        )


async def submit(
    config: Config,
    path: Path,
    params: Mapping[str, Any],
    conversation_id: str | None,
    *,
    wait: bool,
) -> int:
    size = (await asyncio.to_thread(path.stat)).st_size
    async with SymblClient(config.symbl) as client:
        bar = ProgressBar(size, sys.stderr)
        try:
            submission = await client.submit_file(
                path, params, conversation_id=conversation_id, progress=bar.update
            )
        except (SymblError, AudioProblem, OSError) as exc:
            bar.finish()
            print(f"upload failed: {_error_text(exc)}", file=sys.stderr)
            return EXIT_FAILURE
        bar.finish()
        _print_submission(submission)
        if not wait:
            return EXIT_OK
        return await follow_job(client, submission.job_id, config)


def _print_submission(submission: Submission) -> None:
    print(f"conversationId: {submission.conversation_id}")
    print(f"jobId: {submission.job_id}", flush=True)


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, SymblError | FileChangedError):
        text = exc.message
    elif isinstance(exc, AudioProblem):
        text = f"{exc.reason}: {exc.message}"
    else:
        text = str(exc)
    scrubbed: str = masker.scrub(text)
    return scrubbed


async def follow_job(client: SymblClient, job_id: str, config: Config) -> int:
    """Poll the job, backing off as the daemon does, telling each new state on stderr."""
    tracking = config.tracking
    delay = tracking.poll_initial_seconds
    shown: str | None = None
    while True:
        try:
            status = await client.job_status(job_id)
        except SymblError as exc:
            print(f"job {job_id}: cannot get its status: {_error_text(exc)}", file=sys.stderr)
            return EXIT_FAILURE
        if status != shown:
            print(f"job {job_id}: {status}", file=sys.stderr, flush=True)
            shown = status
        if status in FINAL_JOB_STATES:
            print(f"status: {status}", flush=True)
            return EXIT_OK if status == "completed" else EXIT_FAILURE
        await asyncio.sleep(delay)
        delay = min(tracking.poll_max_seconds, delay * tracking.poll_backoff_factor)


class ProgressBar:
    """Upload progress on ``stream``: one redrawn line on a terminal, plain lines elsewhere.

    ``update`` takes the bytes sent so far; a retried upload starts again from zero.
    """

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.interactive = stream.isatty()
        self.started = time.monotonic()
        self.sent = 0
        self._last_drawn = 0.0
        self._last_quarter = -1
        self._reported: int | None = None

    def update(self, sent: int) -> None:
        self.sent = sent
        now = time.monotonic()
        if self.interactive:
            if now - self._last_drawn >= TERMINAL_REDRAW_SECONDS or sent >= self.total:
                self._draw(now)
        elif self._plain_line_due(now):
            self._line(now)

    def finish(self) -> None:
        """End the bar: the final figures, and the terminal's line closed."""
        if self.sent == 0 and self._reported is None and self._last_drawn == 0.0:
            return  # refused before a byte went out: the error says it all
        now = time.monotonic()
        if self.interactive:
            self._draw(now)
            self.stream.write("\n")
        elif self._reported != self.sent:
            self._line(now)
        self.stream.flush()

    def _plain_line_due(self, now: float) -> bool:
        """A line per quarter of the file, and at most every few seconds between them."""
        quarter = self._percent() // 25
        if quarter > self._last_quarter:
            self._last_quarter = quarter
            return True
        return now - self._last_drawn >= PLAIN_LINE_SECONDS

    def _draw(self, now: float) -> None:
        self.stream.write("\r" + self.describe(now) + "\x1b[K")
        self.stream.flush()
        self._last_drawn = now

    def _line(self, now: float) -> None:
        self.stream.write(self.describe(now) + "\n")
        self.stream.flush()
        self._last_drawn, self._reported = now, self.sent

    def _percent(self) -> int:
        return 100 if self.total == 0 else min(100, self.sent * 100 // self.total)

    def describe(self, now: float) -> str:
        elapsed = max(now - self.started, 1e-6)
        rate = self.sent / elapsed
        return (
            f"uploading {_size(self.sent)} / {_size(self.total)}  {self._percent():3d}%  "
            f"{_size(rate)}/s"
        )


def _size(count: float) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"
