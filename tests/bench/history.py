"""Costs that must not grow with history: a journal of a million filed rows, a long steady run.

``history_latency`` seeds a journal with filed rows straight through SQLite (seconds, not the
hours the daemon would take to file them), starts the daemon on it and times what operators and
Prometheus read: ``/metrics``, ``/healthz`` while scrapes run, and ``symbl-inbox status``.
``steady_state`` feeds the daemon thousands of files in waves and follows its resident memory
and the journal's size, with a retention short enough to prune during the run.
"""

from __future__ import annotations

import json
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from client_rss import REPO, emulator, free_port
from harness import MIB, DaemonOptions, InboxSpec, running_daemon, wait_until, write_wavs

from daemon.journal import SqliteJournal

SCRAPES = 20
STATUS_RUNS = 3
# A filed record's data as the daemon writes it for a short WAV (about 900 bytes).
RECORD_DATA = json.dumps(
    {
        "times": {
            "seen": 1796176121.4,
            "ready": 1796176134.6,
            "upload_started": 1796176134.7,
            "submitted": 1796176134.7,
            "completed": 1796176135.7,
            "filed": 1796176135.9,
        },
        "params": {"languageCode": "en-US", "name": "call-0000000.wav"},
        "send": {"action": "as_is", "per_channel": False},
        "content_type": "audio/wav",
        "audio": {
            "dropped": {"format": "wav", "codec": "pcm", "channels": 1, "sample_rate": 8000},
            "sent": {"format": "wav", "codec": "pcm", "channels": 1, "converted": False},
        },
        "duration_seconds": 61.4,
        "attempts": 1,
        "attempt_log": [{"startedAt": 1796176134.7, "finishedAt": 1796176134.8, "status": 201}],
        "job_status": "completed",
    }
)
# One row in FAILED_EVERY is a failure, as in a team's real history.
FAILED_EVERY = 50
# The seeded rows were filed over the last month: well inside the default retention.
SEEDED_SPAN_SECONDS = 30 * 86400.0


def seed_filed_rows(state_dir: Path, inboxes: list[str], rows: int) -> float:
    """``rows`` filed rows spread over ``inboxes``, written with one INSERT; seconds it took.

    The journal is created by the daemon's own code first, so that the rows land in its schema;
    the counts it keeps beside them are then made again from the rows when the daemon starts.
    """
    started = time.monotonic()
    SqliteJournal.in_state_dir(state_dir).close_now()
    now = time.time()
    with sqlite3.connect(state_dir / "journal.sqlite3", isolation_level=None) as db:
        db.execute("BEGIN")
        for number, inbox in enumerate(inboxes):
            share = rows // len(inboxes) + (1 if number < rows % len(inboxes) else 0)
            db.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)"
                " INSERT INTO files (inbox, rel_path, kind, size, mtime_ns, state, profile,"
                " sha256, conversation_id, job_id, outcome, reason, filed_path, data, updated_at)"
                " SELECT ?, printf('%s/call-%07d.wav', ?, i), 'audio', 982044, 0, 'filed', 'bench',"
                " printf('%064d', i), printf('%d', 5000000000000000 + i), printf('job-%d', i),"
                " CASE WHEN i % ? = 0 THEN 'failed' ELSE 'done' END,"
                " CASE WHEN i % ? = 0 THEN 'unsupported_format' END,"
                " printf('call-%07d.wav', i), ?, ? - (? - i) * ?"
                " FROM n",
                (
                    share,
                    inbox,
                    f"{number:02d}",
                    FAILED_EVERY,
                    FAILED_EVERY,
                    RECORD_DATA,
                    now,
                    share,
                    SEEDED_SPAN_SECONDS / max(share, 1),
                ),
            )
        # Rows written behind the journal's back are not counted: let the daemon count them
        # once when it opens the journal, as it does a journal from before counts were kept.
        db.execute("DROP TABLE IF EXISTS file_counts")
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.monotonic() - started


def history_latency(rows: int) -> dict[str, Any]:
    """``/metrics``, ``/healthz`` and ``status`` with ``rows`` filed rows in the journal."""
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="bench-history-") as folder,
        emulator() as base_url,
    ):
        workdir = Path(folder)
        specs = [InboxSpec(workdir / f"inbox{index}") for index in range(3)]
        state_dir = workdir / "daemon" / "state"
        state_dir.mkdir(parents=True)
        seed_seconds = seed_filed_rows(state_dir, [str(spec.path) for spec in specs], rows)
        journal_mib = _journal_bytes(state_dir) / MIB
        options = DaemonOptions(http_port=port)
        started = time.time()
        with running_daemon(workdir / "daemon", base_url, specs, options) as daemon:
            ready_seconds = daemon.events("daemon_ready")[0].timestamp - started
            url = f"http://127.0.0.1:{port}"
            scrapes, healthz, body = _scrape_while_probing(url)
            status = [_status_seconds(daemon.config_path) for _ in range(STATUS_RUNS)]
            shown = _status_filed(daemon.config_path)
    filed = _filed_in_metrics(body)
    if filed != rows or shown != rows:
        raise RuntimeError(f"{rows} filed rows seeded, /metrics says {filed}, status {shown}")
    return {
        "rows": rows,
        "journal_mib": journal_mib,
        "seed_seconds": seed_seconds,
        "start_to_ready_seconds": ready_seconds,
        "metrics_ms_p50": statistics.median(scrapes) * 1000,
        "metrics_ms_max": max(scrapes) * 1000,
        "scrapes": len(scrapes),
        "healthz_ms_max_during_scrapes": max(healthz) * 1000,
        "healthz_probes": len(healthz),
        "status_seconds": statistics.median(status),
        "status_seconds_all": status,
    }


def _scrape_while_probing(url: str) -> tuple[list[float], list[float], str]:
    """``SCRAPES`` timed GETs of /metrics while another client keeps asking /healthz."""
    healthz: list[float] = []
    failures: list[BaseException] = []
    done = threading.Event()

    def probe() -> None:
        try:
            with httpx.Client(timeout=10) as client:
                while not done.is_set():
                    began = time.perf_counter()
                    client.get(f"{url}/healthz")
                    healthz.append(time.perf_counter() - began)
                    done.wait(0.005)  # a couple of hundred probes a second, not a busy loop
        except BaseException as exc:  # told to the measuring thread, not lost with this one
            failures.append(exc)

    prober = threading.Thread(target=probe, name="healthz-probe")
    prober.start()
    scrapes: list[float] = []
    body = ""
    try:
        wait_until(lambda: bool(healthz) or bool(failures), 30.0, "the first /healthz", 0.005)
        with httpx.Client(timeout=30) as client:
            for _ in range(SCRAPES):
                began = time.perf_counter()
                answer = client.get(f"{url}/metrics")
                scrapes.append(time.perf_counter() - began)
                answer.raise_for_status()
                body = answer.text
        wait_until(lambda: len(healthz) >= SCRAPES or bool(failures), 30.0, "/healthz", 0.005)
    finally:
        done.set()
        prober.join()
    if failures:
        raise RuntimeError(f"/healthz failed: {failures[0]!r}")
    return scrapes, healthz, body


def _filed_in_metrics(body: str) -> int:
    pattern = r'^symbl_inbox_files\{inbox="[^"]*",state="filed_(?:done|failed)"\} ([0-9.e+]+)$'
    return sum(int(float(value)) for value in re.findall(pattern, body, re.MULTILINE))


def _status_command(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "daemon", "--config", str(config), "status", *extra]


def _status_seconds(config: Path) -> float:
    """Wall time of ``symbl-inbox status``, as an operator waits for it (start-up included)."""
    began = time.perf_counter()
    subprocess.run(_status_command(config), cwd=REPO, check=True, capture_output=True)
    return time.perf_counter() - began


def _status_filed(config: Path) -> int:
    done = subprocess.run(
        _status_command(config, "--json"), cwd=REPO, check=True, capture_output=True, text=True
    )
    report = json.loads(done.stdout)
    return sum(
        inbox["counts"]["filed_done"] + inbox["counts"]["filed_failed"]
        for inbox in report["inboxes"]
    )


def _journal_bytes(state_dir: Path) -> int:
    """The journal's file with its write-ahead log."""
    return sum(
        path.stat().st_size
        for path in state_dir.glob("journal.sqlite3*")
        if not path.name.endswith("-shm")
    )


def _journal_rows(state_dir: Path) -> int:
    with sqlite3.connect(f"file:{state_dir / 'journal.sqlite3'}?mode=ro", uri=True) as db:
        (count,) = db.execute("SELECT count(*) FROM files").fetchone()
    return int(count)


# ---------------------------------------------------------------- a long steady run

STEADY_WAVE = 250
STEADY_JOB_SECONDS = 0.2
# Short enough to prune during the run: the journal stops growing once rows older than this
# are pruned as fast as new ones are filed.
STEADY_KEEP_FILED_DAYS = 10.0 / 86400


def steady_state(files: int) -> dict[str, Any]:
    """``files`` WAVs in waves of ``STEADY_WAVE``: the daemon's resident memory and the journal's
    size after each wave, with retention pruning what is older than ``STEADY_KEEP_FILED_DAYS``.
    """
    with (
        tempfile.TemporaryDirectory(prefix="bench-steady-") as folder,
        emulator(STEADY_JOB_SECONDS, 50) as base_url,
    ):
        workdir = Path(folder)
        inbox = InboxSpec(workdir / "inbox", settle_seconds=0.2)
        options = DaemonOptions(journal={"keep_filed_days": STEADY_KEEP_FILED_DAYS})
        samples: list[dict[str, float]] = []
        with running_daemon(workdir / "daemon", base_url, [inbox], options) as daemon:
            started = time.monotonic()
            for wave in range(files // STEADY_WAVE):
                staged = write_wavs(workdir / "staging", STEADY_WAVE, prefix=f"w{wave:03d}-")
                for source in staged:
                    source.rename(inbox.path / source.name)
                daemon.wait_for("file_filed", (wave + 1) * STEADY_WAVE, 120.0)
                samples.append(
                    {
                        "filed": (wave + 1) * STEADY_WAVE,
                        "seconds": time.monotonic() - started,
                        "rss_mib": _vm_rss_mib(daemon.pid),
                        "journal_rows": _journal_rows(daemon.state_dir),
                        "journal_mib": _journal_bytes(daemon.state_dir) / MIB,
                    }
                )
            pruned = sum(
                int(event.fields.get("rows", 0)) for event in daemon.events("journal_pruned")
            )
    first_thousand = next(sample for sample in samples if sample["filed"] >= min(1000, files))
    last = samples[-1]
    return {
        "files": files,
        "wave": STEADY_WAVE,
        "keep_filed_seconds": STEADY_KEEP_FILED_DAYS * 86400,
        "rss_mib_after_1k": first_thousand["rss_mib"],
        "rss_mib_at_end": last["rss_mib"],
        "rss_growth_mib": last["rss_mib"] - first_thousand["rss_mib"],
        "journal_rows_at_end": last["journal_rows"],
        "journal_rows_max": max(sample["journal_rows"] for sample in samples),
        "journal_mib_at_end": last["journal_mib"],
        "rows_pruned_logged": pruned,
        "samples": samples,
    }


def _vm_rss_mib(pid: int) -> float:
    """Resident memory now (VmRSS), not the peak: what a steady run keeps."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise KeyError("VmRSS")


def notes(details: dict[str, Any]) -> dict[str, str]:
    """A few words beside each of these rows in the table."""
    found: dict[str, str] = {}
    if "history" in details:
        h = details["history"]
        common = f"{h['rows']:,} filed rows, journal {h['journal_mib']:.0f} MiB"
        found["metrics_ms_1m_filed"] = (
            f"median of {h['scrapes']} scrapes, max {h['metrics_ms_max']:.0f} ms; {common}"
        )
        found["healthz_ms_during_scrapes_1m_filed"] = (
            f"slowest of {h['healthz_probes']} /healthz while /metrics was scraped"
        )
        found["status_seconds_1m_filed"] = (
            f"median of {len(h['status_seconds_all'])}, whole command; {common}"
        )
    if "steady" in details:
        s = details["steady"]
        found["steady_rss_growth_mib_5k"] = (
            f"VmRSS {s['rss_mib_after_1k']:.0f} MiB after 1,000 files, {s['rss_mib_at_end']:.0f}"
            f" MiB after {s['files']:,}"
        )
        found["steady_journal_rows_5k"] = (
            f"at most {s['journal_rows_max']} rows, {s['journal_mib_at_end']:.1f} MiB; "
            f"keep_filed_days {s['keep_filed_seconds']:.0f} s"
        )
    return found


if __name__ == "__main__":  # a quick look: python tests/bench/history.py ROWS
    print(json.dumps(history_latency(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
