"""A webhook may reach any host of a cluster (behind one public address, say): the host that
receives it wakes the host that follows the job, which files the result long before its next
poll would have."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import DaemonHarness
from pg_harness import Database
from sox_audio import sox_wav

from daemon.emulator import EmulatorServer

SECRET = "cluster-webhook-secret-5d1e"
# Without a wake-up the owner would ask Symbl only after this long.
SLOW_POLL = {"poll_initial_seconds": 60, "poll_max_seconds": 60, "poll_backoff_factor": 1}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def hosts(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorServer], pg_database: Database
) -> Iterator[dict[str, DaemonHarness]]:
    emulator = emulator_factory(job_seconds=0.3)
    ports = {name: free_port() for name in ("a", "b")}
    public = f"http://127.0.0.1:{ports['b']}"  # every webhook reaches host b
    made: dict[str, DaemonHarness] = {}
    for name, port in ports.items():
        root = tmp_path / name
        inbox: dict[str, Any] = {
            "id": f"own-{name}",
            "path": str(root / "inbox"),
            "done": str(root / "done"),
            "failed": str(root / "failed"),
            "profile": "default",
            "settle_seconds": 0.2,
        }
        made[name] = DaemonHarness(
            root,
            emulator,
            extra={
                "journal": {"url": pg_database.url},
                "cluster": {"host_id": f"host-{name}", "lease_seconds": 6, "heartbeat_seconds": 2},
                "http": {
                    "listen": f"127.0.0.1:{port}",
                    "public_url": public,
                    "webhook_secret": SECRET,
                },
                "tracking": SLOW_POLL,
                "inboxes": [inbox],
            },
        )
    yield made
    for harness in made.values():
        harness.close()


class TestWebhooksReachAnyHost:
    """The job's owner hears of its end through the host the webhook reached."""

    def test_a_webhook_at_another_host_wakes_the_owner(
        self, hosts: dict[str, DaemonHarness]
    ) -> None:
        owner, receiver = hosts["a"], hosts["b"]
        owner.start()
        receiver.start()
        dropped = time.monotonic()
        sox_wav(owner.inbox / "call.wav", seconds=0.5)
        owner.wait_filed(1, timeout=30)
        # Well before the owner's first poll (60 s): the wake-up came from host b.
        assert time.monotonic() - dropped < 30
        assert owner.results()["call.wav"]["status"] == "completed"
        unknown_here = [
            e for e in receiver.events()
            if e.get("event") == "webhook_received" and e.get("known") is False
        ]  # fmt: skip
        assert unknown_here, receiver.log_text()[-2000:]
