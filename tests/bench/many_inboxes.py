"""Benchmarks of watching: 1,000 inboxes at the kernel's default limits, and a 100k-file rescan.

``thousand_inboxes`` runs the daemon in a user namespace of its own whose inotify limits are the
kernel's long-standing defaults (128 instances, 8,192 watches per user; ``unshare --user
--map-root-user``, where ``/proc/sys/user/max_inotify_*`` are the namespace's own), so the row
means the same on any machine; without user namespaces it runs under the machine's limits and
says so. An inbox counts as watched or polled when a file dropped into it reaches the journal.

``rescan_stall`` keeps 100,000 files waiting in one inbox (one job slot, long jobs) and rescans
it every second while a client asks ``/healthz`` again and again: the longest answer is the
longest the event loop was held.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from client_rss import emulator, free_port
from harness import (
    DaemonOptions,
    InboxSpec,
    journal_rows,
    percentile,
    running_daemon,
    wait_until,
    write_wavs,
)

from daemon.files.samples import make_wav

DEFAULT_INSTANCES = 128
DEFAULT_WATCHES = 8192


def default_limits_prefix() -> tuple[tuple[str, ...], str]:
    """A command prefix giving the daemon the kernel's default inotify limits, and a note."""
    unshare = shutil.which("unshare")
    script = (
        f"echo {DEFAULT_INSTANCES} > /proc/sys/user/max_inotify_instances && "
        f"echo {DEFAULT_WATCHES} > /proc/sys/user/max_inotify_watches"
    )
    if unshare is not None:
        probe = subprocess.run(
            [unshare, "--user", "--map-root-user", "sh", "-c", script],
            capture_output=True,
            timeout=10,
        )
        if probe.returncode == 0:
            note = f"user namespace: {DEFAULT_INSTANCES} instances, {DEFAULT_WATCHES} watches"
            prefix = (unshare, "--user", "--map-root-user", "sh", "-c", f'{script} && exec "$@"')
            return (*prefix, "sh"), note
    limits = [
        Path(f"/proc/sys/fs/inotify/max_user_{kind}").read_text().strip()
        for kind in ("instances", "watches")
    ]
    return (), f"the machine's limits: {limits[0]} instances, {limits[1]} watches"


def thousand_inboxes(inboxes: int, idle_window: float) -> dict[str, Any]:
    """Start-up to ready, idle CPU, and the share of inboxes whose dropped file is journaled."""
    prefix, limits = default_limits_prefix()
    with (
        tempfile.TemporaryDirectory(prefix="bench-inboxes-") as folder,
        emulator(1.0, 50) as base_url,
    ):
        workdir = Path(folder)
        specs = [InboxSpec(workdir / f"inbox{index:04d}") for index in range(inboxes)]
        with running_daemon(
            workdir / "daemon", base_url, specs, wait_ready=False, prefix=prefix
        ) as daemon:
            ready = daemon.wait_for("daemon_ready")[0].timestamp - daemon.started_at
            time.sleep(2.0)  # the first live.json and maintenance ticks pass
            before, started = daemon.cpu_seconds(), time.monotonic()
            time.sleep(idle_window)  # the measurement window itself
            used, elapsed = daemon.cpu_seconds() - before, time.monotonic() - started
            threads = sum(1 for _ in Path(f"/proc/{daemon.pid}/task").iterdir())
            audio = make_wav(0.1)
            for spec in specs:
                (spec.path / ".drop.part").write_bytes(audio)
                (spec.path / ".drop.part").rename(spec.path / "drop.wav")
            dropped = time.monotonic()
            with contextlib.suppress(TimeoutError):  # the share below says how many
                wait_until(
                    lambda: journal_rows(daemon.state_dir, "DISTINCT inbox") >= inboxes,
                    30.0,
                    "a file journaled from every inbox",
                    step=0.2,
                )
            seen = journal_rows(daemon.state_dir, "DISTINCT inbox")
            seen_within = time.monotonic() - dropped
            modes = [str(event.fields.get("mode")) for event in daemon.events("inbox_watching")]
            warnings = [
                event.fields.get("limit") for event in daemon.events("inotify_limit_reached")
            ]
    return {
        "inboxes": inboxes,
        "limits": limits,
        "ready_seconds": ready,
        "window_seconds": elapsed,
        "cpu_seconds": used,
        "idle_cpu_percent": used / elapsed * 100,
        "threads": threads,
        "watched_or_polled": seen,
        "share": seen / inboxes,
        "all_seen_within_seconds": seen_within,
        "inotify": modes.count("inotify"),
        "polled": modes.count("poll"),
        "limit_warnings": warnings,
    }


def rescan_stall(files: int, window: float) -> dict[str, Any]:
    """Longest ``/healthz`` answer while an inbox of ``files`` waiting files is rescanned, and
    (the baseline, same daemon, same run) while the inbox is still empty."""
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="bench-rescan-") as folder,
        emulator(3600.0, 1) as base_url,
    ):
        workdir = Path(folder)
        inbox = InboxSpec(workdir / "inbox", settle_seconds=0.5, rescan_seconds=1.0)
        options = DaemonOptions(
            max_concurrent_jobs=1,
            max_concurrent_uploads=1,
            http_port=port,
            log_level="debug",  # every rescan's inbox_scanned line, also when it finds nothing
        )
        with running_daemon(workdir / "daemon", base_url, [inbox], options) as daemon:
            baseline = _probe_healthz(port, window)
            write_wavs(inbox.path, files, seconds=0.01)
            journaled = lambda: journal_rows(daemon.state_dir) >= files  # noqa: E731 - a condition
            wait_until(journaled, 300.0, "every file journaled", step=0.2)
            # Admission done (no file still waiting), then a rescan that finds all files and
            # nothing new: what follows is rescans alone.
            waiting = "CASE WHEN state = 'waiting' THEN 1 END"  # counts the waiting rows only
            admitted = lambda: journal_rows(daemon.state_dir, waiting) == 0  # noqa: E731
            wait_until(admitted, 300.0, "every file admitted", step=0.2)
            scans_before = _quiet_rescans(daemon, files)
            quiet = lambda: _quiet_rescans(daemon, files) > scans_before  # noqa: E731
            wait_until(quiet, 300.0, "a rescan with nothing new", step=0.2)
            scans_before = _quiet_rescans(daemon, files)
            latencies = _probe_healthz(port, window)
            scans = _quiet_rescans(daemon, files) - scans_before
    return {
        "files": files,
        "window_seconds": window,
        "rescans_in_window": scans,
        "requests": len(latencies),
        "max_ms": max(latencies) * 1000,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "baseline_max_ms": max(baseline) * 1000,
        "baseline_p50_ms": percentile(baseline, 0.5) * 1000,
        "baseline_p99_ms": percentile(baseline, 0.99) * 1000,
    }


def _probe_healthz(port: int, window: float) -> list[float]:
    """Seconds each ``/healthz`` took, asked one after another for ``window`` seconds."""
    latencies: list[float] = []
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10.0) as client:
        ends = time.monotonic() + window
        while time.monotonic() < ends:
            asked = time.perf_counter()
            client.get("/healthz").raise_for_status()
            latencies.append(time.perf_counter() - asked)
            time.sleep(0.002)  # a steady stream of requests, not a busy loop
    return latencies


def _quiet_rescans(daemon: Any, files: int) -> int:
    return sum(
        1
        for event in daemon.events("inbox_scanned")
        if event.fields.get("new_files") == 0 and event.fields.get("files") == files
    )
