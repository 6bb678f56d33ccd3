"""Keeping the account's job slots full: polling against webhooks, measured from Symbl's side.

Each job set runs twice at once, in polling mode and in webhook mode, each with its own emulator
(5 job slots, job time half the audio length, spread +-5 %, the same seed for both modes) and its
own daemon (``max_concurrent_jobs: 5``, the default ``tracking:`` settings). A warm-up round of 5
files first teaches the daemon the account's speed, as the first jobs of any deployment do (the
journal keeps it); then the measured files are moved into the inbox at once. Utilisation is the
emulator's own account: the share of the 5 slots that held a running job, from the first measured
job's creation to the last one's, the span in which files waited for a slot. Every set and mode
runs concurrently, so the whole row takes as long as its longest set.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from client_rss import emulator, free_port
from harness import DaemonOptions, InboxSpec, running_daemon

from daemon.files.samples import make_wav

SLOTS = 5
# Job seconds per second of audio: a 15 s job is a 30 s recording.
JOB_PER_AUDIO = 0.5
SPREAD = 0.05
SETTLE_SECONDS = 0.5
MIX_SEED = 18


@dataclass(frozen=True)
class JobSet:
    name: str
    warmup: list[float]  # job seconds of the warm-up files
    measured: list[float]  # job seconds of the measured files


def job_sets(measured_files: int) -> list[JobSet]:
    """15 s, 45 s and 75 s jobs, and a seeded mix of 15 to 90 s."""
    sets = [
        JobSet(f"{seconds}s", [float(seconds)] * SLOTS, [float(seconds)] * measured_files)
        for seconds in (15, 45, 75)
    ]
    draw = random.Random(MIX_SEED)
    mix = [round(draw.uniform(15, 90), 1) for _ in range(SLOTS + measured_files)]
    sets.append(JobSet("mix_15_90s", mix[:SLOTS], mix[SLOTS:]))
    return sets


def _emulator_jobs(base_url: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base_url}/_emulator/jobs", timeout=10)
    answer.raise_for_status()
    jobs: list[dict[str, Any]] = answer.json()
    return jobs


def _status_requests(base_url: str) -> dict[str, int]:
    """GET /v1/job/{id} requests the emulator received, by job id."""
    answer = httpx.get(f"{base_url}/_emulator/requests", timeout=30)
    answer.raise_for_status()
    counts: dict[str, int] = {}
    for request in answer.json():
        path = str(request["path"])
        if request["method"] == "GET" and path.startswith("/v1/job/"):
            job_id = path.rsplit("/", 1)[1]
            counts[job_id] = counts.get(job_id, 0) + 1
    return counts


def busy_share(jobs: list[dict[str, Any]], start: float, end: float, slots: int) -> float:
    """Share of ``slots`` holding a running job between ``start`` and ``end`` (slot-seconds)."""
    changes: list[tuple[float, int]] = []
    for job in jobs:
        began, ended = job["created_at"], job["finished_at"] or end
        if ended > start and began < end:
            changes += [(max(began, start), 1), (min(ended, end), -1)]
    changes.sort()
    busy, running, previous = 0.0, 0, start
    for moment, step in changes:
        busy += min(running, slots) * (moment - previous)
        running, previous = running + step, moment
    return busy / (slots * (end - start))


def _write(folder: Path, prefix: str, job_seconds: list[float]) -> list[Path]:
    """One WAV per job, as long as the job takes at ``JOB_PER_AUDIO``; each one different."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, seconds in enumerate(job_seconds):
        path = folder / f"{prefix}{index:03d}.wav"
        path.write_bytes(make_wav(seconds / JOB_PER_AUDIO, tone_hz=200 + 7 * index))
        paths.append(path)
    return paths


def run_set(job_set: JobSet, webhooks: bool, seed: int) -> dict[str, Any]:
    """One job set in one mode: warm-up, then the measured files; the emulator's figures."""
    extra = (
        "--job-seconds-per-audio-second", str(JOB_PER_AUDIO),
        "--job-seconds-spread", str(SPREAD), "--seed", str(seed),
    )  # fmt: skip
    options = DaemonOptions(max_concurrent_jobs=SLOTS, http_port=free_port() if webhooks else None)
    slowest = max(job_set.warmup + job_set.measured)
    with (
        tempfile.TemporaryDirectory(prefix=f"bench-tracking-{job_set.name}-") as folder,
        emulator(0.0, SLOTS, extra) as base_url,
    ):
        workdir = Path(folder)
        warmup = _write(workdir / "staging", "warm", job_set.warmup)
        measured = _write(workdir / "staging", "file", job_set.measured)
        inbox = InboxSpec(workdir / "inbox", settle_seconds=SETTLE_SECONDS)
        with running_daemon(workdir / "daemon", base_url, [inbox], options) as daemon:
            for path in warmup:
                path.rename(inbox.path / path.name)
            daemon.wait_for("file_filed", len(warmup), slowest * 2 + 60)
            moved_at = time.time()
            for path in measured:
                path.rename(inbox.path / path.name)
            rounds = -(-len(measured) // SLOTS)
            total = len(warmup) + len(measured)
            daemon.wait_for("file_filed", total, rounds * slowest * 1.5 + 60)
            outcomes = {str(event.fields.get("outcome")) for event in daemon.events("file_filed")}
        jobs = _emulator_jobs(base_url)
        requests = _status_requests(base_url)
    if outcomes != {"done"}:
        raise RuntimeError(f"{job_set.name}: some files were not done: {outcomes}")
    later = sorted((job for job in jobs if job["created_at"] >= moved_at), key=_created)
    start, end = later[0]["created_at"], later[-1]["created_at"]
    per_job = [requests.get(job["id"], 0) for job in later]
    return {
        "mode": "webhook" if webhooks else "polling",
        "utilisation": busy_share(jobs, start, end, SLOTS),
        "waiting_seconds": end - start,
        "measured_jobs": len(later),
        "status_requests_per_job": sum(per_job) / len(per_job),
        "status_requests_max": max(per_job),
    }


def _created(job: dict[str, Any]) -> float:
    return float(job["created_at"])


def two_minute_requests(files: int, seed: int) -> dict[str, Any]:
    """Status requests per job for 2-minute jobs in polling mode, from a cold start."""
    options = DaemonOptions(max_concurrent_jobs=SLOTS)
    extra = (
        "--job-seconds-per-audio-second", str(JOB_PER_AUDIO),
        "--job-seconds-spread", str(SPREAD), "--seed", str(seed),
    )  # fmt: skip
    with (
        tempfile.TemporaryDirectory(prefix="bench-tracking-2min-") as folder,
        emulator(0.0, SLOTS, extra) as base_url,
    ):
        workdir = Path(folder)
        staged = _write(workdir / "staging", "file", [120.0] * files)
        inbox = InboxSpec(workdir / "inbox", settle_seconds=SETTLE_SECONDS)
        with running_daemon(workdir / "daemon", base_url, [inbox], options) as daemon:
            for path in staged:
                path.rename(inbox.path / path.name)
            daemon.wait_for("file_filed", files, -(-files // SLOTS) * 180 + 60)
        jobs = sorted(_emulator_jobs(base_url), key=_created)
        requests = _status_requests(base_url)
    per_job = [requests.get(job["id"], 0) for job in jobs]
    return {
        "files": files,
        "requests_per_job": sum(per_job) / len(per_job),
        "requests_first_round": per_job[:SLOTS],
        "requests_later": per_job[SLOTS:],
    }


def tracking(measured_files: int, two_minute_files: int) -> dict[str, Any]:
    """Every job set in both modes, and the 2-minute requests, all at once."""
    sets = job_sets(measured_files)
    tasks: dict[str, Callable[[], dict[str, Any]]] = {}
    for index, job_set in enumerate(sets):
        for webhooks in (False, True):
            mode = "webhook" if webhooks else "polling"
            tasks[f"{job_set.name}/{mode}"] = (
                lambda job_set=job_set, webhooks=webhooks, seed=index: run_set(
                    job_set, webhooks, seed
                )
            )
    tasks["2min"] = lambda: two_minute_requests(two_minute_files, seed=len(sets))
    with ThreadPoolExecutor(max_workers=len(tasks)) as pool:
        futures = {name: pool.submit(task) for name, task in tasks.items()}
        results = {name: future.result() for name, future in futures.items()}
    details: dict[str, Any] = {
        "slots": SLOTS,
        "job_seconds_per_audio_second": JOB_PER_AUDIO,
        "spread": SPREAD,
        "warmup_files": SLOTS,
        "measured_files": measured_files,
        "sets": {},
        "two_minute": results["2min"],
    }
    for job_set in sets:
        polling = results[f"{job_set.name}/polling"]
        webhook = results[f"{job_set.name}/webhook"]
        details["sets"][job_set.name] = {
            "ratio": polling["utilisation"] / webhook["utilisation"],
            "polling": polling,
            "webhook": webhook,
        }
    return details
