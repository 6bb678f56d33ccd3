"""Crashes, faults, lost responses, 429s and expiring tokens: nothing lost, nothing twice."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from e2e_harness import DaemonHarness, sha256_of, wait_until

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav


def drop_files(harness: DaemonHarness, count: int, prefix: str) -> dict[str, str]:
    expected = {}
    for index in range(count):
        data = make_wav(0.05 + index / 4000)
        name = f"{prefix}-{index:03}.wav"
        (harness.inbox / name).write_bytes(data)
        expected[name] = sha256_of(data)
    return expected


class TestCrashes:
    """SIGKILL at random points of a run never loses a file nor files one twice."""

    def test_repeated_sigkill_loses_nothing_and_reuploads_at_most_once_per_kill(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
    ) -> None:
        server = emulator_factory(job_seconds=0.5, lost_response_rate=0.05, seed=7)
        harness = harness_factory(
            emulator=server, symbl_options={"max_concurrent_jobs": 10, "max_concurrent_uploads": 3}
        )
        expected = drop_files(harness, 100, "crash")
        chance = random.Random(20261121)
        kills = 0
        for _ in range(4):
            harness.start()
            filed_before = len(harness.results())
            time.sleep(chance.uniform(0.3, 1.5))  # a random point of the run, by design
            harness.kill()
            kills += 1
            assert len(harness.results()) >= filed_before
        harness.start()
        harness.wait_filed(100, timeout=120)
        assert harness.stop() == 0

        results = harness.results()
        assert set(results) == set(expected), "every file filed under its own name, once"
        assert harness.errors() == {}
        assert list(harness.inbox.glob("*.wav")) == []
        for name, result in results.items():
            assert result["sha256"] == expected[name]
        uploads = harness.submissions_by_sha()
        assert set(uploads) == set(expected.values())
        lost = sum(1 for record in server.state.submissions if record.lost_response)
        reuploads = sum(count - 1 for count in uploads.values())
        assert reuploads <= kills + lost


class TestTransientTrouble:
    """Faults, lost responses, 429s and short-lived tokens delay files but never fail them."""

    def test_a_storm_of_transient_faults_sends_nothing_to_failed(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
    ) -> None:
        server = emulator_factory(
            job_seconds=0.3,
            fault_rate=0.1,
            lost_response_rate=0.05,
            max_jobs=3,
            token_ttl=2.0,
            seed=11,
        )
        harness = harness_factory(
            emulator=server, symbl_options={"max_concurrent_jobs": 50, "max_concurrent_uploads": 8}
        )
        harness.start()
        expected = drop_files(harness, 40, "storm")
        harness.wait_filed(40, timeout=120)
        assert harness.errors() == {}
        assert {name: result["sha256"] for name, result in harness.results().items()} == expected
        statuses = [request.status for request in server.state.requests]
        assert 429 in statuses, "the low job limit was reached"
        assert any(status is not None and status >= 500 for status in statuses)
        assert any(request.fault for request in server.state.requests)
        assert server.state.submissions and any(r.lost_response for r in server.state.submissions)
        assert harness.event_count("symbl_token_refreshed") >= 2

    def test_rejected_credentials_pause_submissions_and_fail_nothing(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
    ) -> None:
        server = emulator_factory(app_id="test-app", app_secret="a-different-secret")
        harness = harness_factory(emulator=server)
        harness.start()
        (harness.inbox / "waits.wav").write_bytes(make_wav(0.3))
        wait_until(lambda: harness.event_count("credentials_rejected") == 1, 20, "the report")
        assert harness.errors() == {}
        assert (harness.inbox / "waits.wav").exists()
        assert "test-secret-value-42" not in harness.log_text()
        assert "a-different-secret" not in harness.log_text()
