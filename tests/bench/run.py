"""symbl-inbox benchmarks: against the account's limit and against what users would use instead.

    .venv/bin/python tests/bench/run.py [--out results.json] [--quick] [--only NAME,...]

Starts everything it needs over loopback (the emulator as a process, the daemon as a process, the
official SDK and curl as subprocesses), prints a table and writes the results as JSON. ``--quick``
uses smaller sizes and shorter windows (said so in the table) to finish in about three minutes.
The official SDK's loop waits 30 s per file by design, so it runs in the background (after the
batch) while the other measurements proceed; it is idle nearly all that time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from baselines import offer_sdk_to_children
from client_rss import REPO, free_port
from cluster import takeover, three_hosts
from comparisons import SdkComparison, upload_rss, upload_throughput
from harness import MIB, DaemonOptions, InboxSpec, config_text
from history import history_latency, steady_state
from history import notes as history_notes
from many_inboxes import rescan_stall, thousand_inboxes
from recordings import convert, downmix
from scenarios import backlog, batch_ratio, idle_cpu, pickup_latency
from tracking import tracking

GIB = 1024 * MIB


@dataclass(frozen=True)
class Sizes:
    rss_bytes: int
    throughput_bytes: int
    backlog_files: int
    idle_seconds: float
    idle_inboxes: int = 100
    downmix_bytes: int = 2 * 1024 * MIB
    convert_seconds: int = 3600
    many_inboxes: int = 1000
    rescan_files: int = 100_000
    tracking_files: int = 15  # measured files per job set, after a warm-up round of 5
    backlog_large_files: int = 100_000
    history_rows: int = 1_000_000
    steady_files: int = 5_000


FULL = Sizes(rss_bytes=2 * GIB, throughput_bytes=GIB, backlog_files=10_000, idle_seconds=30.0)
QUICK = Sizes(
    rss_bytes=256 * MIB,
    throughput_bytes=256 * MIB,
    backlog_files=2_000,
    idle_seconds=10.0,
    downmix_bytes=256 * MIB,
    convert_seconds=600,
    rescan_files=20_000,
    tracking_files=10,
    backlog_large_files=20_000,
    history_rows=200_000,
    steady_files=1_000,
)
# The measurements by name, in the order they run; ``--only`` picks some of them.
MEASUREMENTS = (
    "batch", "ours_3_files", "pickup_inotify", "pickup_poll", "backlog", "idle", "rss",
    "throughput", "throughput_proxy", "sdk", "downmix", "convert", "backlog_mp3",
    "inboxes_1000", "rescan_100k",
    "tracking",
    "backlog_100k", "history", "steady",
    "cluster", "takeover",
)  # fmt: skip


@dataclass(frozen=True)
class Goal:
    key: str
    limit: float | None
    at_most: bool = True

    def met(self, value: float | None) -> bool | None:
        if self.limit is None or value is None:
            return None
        return value <= self.limit if self.at_most else value >= self.limit

    def text(self) -> str:
        if self.limit is None:
            return "-"
        return f"{'<=' if self.at_most else '>='} {self.limit:g}"


TRACKING_SETS = ("15s", "45s", "75s", "mix_15_90s")
# 2-minute jobs, polled from a cold start: two rounds of the 5 slots.
TWO_MINUTE_FILES = 10
GOALS = (
    Goal("batch_ratio_to_limit", 1.05),
    Goal("sdk_over_ours_per_file", 10, at_most=False),
    Goal("rss_mib_2gib_ours", 80),
    Goal("rss_mib_2gib_sdk", None),
    Goal("pickup_p99_ms_inotify", 100),
    Goal("pickup_p99_ms_poll", None),
    Goal("backlog_10k_seconds", 3),
    Goal("backlog_10k_rss_mib", 150),
    Goal("idle_cpu_percent_100_inboxes", 0.5),
    Goal("upload_throughput_ratio_vs_curl", 0.7, at_most=False),
    Goal("backlog_10k_mp3_seconds", 3),
    Goal("backlog_10k_mp3_rss_mib", 150),
    Goal("downmix_2gib_rss_mib", 80),
    Goal("downmix_2gib_ratio_vs_sox", 0.5, at_most=False),
    Goal("convert_1h_m4a_ratio_vs_ffmpeg", 0.8, at_most=False),
    Goal("upload_throughput_ratio_vs_curl_proxy", 0.7, at_most=False),
    Goal("inboxes_1000_watched_or_polled_share", 1.0, at_most=False),
    Goal("inboxes_1000_ready_seconds", 3),
    Goal("inboxes_1000_idle_cpu_percent", 0.5),
    Goal("rescan_100k_healthz_max_ms", 100),
    *(Goal(f"poll_over_webhook_utilisation_{name}", 0.97, at_most=False) for name in TRACKING_SETS),
    Goal("status_requests_per_job_2min", 30),
    Goal("backlog_100k_first_upload_seconds", 3),
    Goal("backlog_100k_rss_mib", 200),
    Goal("metrics_ms_1m_filed", 100),
    Goal("healthz_ms_during_scrapes_1m_filed", 100),
    Goal("status_seconds_1m_filed", 0.5),
    Goal("steady_rss_growth_mib_5k", 10),
    Goal("steady_journal_rows_5k", 1000),
    Goal("cluster_3_hosts_ratio_to_limit", 1.10),
    # Must equal the account's limit (50): above it Symbl says 429, below it time is lost.
    Goal("cluster_peak_jobs_in_flight", 50),
    # A dead host's running jobs are followed by another within its lease (5 s) + 2 s.
    Goal("takeover_seconds_after_kill", 7),
    Goal("cluster_db_transactions_per_file", None),
)


# ---------------------------------------------------------------- which tracking mode


def webhook_port() -> int | None:
    """A port for the webhook endpoint if the daemon has one and its loader takes ``http:``."""
    if not (REPO / "daemon" / "http" / "endpoint.py").exists():
        return None
    from daemon.config import ConfigError, load_config

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as folder:
        inbox = InboxSpec(Path(folder) / "inbox")
        for path in (inbox.path, inbox.path / "done", inbox.path / "failed"):
            path.mkdir(parents=True)
        config = Path(folder) / "config.yaml"
        options = DaemonOptions(http_port=port)
        config.write_text(config_text("http://127.0.0.1:9", Path(folder), [inbox], options))
        try:
            load_config(config, prepare_folders=False)
        except ConfigError:
            return None
    return port


# ---------------------------------------------------------------- the run


class Run:
    """Collects each measurement's details; one failing measurement does not stop the others."""

    def __init__(self) -> None:
        self.details: dict[str, Any] = {}
        self.errors: dict[str, str] = {}

    def measure(self, name: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
        started = time.monotonic()
        print(f"... {name}", file=sys.stderr, flush=True)
        try:
            result = action()
        except Exception as exc:
            traceback.print_exc()
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            return None
        result["took_seconds"] = round(time.monotonic() - started, 1)
        self.details[name] = result
        print(f"    done in {result['took_seconds']} s", file=sys.stderr, flush=True)
        return result


def run_all(sizes: Sizes, only: frozenset[str] = frozenset(MEASUREMENTS)) -> Run:
    run = Run()

    def measure(name: str, action: Callable[[], dict[str, Any]]) -> None:
        if name in only:
            run.measure(name, action)

    if {"ours_3_files", "sdk", "rss"} & only:
        offer_sdk_to_children()  # installed once into the user's cache, beside the venv
    port = webhook_port() if "batch" in only else None
    # Before the SDK's process starts: its imports alone take seconds of CPU on a shared core.
    measure("batch", lambda: batch_ratio(port))
    with ExitStack() as stack:
        sdk = stack.enter_context(SdkComparison()) if {"ours_3_files", "sdk"} & only else None
        if sdk is not None:
            measure("ours_3_files", sdk.measure_ours)
        measure("pickup_inotify", lambda: pickup_latency("inotify"))
        measure("pickup_poll", lambda: pickup_latency("poll", poll_interval=1.0))
        measure("backlog", lambda: backlog(sizes.backlog_files))
        measure("backlog_mp3", lambda: backlog(sizes.backlog_files, audio="mp3"))
        measure("idle", lambda: idle_cpu(sizes.idle_inboxes, sizes.idle_seconds))
        measure("rss", lambda: upload_rss(sizes.rss_bytes))
        measure("throughput", lambda: upload_throughput(sizes.throughput_bytes))
        measure(
            "throughput_proxy",
            lambda: upload_throughput(sizes.throughput_bytes, through_proxy=True),
        )
        measure("downmix", lambda: downmix(sizes.downmix_bytes))
        measure("convert", lambda: convert(sizes.convert_seconds))
        measure("inboxes_1000", lambda: thousand_inboxes(sizes.many_inboxes, sizes.idle_seconds))
        measure("rescan_100k", lambda: rescan_stall(sizes.rescan_files, 10.0))
        measure("tracking", lambda: tracking(sizes.tracking_files, TWO_MINUTE_FILES))
        measure("backlog_100k", lambda: backlog(sizes.backlog_large_files))
        measure("history", lambda: history_latency(sizes.history_rows))
        measure("steady", lambda: steady_state(sizes.steady_files))
        measure("cluster", three_hosts)
        measure("takeover", takeover)
        if sdk is not None:
            measure("sdk", sdk.result)
    return run


def _get(details: dict[str, Any], name: str, key: str) -> float | None:
    value = details.get(name, {}).get(key)
    return None if value is None else float(value)


def headline(run: Run) -> dict[str, float | None]:
    """The keys the issue asks for, from the details."""
    d = run.details
    return {
        "batch_ratio_to_limit": _get(d, "batch", "ratio"),
        "sdk_over_ours_per_file": _get(d, "sdk", "ratio"),
        "rss_mib_2gib_ours": _get(d, "rss", "ours_mib"),
        "rss_mib_2gib_sdk": _get(d, "rss", "sdk_mib"),
        "pickup_p99_ms_inotify": _get(d, "pickup_inotify", "p99_ms"),
        "pickup_p99_ms_poll": _get(d, "pickup_poll", "p99_ms"),
        "backlog_10k_seconds": _get(d, "backlog", "seconds"),
        "backlog_10k_rss_mib": _get(d, "backlog", "rss_mib"),
        "idle_cpu_percent_100_inboxes": _get(d, "idle", "percent"),
        "upload_throughput_ratio_vs_curl": _get(d, "throughput", "ratio"),
        "backlog_10k_mp3_seconds": _get(d, "backlog_mp3", "seconds"),
        "backlog_10k_mp3_rss_mib": _get(d, "backlog_mp3", "rss_mib"),
        "downmix_2gib_rss_mib": _get(d, "downmix", "ours_rss_mib"),
        "downmix_2gib_ratio_vs_sox": _get(d, "downmix", "ratio_vs_sox"),
        "convert_1h_m4a_ratio_vs_ffmpeg": _get(d, "convert", "ratio_vs_ffmpeg"),
        "upload_throughput_ratio_vs_curl_proxy": _get(d, "throughput_proxy", "ratio"),
        "inboxes_1000_watched_or_polled_share": _get(d, "inboxes_1000", "share"),
        "inboxes_1000_ready_seconds": _get(d, "inboxes_1000", "ready_seconds"),
        "inboxes_1000_idle_cpu_percent": _get(d, "inboxes_1000", "idle_cpu_percent"),
        "rescan_100k_healthz_max_ms": _get(d, "rescan_100k", "max_ms"),
        **{
            f"poll_over_webhook_utilisation_{name}": _tracking_ratio(d, name)
            for name in TRACKING_SETS
        },
        "status_requests_per_job_2min": (
            d["tracking"]["two_minute"]["requests_per_job"] if "tracking" in d else None
        ),
        "backlog_100k_first_upload_seconds": _get(d, "backlog_100k", "first_upload_seconds"),
        "backlog_100k_rss_mib": _get(d, "backlog_100k", "rss_mib"),
        "metrics_ms_1m_filed": _get(d, "history", "metrics_ms_p50"),
        "healthz_ms_during_scrapes_1m_filed": _get(d, "history", "healthz_ms_max_during_scrapes"),
        "status_seconds_1m_filed": _get(d, "history", "status_seconds"),
        "steady_rss_growth_mib_5k": _get(d, "steady", "rss_growth_mib"),
        "steady_journal_rows_5k": _get(d, "steady", "journal_rows_max"),
        "cluster_3_hosts_ratio_to_limit": _get(d, "cluster", "ratio"),
        "cluster_peak_jobs_in_flight": _get(d, "cluster", "peak_jobs"),
        "takeover_seconds_after_kill": _get(d, "takeover", "takeover_seconds"),
        "cluster_db_transactions_per_file": _get(d, "cluster", "db_transactions_per_file"),
    }


def _tracking_ratio(details: dict[str, Any], name: str) -> float | None:
    if "tracking" not in details:
        return None
    return float(details["tracking"]["sets"][name]["ratio"])


# ---------------------------------------------------------------- the table


def _notes(run: Run) -> dict[str, str]:
    """A few words beside each value: what it was measured on, and its baseline."""
    d = run.details
    notes: dict[str, str] = {}
    if "batch" in d:
        b = d["batch"]
        notes["batch_ratio_to_limit"] = (
            f"median of {b['runs']} ({', '.join(f'{r:.2f}' for r in b['ratios'])}): "
            f"{b['wall_seconds']:.2f} s / {b['least_possible_seconds']:.1f} s; {b['files']} files, "
            f"settle {b['settle_seconds']} s, {b['mode']}"
        )
    if "sdk" in d:
        s = d["sdk"]
        sdk = (
            "SDK not installed"
            if s["sdk_seconds_per_file"] is None
            else (f"SDK {s['sdk_seconds_per_file']:.1f} s/file")
        )
        notes["sdk_over_ours_per_file"] = f"{sdk}, ours {s['ours_seconds_per_file']:.2f} s/file"
    if "rss" in d:
        r = d["rss"]
        notes["rss_mib_2gib_ours"] = f"whole daemon, {r['file_mib']:.0f} MiB file"
        if r["sdk_to_file"] is not None:
            notes["rss_mib_2gib_sdk"] = f"{r['sdk_to_file']:.2f}x the {r['file_mib']:.0f} MiB file"
    for mode in ("inotify", "poll"):
        if f"pickup_{mode}" in d:
            p = d[f"pickup_{mode}"]
            notes[f"pickup_p99_ms_{mode}"] = f"p50 {p['p50_ms']:.0f} ms, {p['files']} files"
    if "backlog" in d:
        k = d["backlog"]
        notes["backlog_10k_seconds"] = (
            f"{k['files']} files; journaled {k['journaled_seconds']:.2f} s, "
            f"first upload {k['first_upload_seconds']:.2f} s"
        )
        notes["backlog_10k_rss_mib"] = f"VmHWM, {k['files']} files"
    if "idle" in d:
        i = d["idle"]
        notes["idle_cpu_percent_100_inboxes"] = (
            f"{i['cpu_seconds']:.2f} CPU s over {i['window_seconds']:.0f} s, {i['inboxes']} inboxes"
        )
    if "throughput" in d:
        t = d["throughput"]
        notes["upload_throughput_ratio_vs_curl"] = (
            f"ours {t['ours_mib_per_s']:.0f} MiB/s, curl {t['curl_mib_per_s']:.0f} MiB/s, "
            f"{t['file_mib']:.0f} MiB file, curl {t['curl_sent_with']}"
        )
    if "backlog_mp3" in d:
        k = d["backlog_mp3"]
        notes["backlog_10k_mp3_seconds"] = (
            f"{k['files']} lame MP3s (mutagen); journaled {k['journaled_seconds']:.2f} s, "
            f"first upload {k['first_upload_seconds']:.2f} s"
        )
        notes["backlog_10k_mp3_rss_mib"] = f"VmHWM, {k['files']} MP3s"
    if "downmix" in d:
        m = d["downmix"]
        notes["downmix_2gib_rss_mib"] = f"whole daemon, {m['file_mib']:.0f} MiB stereo PCM WAV"
        notes["downmix_2gib_ratio_vs_sox"] = (
            f"ours {m['ours_mib_per_s']:.0f} MiB/s, sox {m['sox_mib_per_s']:.0f} MiB/s, "
            f"ffmpeg {m['ffmpeg_mib_per_s']:.0f} MiB/s ({m['ratio_vs_ffmpeg']:.2f}x)"
        )
    if "convert" in d:
        c = d["convert"]
        notes["convert_1h_m4a_ratio_vs_ffmpeg"] = (
            f"{c['audio_seconds'] / 60:.0f} min stereo AAC: ours {c['ours_seconds']:.2f} s, "
            f"ffmpeg {c['ffmpeg_seconds']:.2f} s; RSS {c['ours_rss_mib']:.0f} MiB"
        )
    if "throughput_proxy" in d:
        t = d["throughput_proxy"]
        notes["upload_throughput_ratio_vs_curl_proxy"] = (
            f"through tinyproxy: ours {t['ours_mib_per_s']:.0f} MiB/s, "
            f"curl {t['curl_mib_per_s']:.0f} MiB/s, {t['requests_through_proxy']} requests proxied"
        )
    if "inboxes_1000" in d:
        m = d["inboxes_1000"]
        notes["inboxes_1000_watched_or_polled_share"] = (
            f"{m['watched_or_polled']} of {m['inboxes']} ({m['inotify']} inotify, "
            f"{m['polled']} polled); {m['limits']}"
        )
        notes["inboxes_1000_ready_seconds"] = "process start to daemon_ready"
        notes["inboxes_1000_idle_cpu_percent"] = (
            f"{m['cpu_seconds']:.2f} CPU s over {m['window_seconds']:.0f} s, {m['threads']} threads"
        )
    if "rescan_100k" in d:
        r = d["rescan_100k"]
        notes["rescan_100k_healthz_max_ms"] = (
            f"{r['requests']} requests over {r['rescans_in_window']} rescans of {r['files']} "
            f"files: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms; empty inbox (baseline): "
            f"max {r['baseline_max_ms']:.0f} ms, p99 {r['baseline_p99_ms']:.1f} ms"
        )
    if "tracking" in d:
        for name, result in d["tracking"]["sets"].items():
            polling, webhook = result["polling"], result["webhook"]
            notes[f"poll_over_webhook_utilisation_{name}"] = (
                f"polling {polling['utilisation']:.3f} ({polling['status_requests_per_job']:.1f}"
                f" requests/job), webhook {webhook['utilisation']:.3f}; 5 slots, "
                f"{polling['measured_jobs']} jobs over {polling['waiting_seconds']:.0f} s"
            )
        two = d["tracking"]["two_minute"]
        notes["status_requests_per_job_2min"] = (
            f"{two['files']} jobs from a cold start: first round "
            f"{', '.join(map(str, two['requests_first_round']))}; then "
            f"{', '.join(map(str, two['requests_later']))}"
        )
    if "backlog_100k" in d:
        k = d["backlog_100k"]
        notes["backlog_100k_first_upload_seconds"] = (
            f"{k['files']:,} files; all journaled at {k['journaled_seconds']:.2f} s"
        )
        notes["backlog_100k_rss_mib"] = f"VmHWM, {k['files']:,} files"
    notes.update(history_notes(d))
    if "cluster" in d:
        k = d["cluster"]
        notes["cluster_3_hosts_ratio_to_limit"] = (
            f"{k['wall_seconds']:.2f} s / {k['least_possible_seconds']:.1f} s; {k['files']} files, "
            f"{k['hosts']} hosts, filed per host {k['filed_per_host']}"
        )
        notes["cluster_peak_jobs_in_flight"] = (
            f"limit {k['job_limit']}; {k['rate_limited']} answers 429, "
            f"{k['submissions']} submissions"
        )
        notes["cluster_db_transactions_per_file"] = "journal and coordination, pg_stat_database"
    if "takeover" in d:
        t = d["takeover"]
        notes["takeover_seconds_after_kill"] = (
            f"all {t['jobs']} running jobs followed by the other host; lease "
            f"{t['lease_seconds']:.0f} s, heartbeat {t['lease_seconds'] / 3:.1f} s; "
            f"{t['sent_again']} sent again"
        )
    return notes


def table(values: dict[str, float | None], run: Run) -> str:
    notes = _notes(run)
    rows = [("metric", "value", "goal", "met?", "measured on")]
    for goal in GOALS:
        value = values[goal.key]
        met = goal.met(value)
        shown = "error" if value is None else f"{value:.3g}" if value < 100 else f"{value:.0f}"
        verdict = "-" if met is None else "yes" if met else "NO"
        rows.append((goal.key, shown, goal.text(), verdict, notes.get(goal.key, "")))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True))
        + "  "
        + row[4]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, help="write the results as JSON to this file")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, about 3 minutes")
    parser.add_argument(
        "--only",
        type=lambda text: frozenset(text.split(",")),
        default=frozenset(MEASUREMENTS),
        help=f"comma-separated measurements to run, of: {', '.join(MEASUREMENTS)}",
    )
    args = parser.parse_args(argv)
    unknown = sorted(args.only - set(MEASUREMENTS))
    if unknown:
        parser.error(f"unknown measurements: {', '.join(unknown)}")
    sizes = QUICK if args.quick else FULL
    started = time.monotonic()
    run = run_all(sizes, args.only)
    values = headline(run)
    if args.quick:
        print(
            f"--quick: {sizes.rss_bytes // MIB} MiB file for RSS, {sizes.throughput_bytes // MIB}"
            f" MiB for throughput, {sizes.backlog_files} backlog files, "
            f"{sizes.idle_seconds:.0f} s idle window, {sizes.tracking_files} files per job set"
            f"{sizes.idle_seconds:.0f} s idle window, {sizes.backlog_large_files:,} files for the "
            f"large backlog, {sizes.history_rows:,} filed rows, {sizes.steady_files:,} files steady"
        )
    print(table(values, run))
    for name, error in run.errors.items():
        print(f"error in {name}: {error}")
    results = {
        **values,
        "quick": args.quick,
        "goals_met": {goal.key: goal.met(values[goal.key]) for goal in GOALS},
        "details": run.details,
        "errors": run.errors,
        "total_seconds": round(time.monotonic() - started, 1),
    }
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 1 if run.errors else 0


if __name__ == "__main__":
    sys.exit(main())
