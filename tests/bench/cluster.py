"""Several hosts on one account: three daemons sharing an inbox and a PostgreSQL journal.

``three_hosts``: 600 files at a 50-job limit with 1 s jobs, against the least possible time
(settle + ceil(600/50) x 1 s), the peak of jobs running at once at the emulator (it must reach
the limit, never pass it) and the database transactions per file. ``takeover``: how long after
a kill -9 another host takes the dead host's submitted jobs over, against its lease.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from client_rss import emulator, free_port
from harness import DaemonOptions, InboxSpec, running_daemon, submissions, write_wavs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the PostgreSQL harness
from pg_harness import Database, PostgresServer

CLUSTER_FILES = 600
CLUSTER_HOSTS = 3
JOB_LIMIT = 50
JOB_SECONDS = 1.0
SETTLE_SECONDS = 0.5
TAKEOVER_LEASE_SECONDS = 5.0
TAKEOVER_JOBS = 10


def _cluster_options(database: Database, host: str, lease: float, **more: Any) -> DaemonOptions:
    return DaemonOptions(
        max_concurrent_jobs=JOB_LIMIT,
        extra={
            "journal": {"url": database.url},
            "cluster": {
                "host_id": host,
                "lease_seconds": lease,
                "heartbeat_seconds": lease / 3,
            },
        },
        **more,
    )


def _transactions(database: Database) -> int:
    with database.connect() as connection:
        row = connection.execute(
            "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s",
            (database.name,),
        ).fetchone()
    return int(row[0]) if row else 0


def peak_jobs(received: list[float], job_seconds: float) -> int:
    """The most jobs the emulator ran at once: each runs ``job_seconds`` from its submission."""
    ordered = sorted(received)
    peak, start = 0, 0
    for end, moment in enumerate(ordered):
        while ordered[start] <= moment - job_seconds:
            start += 1
        peak = max(peak, end - start + 1)
    return peak


def three_hosts() -> dict[str, Any]:
    floor = SETTLE_SECONDS + math.ceil(CLUSTER_FILES / JOB_LIMIT) * JOB_SECONDS
    with (
        tempfile.TemporaryDirectory(prefix="bench-cluster-") as folder,
        PostgresServer() as server,
        emulator(JOB_SECONDS, JOB_LIMIT) as base_url,
        ExitStack() as daemons,
    ):
        workdir = Path(folder)
        database = server.create_database()
        staged = write_wavs(workdir / "staging", CLUSTER_FILES)
        inbox = InboxSpec(workdir / "inbox", settle_seconds=SETTLE_SECONDS, inbox_id="shared")
        hosts = [
            daemons.enter_context(
                running_daemon(
                    workdir / f"host-{n}",
                    base_url,
                    [inbox],
                    # Webhooks, as in the one-host batch: a job's end frees its slot at once.
                    _cluster_options(database, f"host-{n}", 30.0, http_port=free_port()),
                )
            )
            for n in range(CLUSTER_HOSTS)
        ]
        before = _transactions(database)
        moved_at = time.time()
        for source in staged:
            source.rename(inbox.path / source.name)
        deadline = time.monotonic() + 180
        while sum(host.count("file_filed") for host in hosts) < CLUSTER_FILES:
            if time.monotonic() > deadline:
                counts = {
                    name: [host.count(name) for host in hosts]
                    for name in ("file_seen", "upload_started", "file_submitted", "file_filed")
                }
                raise RuntimeError(f"the cluster did not file every file in 180 s: {counts}")
            time.sleep(0.05)
        filed = [event for host in hosts for event in host.events("file_filed")]
        transactions = _transactions(database) - before
        accepted = submissions(base_url)
        refused = [
            r for r in httpx.get(f"{base_url}/_emulator/requests", timeout=10).json()
            if r["status"] == 429
        ]  # fmt: skip
    wall = max(event.timestamp for event in filed) - moved_at
    return {
        "files": CLUSTER_FILES,
        "hosts": CLUSTER_HOSTS,
        "wall_seconds": wall,
        "least_possible_seconds": floor,
        "ratio": wall / floor,
        "peak_jobs": peak_jobs([s["received_at"] for s in accepted], JOB_SECONDS),
        "job_limit": JOB_LIMIT,
        "rate_limited": len(refused),
        "submissions": len(accepted),
        "filed_per_host": [host.count("file_filed") for host in hosts],
        "db_transactions_per_file": transactions / CLUSTER_FILES,
    }


def takeover() -> dict[str, Any]:
    """Two hosts; the one holding running jobs is killed -9. Seconds until the other host has
    taken every one of them over (jobs long enough to outlast it)."""
    lease = TAKEOVER_LEASE_SECONDS
    with (
        tempfile.TemporaryDirectory(prefix="bench-takeover-") as folder,
        PostgresServer() as server,
        emulator(60.0, JOB_LIMIT) as base_url,
        ExitStack() as daemons,
    ):
        workdir = Path(folder)
        database = server.create_database()
        staged = write_wavs(workdir / "staging", TAKEOVER_JOBS)
        first_inbox = InboxSpec(workdir / "inbox", settle_seconds=0.2, inbox_id="shared")
        first = daemons.enter_context(
            running_daemon(
                workdir / "host-a", base_url, [first_inbox], _cluster_options(database, "a", lease)
            )
        )
        for source in staged:
            source.rename(first_inbox.path / source.name)
        first.wait_for("file_submitted", TAKEOVER_JOBS, 60)
        second = daemons.enter_context(
            running_daemon(
                workdir / "host-b", base_url, [first_inbox], _cluster_options(database, "b", lease)
            )
        )
        killed_at = time.time()
        first.kill()
        taken = second.wait_for("file_taken_over", TAKEOVER_JOBS, lease * 4)
        resent = second.count("file_sent_again_after_takeover")
    seconds = max(event.timestamp for event in taken) - killed_at
    return {
        "lease_seconds": lease,
        "jobs": TAKEOVER_JOBS,
        "takeover_seconds": seconds,
        "over_lease_seconds": seconds - lease,
        "sent_again": resent,
    }
