"""Side by side with what users would use instead: the official SDK and curl.

Each comparison runs both sides against one emulator process in the same run, so the ratios
compare like with like. Large files live in a temporary folder that is deleted afterwards.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from client_rss import REPO, SDK_MISSING_EXIT, emulator, peak_rss_mib
from harness import MIB, DaemonOptions, InboxSpec, running_daemon, token, write_wavs
from scenarios import JOB_SECONDS, SETTLE_SECONDS, filed_wall_seconds

from daemon.files.samples import write_large_wav

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the proxy harness
from proxy_harness import Tinyproxy

CHILDREN = Path(__file__).with_name("children.py")
SDK_FILES = 3
SDK_POLL_SECONDS = 30.0  # the SDK sleeps this long before each look at a job
THROUGHPUT_ROUNDS = 2


class SdkComparison:
    """The SDK's ``process_file(wait=True)`` loop starts at once, in the background.

    It spends nearly all of its time asleep between its 30 s polls, so the run measures other
    things meanwhile; ``measure_ours`` runs our daemon on the same files and the same emulator,
    and ``result`` collects both.
    """

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._child: subprocess.Popen[bytes] | None = None
        self._workdir = Path()
        self._base_url = ""
        self._ours: dict[str, Any] | None = None

    def __enter__(self) -> SdkComparison:
        try:
            folder = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-sdk-"))
            self._workdir = Path(folder)
            self._base_url = self._stack.enter_context(emulator(JOB_SECONDS))
            write_wavs(self._workdir / "sdk", SDK_FILES)
            command = [sys.executable, str(CHILDREN), "sdk-loop", self._base_url]
            with open(self._workdir / "sdk.stderr", "wb") as stderr:  # the SDK's own chatter
                self._child = subprocess.Popen(
                    [*command, str(self._workdir / "sdk")],
                    cwd=REPO,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                )
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._child is not None and self._child.poll() is None:
            self._child.kill()
            self._child.wait()
        self._stack.close()

    def measure_ours(self) -> dict[str, Any]:
        """Our daemon on copies of the same 3 files, moved into one inbox at once."""
        staging = self._workdir / "ours" / "staging"
        staging.mkdir(parents=True)
        staged = [
            Path(shutil.copy2(source, staging / source.name))
            for source in sorted((self._workdir / "sdk").glob("*.wav"))
        ]
        self._ours = filed_wall_seconds(
            self._base_url, self._workdir / "ours", staged, DaemonOptions(), 60.0
        )
        return dict(self._ours)

    def result(self) -> dict[str, Any]:
        assert self._child is not None and self._ours is not None
        bound = SDK_FILES * (SDK_POLL_SECONDS + 30.0)
        output, _ = self._child.communicate(timeout=bound)
        ours_per_file = self._ours["wall_seconds"] / SDK_FILES
        result: dict[str, Any] = {
            "files": SDK_FILES,
            "job_seconds": JOB_SECONDS,
            "ours_seconds_per_file": ours_per_file,
            "settle_seconds": SETTLE_SECONDS,
        }
        if self._child.returncode == SDK_MISSING_EXIT:
            return {**result, "sdk_seconds_per_file": None, "ratio": None}
        if self._child.returncode != 0:
            tail = (self._workdir / "sdk.stderr").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the SDK loop failed with code {self._child.returncode}\n{tail}")
        sdk = json.loads(output.decode().strip().splitlines()[-1])
        sdk_per_file = sdk["seconds"] / sdk["files"]
        return {
            **result,
            "sdk_seconds_per_file": sdk_per_file,
            "sdk_statuses": sdk["statuses"],
            "ratio": sdk_per_file / ours_per_file,
        }


def upload_rss(size: int) -> dict[str, Any]:
    """Peak RSS with a WAV of ``size`` bytes: the official SDK alone, then our whole daemon."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-rss-") as folder,
        emulator(JOB_SECONDS) as base_url,
    ):
        workdir = Path(folder)
        staged = workdir / "staging" / "large.wav"
        staged.parent.mkdir()
        write_large_wav(staged, size)
        sdk = peak_rss_mib(["sdk", base_url, str(staged)])
        inbox = InboxSpec(workdir / "inbox", settle_seconds=SETTLE_SECONDS)
        with running_daemon(workdir / "daemon", base_url, [inbox]) as daemon:
            idle_hwm = daemon.vm_hwm_mib()
            staged.rename(inbox.path / staged.name)
            moved_at = time.time()
            filed = daemon.wait_for("file_filed", 1, 60.0 + size / (20 * MIB))
        if filed[0].fields.get("outcome") != "done":
            raise RuntimeError(f"the large file was not done: {filed[0].fields}")
    return {
        "file_mib": size / MIB,
        "ours_mib": daemon.peak_rss_mib,
        "ours_measured_as": "the whole daemon (VmHWM before its stop), uploading from an inbox",
        "ours_idle_mib": idle_hwm,
        "ours_filed_seconds": filed[0].timestamp - moved_at,
        "sdk_mib": sdk,
        "sdk_to_file": None if sdk is None else sdk / (size / MIB),
    }


def upload_throughput(size: int, *, through_proxy: bool = False) -> dict[str, Any]:
    """Bytes per second for one upload of ``size`` bytes: SymblClient.submit_file against curl.

    ``through_proxy``: both send through the same tinyproxy on loopback, ours told by
    ``HTTP_PROXY`` as a user would, curl by ``-x``; the emulator speaks plain http, so the
    proxy forwards each request (it reads and relays the whole body).
    """
    with (
        tempfile.TemporaryDirectory(prefix="bench-throughput-") as folder,
        emulator(JOB_SECONDS) as base_url,
        ExitStack() as stack,
    ):
        proxy = stack.enter_context(Tinyproxy(Path(folder) / "proxy")) if through_proxy else None
        audio = Path(folder) / "large.wav"
        write_large_wav(audio, size)
        bearer = token(base_url)
        curl_runs, ours_runs = [], []
        curl_mode = ""
        for _ in range(THROUGHPUT_ROUNDS):  # alternated, best of each: less noise
            seconds, curl_mode = _curl_seconds(base_url, bearer, audio, proxy)
            curl_runs.append(seconds)
            ours_runs.append(_ours_seconds(base_url, audio, proxy))
        proxied = len(proxy.requests()) if proxy is not None else 0
    curl_rate, ours_rate = size / min(curl_runs), size / min(ours_runs)
    return {
        "proxy": "tinyproxy (forwarding)" if through_proxy else None,
        "requests_through_proxy": proxied,
        "file_mib": size / MIB,
        "curl_mib_per_s": curl_rate / MIB,
        "ours_mib_per_s": ours_rate / MIB,
        "curl_seconds": curl_runs,
        "curl_sent_with": curl_mode,
        "ours_seconds": ours_runs,
        "ratio": ours_rate / curl_rate,
    }


def _curl_seconds(
    base_url: str, bearer: str, audio: Path, proxy: Tinyproxy | None = None
) -> tuple[float, str]:
    """curl's own ``time_total`` (the transfer, not loading the file) and how it sent the body.

    ``--data-binary @file`` as asked; curl 7.x refuses to load a file of 1 GiB or more into
    memory ("out of memory", exit 2), and then the same upload goes as ``-T file -X POST``,
    which streams it from disk.
    """
    command = ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_total} %{http_code}"]
    command += ["-H", f"Authorization: Bearer {bearer}", "-H", "Content-Type: audio/wav"]
    if proxy is not None:
        command += ["-x", proxy.url]
    url = f"{base_url}/v1/process/audio?name=curl"
    run = functools.partial(subprocess.run, capture_output=True, text=True, timeout=600)
    label = "--data-binary @file"
    done = run([*command, "--data-binary", f"@{audio}", url])
    if done.returncode != 0 and "out of memory" in done.stderr:
        label = "-T file -X POST"
        done = run([*command, "-T", str(audio), "-X", "POST", url])
    if done.returncode != 0:
        raise RuntimeError(f"curl failed ({done.returncode}): {done.stderr.strip()}")
    seconds, status = done.stdout.split()
    if status != "201":
        raise RuntimeError(f"curl's upload was answered {status}")
    return float(seconds), label


def _ours_seconds(base_url: str, audio: Path, proxy: Tinyproxy | None = None) -> float:
    command = [sys.executable, str(CHILDREN), "ours-upload", base_url, str(audio)]
    env = {name: value for name, value in os.environ.items() if not name.lower().endswith("_proxy")}
    if proxy is not None:
        env["HTTP_PROXY"] = proxy.url
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"our upload failed: {done.stderr[-2000:]}")
    seconds: float = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    return seconds
