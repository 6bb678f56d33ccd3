"""Where silence would mislead, the daemon says so once and plainly (and exits where it must)."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
from e2e_harness import DaemonHarness, wait_until
from receivers import free_port

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav
from daemon.journal import JOURNAL_NAME
from daemon.reasons import FAILURE_REASONS


def run_once(harness: DaemonHarness) -> subprocess.CompletedProcess[str]:
    """``run`` to its end (it is expected to stop at start), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "daemon", "--config", str(harness.config_path), "run",
         "--log-format", "json"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def events(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


class TestEndpointAddress:
    """An http.listen that cannot be bound stops the start, and never a reload."""

    def test_taken_port_stops_run(self, harness_factory: Callable[..., DaemonHarness]) -> None:
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            port = squatter.getsockname()[1]
            harness = harness_factory(extra={"http": {"listen": f"127.0.0.1:{port}"}})
            done = run_once(harness)
        assert done.returncode == 1
        [error] = [e for e in events(done.stdout) if e["level"] == "error"]
        assert error["event"] == "http_unavailable"
        assert f"cannot listen on 127.0.0.1:{port}" in str(error["message"])
        assert "change http.listen" in str(error["message"])
        assert "Traceback" not in done.stdout + done.stderr
        assert not any(e["event"] == "daemon_ready" for e in events(done.stdout))

    def test_reload_to_a_taken_port_keeps_the_endpoint(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        listen = f"127.0.0.1:{free_port()}"
        harness = harness_factory(extra={"http": {"listen": listen}})
        harness.start()
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", 0))
            squatter.listen()
            taken = squatter.getsockname()[1]
            harness.write_config(extra={"http": {"listen": f"127.0.0.1:{taken}"}})
            assert harness.process is not None
            harness.process.send_signal(signal.SIGHUP)
            wait_until(lambda: harness.event_count("http_kept") == 1, 20, "http_kept")
        assert httpx.get(f"http://{listen}/healthz", timeout=5).status_code == 200
        (harness.inbox / "a.wav").write_bytes(make_wav(0.3))
        harness.wait_filed(1)
        assert not harness.exited()


class TestJournal:
    """A damaged journal stops run with one plain message and what to do, not a traceback."""

    def test_corrupted_journal(self, harness_factory: Callable[..., DaemonHarness]) -> None:
        harness = harness_factory()
        harness.start()
        harness.stop()
        journal = harness.state_dir / JOURNAL_NAME
        journal.write_bytes(b"this is no longer a database" * 200)
        done = run_once(harness)
        assert done.returncode == 1
        assert "Traceback" not in done.stdout + done.stderr
        [error] = [e for e in events(done.stdout) if e["level"] == "error"]
        assert error["event"] == "journal_unreadable"
        assert f"mv {journal} {journal}.damaged" in str(error["message"])


class TestUnreachableAtStart:
    """Symbl unreachable at start is one warning, then quiet retries until it answers."""

    def test_one_warning_then_work(
        self, emulator: EmulatorServer, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        port = int(emulator.base_url.rsplit(":", 1)[1])
        harness = harness_factory(emulator=emulator)
        emulator.stop()
        harness.start()
        wait_until(lambda: harness.event_count("symbl_unreachable") >= 1, 30, "the warning")
        emulator.start(port)
        wait_until(lambda: harness.event_count("symbl_reachable") == 1, 90, "Symbl answering")
        (harness.inbox / "a.wav").write_bytes(make_wav(0.3))
        harness.wait_filed(1)
        warnings = [
            e for e in harness.events() if e.get("event") == "symbl_unreachable"
            and e.get("level") == "warning"
        ]  # fmt: skip
        assert len(warnings) == 1
        assert "Traceback" not in harness.log_text()


class TestRetryReason:
    """``retry --reason`` with a reason that does not exist says which ones do (exit 2)."""

    def test_unknown_reason(self, harness: DaemonHarness, tmp_path: Path) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(harness.config_path), "retry",
             "--reason", "not_audoi"],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 2
        assert "unknown reason 'not_audoi'" in done.stderr
        assert all(reason in done.stderr for reason in FAILURE_REASONS)
