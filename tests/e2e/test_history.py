"""History: counts in /metrics and status after filing, and retention pruning the journal.

The daemon runs as a process with a retention of a second, so that rows are pruned within the
test; what users see (counts, duplicate skips, parts appended to their conversation) must not
change when the rows behind them are gone.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
from e2e_harness import DaemonHarness, sha256_of, wait_until

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav

ONE_SECOND_IN_DAYS = 1 / 86400
PATTERN = r"^(?P<conversation>rec-\d+)-part(?P<part>\d+)\.wav$"
NOT_AUDIO = b"meeting notes, not audio\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def history_harness(
    factory: Callable[..., DaemonHarness], **inbox_options: Any
) -> tuple[DaemonHarness, str]:
    """A daemon that forgets filed rows after a second, with its metrics endpoint."""
    port = free_port()
    harness = factory(
        inbox_options=inbox_options,
        profile={"params": {"languageCode": "en-US"}, "continuation_pattern": PATTERN},
        extra={
            "journal": {"keep_filed_days": ONE_SECOND_IN_DAYS},
            "http": {"listen": f"127.0.0.1:{port}"},
        },
    )
    return harness, f"http://127.0.0.1:{port}"


def metric_counts(url: str, inbox: str) -> dict[str, int]:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    pattern = rf'^symbl_inbox_files\{{inbox="{re.escape(inbox)}",state="([a-z_]+)"\}} ([0-9.e+]+)$'
    return {state: int(float(value)) for state, value in re.findall(pattern, text, re.MULTILINE)}


def status_counts(harness: DaemonHarness) -> dict[str, int]:
    command = [sys.executable, "-m", "daemon", "--config", str(harness.config_path), "status"]
    done = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True)
    (inbox,) = json.loads(done.stdout)["inboxes"]
    counts: dict[str, int] = inbox["counts"]
    return counts


def pruned_rows(harness: DaemonHarness) -> int:
    return sum(int(e["rows"]) for e in harness.events() if e.get("event") == "journal_pruned")


def filed_counts(counts: dict[str, int]) -> tuple[int, int]:
    return counts.get("filed_done", 0), counts.get("filed_failed", 0)


class TestCountsAndRetention:
    def test_counts_stay_when_rows_are_pruned(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        harness, url = history_harness(harness_factory)
        harness.start()
        inbox = str(harness.inbox)
        for index in range(3):
            (harness.inbox / f"call{index}.wav").write_bytes(make_wav(0.2 + index / 10))
        (harness.inbox / "notes.wav").write_bytes(NOT_AUDIO)
        harness.wait_filed(4)
        wait_until(lambda: pruned_rows(harness) == 4, 30, "all four rows pruned")

        assert filed_counts(metric_counts(url, inbox)) == (3, 1)
        assert filed_counts(status_counts(harness)) == (3, 1)
        (harness.inbox / "late.wav").write_bytes(make_wav(0.6))
        harness.wait_filed(5)
        wait_until(lambda: filed_counts(metric_counts(url, inbox)) == (4, 1), 10, "4 done")
        assert filed_counts(status_counts(harness)) == (4, 1)
        harness.stop()
        # Counted, not read from rows: a restart finds the same counts in the journal.
        assert filed_counts(status_counts(harness)) == (4, 1)

    def test_duplicates_and_parts_still_work_after_pruning(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        harness, url = history_harness(harness_factory, on_duplicate="skip")
        harness.start()
        original = make_wav(0.4)
        (harness.inbox / "first.wav").write_bytes(original)
        (harness.inbox / "rec-7-part1.wav").write_bytes(make_wav(0.3))
        (harness.inbox / "other.wav").write_bytes(make_wav(0.5))
        (harness.inbox / "notes.wav").write_bytes(NOT_AUDIO)
        harness.wait_filed(4)
        # The failure is pruned; the first file of each content and the conversation's last
        # part stay, since a skip-duplicates inbox and the next part need them.
        wait_until(lambda: pruned_rows(harness) >= 1, 30, "the failure pruned")
        harness.stop()
        harness.start()  # and a restart does not change what was kept

        (harness.inbox / "again.wav").write_bytes(original)
        (harness.inbox / "rec-7-part2.wav").write_bytes(make_wav(0.35))
        harness.wait_filed(6)

        results = harness.results()
        assert results["again.wav"]["status"] == "skipped_duplicate"
        assert (
            results["again.wav"]["duplicate_of"]["conversationId"]
            == (results["first.wav"]["conversationId"])
        )
        assert harness.submissions_by_sha()[sha256_of(original)] == 1
        part1, part2 = results["rec-7-part1.wav"], results["rec-7-part2.wav"]
        assert part2["conversation"] == {
            "key": "rec-7",
            "part": 2,
            "conversationId": part1["conversationId"],
        }
        inbox = str(harness.inbox)
        wait_until(lambda: filed_counts(metric_counts(url, inbox)) == (5, 1), 10, "5 done")


class TestRestartInABacklog:
    def test_files_waiting_at_a_restart_go_on_and_one_changed_meanwhile_goes_as_it_is(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
    ) -> None:
        server = emulator_factory(job_seconds=1.5, max_jobs=1)
        harness = harness_factory(emulator=server, symbl_options={"max_concurrent_jobs": 1})
        for index in range(5):
            (harness.inbox / f"call{index}.wav").write_bytes(make_wav(0.2 + index / 10))
        harness.start()
        wait_until(lambda: len(server.state.submissions) >= 1, 20, "the first upload")
        assert harness.stop() == 0
        changed = make_wav(0.9, tone_hz=660)
        (harness.inbox / "call4.wav").write_bytes(changed)  # queued, not sent: changed now
        harness.start()
        harness.wait_filed(5, timeout=60)

        results = harness.results()
        assert set(results) == {f"call{index}.wav" for index in range(5)}
        assert results["call4.wav"]["sha256"] == sha256_of(changed)
        assert sha256_of(changed) in harness.submissions_by_sha()
        assert harness.errors() == {}
