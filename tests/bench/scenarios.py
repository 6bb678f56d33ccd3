"""The daemon's own benchmarks: batches against the job limit, pick-up latency, backlog, idle CPU.

Each function starts what it needs (an emulator process, the daemon as a process) in a temporary
folder, measures one thing and returns a dict of plain numbers; everything it started is stopped
before it returns, also when it fails.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from client_rss import emulator
from harness import (
    DaemonOptions,
    InboxSpec,
    journal_rows,
    percentile,
    running_daemon,
    submissions,
    wait_until,
    write_wavs,
)

from daemon.files.samples import make_wav

BATCH_FILES = 200
JOB_LIMIT = 50
JOB_SECONDS = 1.0
SETTLE_SECONDS = 0.5
BATCH_RUNS = 3
PICKUP_FILES = 100
PICKUP_GAP_SECONDS = 0.05


def _move_all(sources: list[Path], inbox: Path) -> float:
    """Rename each file into ``inbox`` (same filesystem); the moment the move began."""
    started = time.time()
    for source in sources:
        source.rename(inbox / source.name)
    return started


def filed_wall_seconds(
    base_url: str, workdir: Path, staged: list[Path], options: DaemonOptions, timeout: float
) -> dict[str, Any]:
    """Move the ``staged`` files into an inbox at once; seconds until the last one is filed.

    ``staged`` must lie on the inbox's filesystem (a sibling folder), so that each move is a
    rename and the daemon sees each file appear whole.
    """
    count = len(staged)
    inbox = InboxSpec(workdir / "inbox", settle_seconds=SETTLE_SECONDS)
    with running_daemon(workdir / "daemon", base_url, [inbox], options) as daemon:
        moved_at = _move_all(staged, inbox.path)
        filed = daemon.wait_for("file_filed", count, timeout)
        deferred = daemon.count("submissions_paused") + daemon.count("upload_deferred")
    outcomes = {str(event.fields.get("outcome")) for event in filed}
    if outcomes != {"done"}:
        raise RuntimeError(f"some files were not done: {outcomes}")
    last = max(event.timestamp for event in filed)
    return {"files": count, "wall_seconds": last - moved_at, "paused_or_deferred": deferred}


def batch_ratio(webhook_port: int | None, runs: int = BATCH_RUNS) -> dict[str, Any]:
    """The median of ``runs`` batches (each from scratch), with every run's ratio beside it.

    One batch lasts about five seconds on a machine shared with the emulator, and one run can
    differ from the next by 0.05 in ratio; the median of three says what is typical.
    """
    results = [_one_batch(webhook_port) for _ in range(runs)]
    ratios = [result["ratio"] for result in results]
    median = sorted(results, key=lambda result: result["ratio"])[len(results) // 2]
    return {**median, "runs": runs, "ratios": ratios}


def _one_batch(webhook_port: int | None) -> dict[str, Any]:
    """200 files at a 50-job limit with 1 s jobs, against ``settle + ceil(200/50) * 1 s``."""
    floor = SETTLE_SECONDS + math.ceil(BATCH_FILES / JOB_LIMIT) * JOB_SECONDS
    options = DaemonOptions(max_concurrent_jobs=JOB_LIMIT, http_port=webhook_port)
    with (
        tempfile.TemporaryDirectory(prefix="bench-batch-") as folder,
        emulator(JOB_SECONDS, JOB_LIMIT) as base_url,
    ):
        workdir = Path(folder)
        staged = write_wavs(workdir / "staging", BATCH_FILES)
        result = filed_wall_seconds(base_url, workdir, staged, options, 120.0)
    result.update(
        least_possible_seconds=floor,
        ratio=result["wall_seconds"] / floor,
        settle_seconds=SETTLE_SECONDS,
        mode="webhook" if webhook_port is not None else "polling",
        poll_initial_seconds=options.poll_initial_seconds,
    )
    return result


def pickup_latency(watch: str, poll_interval: float = 1.0) -> dict[str, Any]:
    """Writer closes a file -> its upload reaches the emulator, minus the settle window."""
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-pickup-{watch}-") as folder,
        emulator(JOB_SECONDS, PICKUP_FILES + 10) as base_url,
    ):
        workdir = Path(folder)
        inbox = InboxSpec(
            workdir / "inbox",
            watch=watch,
            settle_seconds=SETTLE_SECONDS,
            poll_interval_seconds=poll_interval,
        )
        options = DaemonOptions(max_concurrent_jobs=PICKUP_FILES + 10)
        with running_daemon(workdir / "daemon", base_url, [inbox], options):
            closed = _write_one_by_one(inbox.path, PICKUP_FILES)
            wait_until(
                lambda: len(submissions(base_url)) >= PICKUP_FILES,
                30.0 + PICKUP_FILES * poll_interval,
                f"{PICKUP_FILES} uploads",
                step=0.2,
            )
            received = {
                record["params"].get("name"): record["received_at"]
                for record in submissions(base_url)
            }
    latencies = [
        (received[name] - closed_at - SETTLE_SECONDS) * 1000 for name, closed_at in closed.items()
    ]
    return {
        "watch": watch,
        "files": len(latencies),
        "settle_seconds": SETTLE_SECONDS,
        "poll_interval_seconds": poll_interval if watch == "poll" else None,
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
    }


def _write_one_by_one(inbox: Path, count: int) -> dict[str, float]:
    """Write ``count`` WAVs straight into the inbox with small gaps; file name -> close time."""
    audio = make_wav(0.5)
    closed: dict[str, float] = {}
    for index in range(1, count + 1):
        name = f"pick{index:04d}.wav"
        with open(inbox / name, "wb") as handle:
            handle.write(audio)
        closed[name] = time.time()
        time.sleep(PICKUP_GAP_SECONDS)  # the writer's pace: one file at a time
    return closed


def backlog(files: int, audio: str = "wav") -> dict[str, Any]:
    """``files`` WAVs (or MP3s from lame) already in the inbox at start: all journaled and the
    first upload begun."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-backlog-") as folder,
        emulator(JOB_SECONDS, JOB_LIMIT) as base_url,
    ):
        workdir = Path(folder)
        inbox = InboxSpec(workdir / "inbox", settle_seconds=SETTLE_SECONDS)
        if audio == "mp3":
            write_mp3s(inbox.path, files)
        else:
            write_wavs(inbox.path, files, seconds=0.1)
        with running_daemon(workdir / "daemon", base_url, [inbox], wait_ready=False) as daemon:
            started = daemon.started_at
            journaled_at = wait_until(
                lambda: journal_rows(daemon.state_dir) >= files, 60.0, f"{files} journal rows"
            )
            wait_until(lambda: bool(submissions(base_url)), 60.0, "the first upload", step=0.05)
            first_upload_at = min(record["received_at"] for record in submissions(base_url))
            hwm_at_goal = daemon.vm_hwm_mib()
            ready_at = daemon.wait_for("daemon_ready")[0].timestamp
            time.sleep(2.0)  # a little of the steady state that follows, for the peak RSS
            hwm = daemon.vm_hwm_mib()
    return {
        "files": files,
        "audio": audio,
        "seconds": max(journaled_at, first_upload_at) - started,
        "journaled_seconds": journaled_at - started,
        "first_upload_seconds": first_upload_at - started,
        "ready_logged_seconds": ready_at - started,
        "rss_mib_at_goal": hwm_at_goal,
        "rss_mib": hwm,
    }


def write_mp3s(folder: Path, count: int) -> None:
    """``count`` copies of a 1 s mono MP3 that lame made (with its Xing/Info header)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder.parent / "tone.wav"
    source.write_bytes(make_wav(1.0, sample_rate=16000))
    encoded = folder.parent / "tone.mp3"
    subprocess.run(["lame", "--quiet", "-b", "32", str(source), str(encoded)], check=True)
    audio = encoded.read_bytes()
    for index in range(1, count + 1):
        (folder / f"f{index:05d}.mp3").write_bytes(audio)


def idle_cpu(inboxes: int, window: float) -> dict[str, Any]:
    """CPU share of the daemon watching ``inboxes`` empty inboxes for ``window`` seconds."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-idle-") as folder,
        emulator(JOB_SECONDS, JOB_LIMIT) as base_url,
    ):
        workdir = Path(folder)
        specs = [InboxSpec(workdir / f"inbox{index:03d}") for index in range(inboxes)]
        with running_daemon(workdir / "daemon", base_url, specs) as daemon:
            time.sleep(2.0)  # let start-up work (imports, first scans) finish
            before, started = daemon.cpu_seconds(), time.monotonic()
            before_ns = daemon.cpu_ns_all_threads()
            time.sleep(window)  # the measurement window itself
            used, elapsed = daemon.cpu_seconds() - before, time.monotonic() - started
            used_ns = daemon.cpu_ns_all_threads() - before_ns
            threads = sum(1 for _ in Path(f"/proc/{daemon.pid}/task").iterdir())
            watching = daemon.events("inbox_watching")
    return {
        "inboxes": inboxes,
        "window_seconds": elapsed,
        "cpu_seconds": used,
        "percent": used / elapsed * 100,
        "percent_schedstat": used_ns / 1e9 / elapsed * 100,
        "threads": threads,
        "watch_modes": sorted({str(event.fields.get("mode")) for event in watching}),
        "inboxes_watching": len(watching),
    }
