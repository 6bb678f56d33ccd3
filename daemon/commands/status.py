"""``symbl-inbox status`` and ``symbl-inbox conversations``: what the journal says, for operators.

Both only read: the journal is opened read-only (WAL lets a reader in while the daemon writes)
and the lock file tells whether a daemon holds the state directory. ``--json`` prints a stable
document for scripts and monitoring; without it, readable tables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from daemon.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from daemon.cluster.report import LEASE_HEADERS, lease_rows, read_leases
from daemon.commands.hosts import gather_hosts, host_rows
from daemon.config import Config, ConfigError, load_config
from daemon.files.records import iso
from daemon.fsboundary import display
from daemon.journal import JOURNAL_NAME, FileRecord, Journal, State
from daemon.journal.opening import journal_errors, journal_place, open_for_operator
from daemon.live import age_of, read_live, runtime_dir
from daemon.lock import running_pid

# The columns of ``status``, in the order a file goes through them; ``Journal.counts()`` keys.
COUNT_KEYS: tuple[str, ...] = (
    "waiting",
    "ready",
    "held",
    "uploading",
    "submitted",
    "completed",
    "failed",
    "filed_done",
    "filed_failed",
)
FAILURES_SHOWN = 10
# live.json is rewritten at least every 15 s while the daemon runs; older means it is stuck.
LIVE_STALE_SECONDS = 60.0
T = TypeVar("T")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print a JSON document")


def main(args: argparse.Namespace) -> int:
    """Both commands live here (they share everything but the query); the name picks one."""
    if getattr(args, "command", "status") == "conversations":
        return conversations_main(args)
    return status_main(args)


# ==================================================================== shared by operator commands


def load_operator_config(config_path: Path, *, need_secrets: bool = False) -> Config | None:
    """The configuration, or None after printing every problem in it (the caller exits 2).

    Only commands that talk to Symbl need the secrets; the others work for an operator who
    cannot read the service's credential.
    """
    try:
        return load_config(config_path, prepare_folders=False, need_secrets=need_secrets)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def render_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned text columns, numbers right-aligned, two spaces apart."""
    cells = [[str(value) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    numeric = [all(isinstance(row[i], int) for row in rows) and rows for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if numeric[i] else value.ljust(width)
            for i, (value, width) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(row) for row in cells)]) + "\n"


# ==================================================================== status


@dataclass(frozen=True)
class StatusReport:
    """Everything ``status`` shows, gathered once, rendered as text or JSON."""

    state_dir: Path
    journal: str | None
    pid: int | None
    inboxes: list[dict[str, Any]]
    in_flight: list[dict[str, Any]]
    failures: list[dict[str, Any]]
    stalls: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[dict[str, Any]] = field(default_factory=list)
    live_note: str | None = None
    """Why the live part (stalls, uploads) is missing or old, when it is."""
    polled: dict[str, str] = field(default_factory=dict)
    """Inbox -> the kernel's inotify limit (sysctl) that has it polled instead of watched."""
    hosts: list[dict[str, Any]] = field(default_factory=list)
    """Per host of a shared journal, the files it holds by state (none with SQLite)."""
    shared: str | None = None
    """The shared journal's location when ``journal.url`` names one."""
    leases: list[dict[str, Any]] = field(default_factory=list)
    """The hosts of a cluster (a shared journal): lease, files and slots held, takeovers."""

    def as_json(self) -> dict[str, Any]:
        return {
            "daemon": {
                "running": self.pid is not None,
                "pid": self.pid if self.pid is not None and self.pid > 0 else None,
            },
            "state_dir": str(self.state_dir),
            "journal": str(self.journal) if self.journal else None,
            "inboxes": self.inboxes,
            "in_flight": self.in_flight,
            "recent_failures": self.failures,
            "stalls": self.stalls,
            "uploads": self.uploads,
            "live_note": self.live_note,
            "polled": self.polled,
            "hosts": self.hosts,
            "leases": self.leases,
        }


async def gather_status(
    config: Config,
    journal: Journal | None,
    now: float,
    live: Mapping[str, Any] | None = None,
    pid: int | None = None,
) -> StatusReport:
    """The report; ``live`` is the daemon's snapshot (``LiveState.as_json()``) where known."""
    counts = await journal.counts() if journal else {}
    submitted = await journal.in_states((State.SUBMITTED,)) if journal else []
    failures = await journal.recent_failures(FAILURES_SHOWN) if journal else []
    return StatusReport(
        state_dir=config.state_dir,
        journal=journal.location if journal else None,
        pid=pid if pid is not None else running_pid(config.state_dir),
        inboxes=_inbox_rows(config, counts),
        in_flight=[_in_flight(record, now) for record in submitted],
        failures=[_failure(record, _failed_folder(config, record.inbox)) for record in failures],
        stalls=list(live.get("stalls", [])) if live else [],
        uploads=list(live.get("uploads", [])) if live else [],
        polled=dict(live.get("polled", {})) if live else {},
        hosts=await gather_hosts(journal, COUNT_KEYS),
        shared=config.journal.location if config.journal else None,
    )


def live_of_running_daemon(
    config: Config, pid: int | None
) -> tuple[dict[str, Any] | None, str | None]:
    """The running daemon's live.json, and a note when it is missing or old."""
    if pid is None:
        return None, None
    folder = runtime_dir(config.state_dir)
    live = read_live(folder)
    if live is None:
        return None, f"no live state in {folder}: stalls and uploads are not known"
    if pid > 0 and live.get("pid") != pid:
        return None, f"the live state in {folder} is from another process (pid {live.get('pid')})"
    age = age_of(live)
    if age > LIVE_STALE_SECONDS:
        return live, f"the live state was last written {int(age)} s ago: the daemon may be stuck"
    return live, None


def _inbox_rows(config: Config, counts: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    """Configured inboxes first, in config order; then inboxes the journal still remembers."""
    listed: list[tuple[str, str | None]] = [(i.key, i.profile) for i in config.inboxes]
    configured = {path for path, _ in listed}
    remembered = sorted({inbox for inbox, _ in counts} - configured)
    listed += [(path, None) for path in remembered]
    return [
        {
            "path": path,
            "profile": profile,
            "configured": path in configured,
            "counts": {key: counts.get((path, key), 0) for key in COUNT_KEYS},
        }
        for path, profile in listed
    ]


def _in_flight(record: FileRecord, now: float) -> dict[str, Any]:
    submitted_at = record.times.get("submitted")
    return {
        "inbox": record.inbox,
        "file": display(record.rel_path),  # names are any bytes: escaped for people
        "conversationId": record.conversation_id,
        "jobId": record.job_id,
        "jobStatus": record.data.get("job_status"),
        "submittedAt": iso(submitted_at),
        "ageSeconds": round(now - submitted_at, 1) if submitted_at is not None else None,
    }


def _failed_folder(config: Config, inbox_key: str) -> Path | None:
    return next((inbox.failed for inbox in config.inboxes if inbox.key == inbox_key), None)


def _failure(record: FileRecord, failed_folder: Path | None) -> dict[str, Any]:
    filed = None
    if failed_folder is not None and record.filed_path is not None:
        filed = display(str(failed_folder / record.filed_path))
    return {
        "inbox": record.inbox,
        "file": display(record.rel_path),  # names are any bytes: escaped for people
        "filedAs": filed,
        "reason": record.reason,
        "message": record.data.get("message"),
        "failedAt": iso(record.times.get("failed")),
    }


def render_status(report: StatusReport) -> str:
    parts = [_daemon_line(report), _journal_line(report), ""]
    headers = ["inbox", "profile", *COUNT_KEYS]
    rows = [
        [
            row["path"] if row["configured"] else f"{row['path']} (not configured)",
            row["profile"] or "-",
            *(row["counts"][key] for key in COUNT_KEYS),
        ]
        for row in report.inboxes
    ]
    parts.append(render_table(headers, rows))
    parts.extend(polled_lines(report.polled))
    if report.hosts:
        parts.append(render_table(["host", *COUNT_KEYS], host_rows(report.hosts, COUNT_KEYS)))
    if report.leases:
        parts.append("\nLeases:\n" + render_table(LEASE_HEADERS, lease_rows(report.leases)))
    parts.extend(_stall_lines(report))
    parts.append(f"Jobs in flight: {len(report.in_flight)}")
    if report.in_flight:
        job_rows = [
            [display(job["file"]), job["jobId"], job["jobStatus"] or "-", _age(job["ageSeconds"])]
            for job in report.in_flight
        ]
        parts.append(render_table(["file", "jobId", "status", "age"], job_rows))
    parts.append(f"\nLatest failures: {len(report.failures)}")
    for failure in report.failures:
        parts.append(
            f"  {failure['failedAt'] or '-'}  {failure['inbox']}/{display(failure['file'])}: "
            f"{failure['reason']}: {_one_line(failure['message'])}"
        )
        if failure["filedAs"]:
            parts.append(f"      now {display(failure['filedAs'])}")
    return "\n".join(parts) + "\n"


def _stall_lines(report: StatusReport) -> list[str]:
    lines = [f"Stalls: {len(report.stalls) or 'none'}"]
    for stall in report.stalls:
        lines.append(f"  {stall['kind']} since {stall['since']}: {_one_line(stall['message'])}")
    if report.live_note:
        lines.append(f"  ({report.live_note})")
    if report.uploads:
        lines.append(f"Uploading: {len(report.uploads)}")
        for upload in report.uploads:
            lines.append(
                f"  {display(upload['file'])}: {human_size(upload['bytesSent'])} of "
                f"{human_size(upload['bytesTotal'])}, {_age(upload['ageSeconds'])}"
            )
    lines.append("")
    return lines


def polled_lines(polled: Mapping[str, str]) -> list[str]:
    """The inboxes polled because the kernel refused inotify more instances or watches."""
    if not polled:
        return []
    lines = [f"Polled instead of watched (a kernel inotify limit is reached): {len(polled)}"]
    lines += [f"  {display(inbox)}: {limit} reached" for inbox, limit in sorted(polled.items())]
    return [*lines, ""]


def human_size(count: int) -> str:
    if count < 1024 * 1024:
        return f"{count / 1024:.0f} KiB"
    return f"{count / 1024 / 1024:.1f} MiB"


def _daemon_line(report: StatusReport) -> str:
    if report.pid is None:
        return f"Daemon: not running (state directory {report.state_dir})"
    pid = f"pid {report.pid}" if report.pid > 0 else "pid unknown"
    return f"Daemon: running, {pid} (state directory {report.state_dir})"


def _journal_line(report: StatusReport) -> str:
    if report.journal is None and report.shared:
        return f"Journal: none yet at {report.shared} (no daemon has set up its tables)"
    if report.journal is None:
        return (
            f"Journal: none yet at {report.state_dir / JOURNAL_NAME} "
            "(the daemon has not run with this state directory)"
        )
    return f"Journal: {report.journal}"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 120:
        return f"{whole}s"
    if whole < 7200:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


human_age = _age


def _one_line(message: Any) -> str:
    return display(" ".join(str(message or "").split()))


def read_journal(
    config: Config, read: Callable[[Journal | None], Awaitable[T]]
) -> tuple[T, bool] | None:
    """``read`` applied to the journal (None if there is none yet), and whether there was one;
    None after saying why the journal could not be read (the caller exits 1)."""

    async def reading() -> tuple[T, bool]:
        journal = await open_for_operator(config)
        try:
            return await read(journal), journal is not None
        finally:
            if journal is not None:
                await journal.close()

    try:
        return asyncio.run(reading())
    except journal_errors(config) as exc:
        print(f"cannot read the journal in {journal_place(config)}: {exc}", file=sys.stderr)
        return None


def status_main(args: argparse.Namespace) -> int:
    config = load_operator_config(args.config_path)
    if config is None:
        return EXIT_USAGE
    pid = running_pid(config.state_dir)
    live, note = live_of_running_daemon(config, pid)
    found = read_journal(
        config, lambda journal: gather_status(config, journal, time.time(), live, pid)
    )
    if found is None:
        return EXIT_FAILURE
    report, _ = found
    report = replace(report, live_note=note, leases=asyncio.run(read_leases(config)))
    if args.json:
        print(json.dumps(report.as_json(), indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_status(report))
    return EXIT_OK


# ==================================================================== conversations


async def gather_conversations(journal: Journal | None) -> list[dict[str, Any]]:
    if journal is None:
        return []
    return [
        {
            "inbox": record.inbox,
            "key": display(record.key),  # a key taken from a file name: any bytes
            "conversationId": record.conversation_id,
            "partsDone": record.last_part_done,
            "rejected": record.rejected,
        }
        for record in await journal.conversations()
    ]


def render_conversations(conversations: list[dict[str, Any]], journal_found: bool) -> str:
    if not journal_found:
        return "No journal yet: the daemon has not run with this state directory.\n"
    if not conversations:
        return "No conversations yet.\n"
    rows = [
        [
            item["inbox"],
            item["key"],
            item["conversationId"] or "-",
            item["partsDone"],
            "yes" if item["rejected"] else "no",
        ]
        for item in conversations
    ]
    return render_table(["inbox", "key", "conversationId", "parts done", "rejected"], rows)


def conversations_main(args: argparse.Namespace) -> int:
    config = load_operator_config(args.config_path)
    if config is None:
        return EXIT_USAGE
    found = read_journal(config, gather_conversations)
    if found is None:
        return EXIT_FAILURE
    conversations, journal_found = found
    if args.json:
        print(json.dumps({"conversations": conversations}, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(render_conversations(conversations, journal_found))
    return EXIT_OK
