"""Three real daemons on one shared inbox, one PostgreSQL journal and one Symbl account whose
job limit equals ``max_concurrent_jobs``: one is killed -9 mid-run, another is cut off from the
database for longer than its lease. Every file is filed exactly once, the account never says
429, the only files sent twice are ones a lost host was uploading (counted and shown), and the
cut-off host comes back and works again.

Running as root, each host is a network namespace of its own on a bridge the test makes, and
reaches PostgreSQL and the emulator over it; otherwise the hosts are plain processes. Either
way each host reaches PostgreSQL through a TCP forwarder of its own, and the cut-off host's
forwarder is paused (nothing passes, connections hang) for a while."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import DaemonHarness, wait_until
from metric_samples import sample
from namespaces import Namespaces
from namespaces import unavailable as namespaces_unavailable
from pausing_proxy import PausingProxy
from pg_harness import Database, free_port
from sox_audio import sox_wav

from daemon.emulator import EmulatorServer
from daemon.journal.migrations import latest_version

JOBS = 4
FILES = 36
LEASE = 3.0
LATENCY = 1.0
HOSTS = ("host-a", "host-b", "host-c")


class Cluster:
    """Three daemon setups sharing ``root/shared``; each host also has an inbox of its own."""

    def __init__(
        self,
        root: Path,
        emulator: EmulatorServer,
        database: Database,
        namespaces: Namespaces | None,
    ) -> None:
        self.root = root
        self.emulator = emulator
        self.database = database
        self.namespaces = namespaces
        self.shared = root / "shared"
        for name in ("inbox", "done", "failed"):
            (self.shared / name).mkdir(parents=True)
        address = namespaces.gateway if namespaces else "127.0.0.1"
        self.proxies = {host: PausingProxy(database.port, address) for host in HOSTS}
        # One address of the account for every host (the account is named by it).
        self.api = PausingProxy(int(emulator.base_url.rsplit(":", 1)[1]), address)
        self.daemons: dict[str, DaemonHarness] = {}
        # host-b answers /metrics, on its own address.
        self.metrics_url = (
            f"http://{namespaces.address(1) if namespaces else address}:{free_port()}"
        )
        for host in HOSTS:
            own = root / host
            http = (
                {"http": {"listen": self.metrics_url[len("http://") :]}} if host == "host-b" else {}
            )
            url = database.url_with(password=database.password, port=self.proxies[host].port)
            url = url.replace("@127.0.0.1:", f"@{address}:")
            self.daemons[host] = DaemonHarness(
                own,
                emulator,
                symbl_options={
                    "base_url": f"http://{address}:{self.api.port}",
                    "max_concurrent_jobs": JOBS,
                    "max_concurrent_uploads": 2,
                },
                extra={
                    "journal": {"url": url, "connect_timeout_seconds": 2},
                    "cluster": {
                        "host_id": host,
                        "lease_seconds": LEASE,
                        "heartbeat_seconds": LEASE / 3,
                    },
                    "inboxes": [
                        self.inbox("shared", self.shared),
                        self.inbox(f"own-{host}", own),
                    ],
                    **http,
                },
            )

    @staticmethod
    def inbox(inbox_id: str, folder: Path) -> dict[str, Any]:
        return {
            "id": inbox_id,
            "path": str(folder / "inbox"),
            "done": str(folder / "done"),
            "failed": str(folder / "failed"),
            "profile": "default",
            "settle_seconds": 0.2,
        }

    def results(self) -> dict[str, dict[str, Any]]:
        return DaemonHarness._records(self.shared / "done", ".result.json")

    def start(self) -> None:
        for n, daemon in enumerate(self.daemons.values()):
            daemon.start(prefix=self.namespaces.prefix(n) if self.namespaces else ())

    def close(self) -> None:
        for daemon in self.daemons.values():
            daemon.close()
        for proxy in [*self.proxies.values(), self.api]:
            proxy.close()
        if self.namespaces is not None:
            self.namespaces.close()

    def connections_of(self, host: str) -> int:
        """The host's open connections to the database, as the server counts them."""
        with self.database.connect() as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                (f"symbl-inbox {host}",),
            ).fetchone()
        return int(row[0]) if row else 0

    def files_of(self, host: str, state: str) -> list[str]:
        """The journal's files in ``state`` that ``host`` holds, by name."""
        with self.database.connect() as connection:
            rows = connection.execute(
                "SELECT rel_path FROM files WHERE host_id = %s AND state = %s", (host, state)
            ).fetchall()
        return sorted(os.fsdecode(bytes(rel)) for (rel,) in rows)

    def status(self, host: str) -> dict[str, Any]:
        out = subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(self.daemons[host].config_path),
             "status", "--json"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        document: dict[str, Any] = json.loads(out.stdout)
        return document


@pytest.fixture
def cluster(
    tmp_path: Path,
    emulator_factory: Callable[..., EmulatorServer],
    pg_database: Database,
) -> Iterator[Cluster]:
    # Every request takes a while, so a host killed mid-run is caught with an upload under way.
    emulator = emulator_factory(job_seconds=1.0, max_jobs=JOBS, latency_seconds=LATENCY)
    namespaces = None if namespaces_unavailable() else Namespaces(len(HOSTS))
    made = Cluster(tmp_path, emulator, pg_database, namespaces)
    yield made
    made.close()


def timestamp(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["timestamp"]).timestamp()


def events(daemon: DaemonHarness, name: str) -> list[dict[str, Any]]:
    return [event for event in daemon.events() if event.get("event") == name]


class TestThreeHosts:
    """One account, one shared inbox, three hosts: a crash and a partition lose nothing."""

    def test_kill_and_cut_off_lose_nothing_and_send_twice_only_what_was_in_flight(
        self, cluster: Cluster
    ) -> None:
        a, b, c = (cluster.daemons[host] for host in HOSTS)
        cluster.start()
        for n in range(FILES):
            sox_wav(cluster.shared / "inbox" / f"call-{n:02d}.wav", seconds=0.2 + n / 100)

        # host-a dies with a job running and an upload under way: kill -9, nothing said.
        wait_until(
            lambda: (
                a.event_count("file_submitted") >= 1
                and a.event_count("upload_started") > a.event_count("file_submitted")
            ),
            60,
            "host-a to have a job running and an upload under way",
        )
        a.kill()
        # What host-a was uploading when it died is what may be sent twice: read once the
        # database has let go of its connections (a write on its way has landed or never will).
        wait_until(lambda: cluster.connections_of("host-a") == 0, 30, "host-a's connections gone")
        uploading = cluster.files_of("host-a", "uploading")

        # host-c loses the database for longer than its lease, then gets it back.
        wait_until(lambda: c.event_count("file_submitted") >= 1, 60, "host-c to have a job")
        cluster.proxies["host-c"].pause()
        paused_at = time.time()
        wait_until(
            lambda: any(e.get("host") == "host-c" for e in events(b, "cluster_host_taken_over")),
            60,
            "host-b to take host-c over",
        )
        resumed_at = time.time()
        cluster.proxies["host-c"].resume()
        wait_until(lambda: c.event_count("cluster_reachable") >= 1, 60, "host-c to be back")
        # Within one lease of the cut the cut-off host started nothing new.
        late = [
            e for e in events(c, "upload_started")
            if paused_at + LEASE < timestamp(e) < resumed_at
        ]  # fmt: skip
        assert late == []

        wait_until(
            lambda: len(cluster.results()) >= FILES,
            180,
            f"{FILES} files in done/ (b:\n{b.log_text()[-3000:]})",
        )

        # Every file filed exactly once: one record each, no name-clash copies.
        results = cluster.results()
        assert sorted(results) == [f"call-{n:02d}.wav" for n in range(FILES)]
        assert not list((cluster.shared / "failed").rglob("*.json"))
        assert not list((cluster.shared / "inbox").glob("*.wav"))

        # The account never refused a job: the shared slots kept the limit.
        statuses = Counter(record.status for record in cluster.emulator.state.requests)
        assert statuses[429] == 0, statuses

        # Sent twice only what a lost host was uploading, and every resend is counted.
        resent = [e for h in ("host-b", "host-c") for e in events(cluster.daemons[h],
                  "file_sent_again_after_takeover")]  # fmt: skip
        # Exactly what host-a was uploading, each once (usually one: its upload under way).
        assert sorted(e["file"] for e in resent if e["from_host"] == "host-a") == uploading
        for event in resent:  # the record says so too
            assert results[event["file"]]["takeovers"][-1]["resent"] is True
        assert all(e["from_host"] in ("host-a", "host-c") for e in resent)
        by_sha = Counter(s.sha256 for s in cluster.emulator.state.submissions)
        assert sum(n - 1 for n in by_sha.values()) <= len(resent)
        assert {e["file"] for e in resent} >= {
            rel for rel, result in results.items() if by_sha[result["sha256"]] > 1
        }

        # status shows, per host, what it holds and what takeovers cost.
        hosts = {h["host_id"]: h for h in cluster.status("host-b")["leases"]}
        assert not hosts["host-a"]["alive"]
        assert sum(h["reuploads_after_takeover"] for h in hosts.values()) == len(resent)
        assert hosts["host-b"]["adopted"] + hosts["host-c"]["adopted"] >= 1
        # host-b took host-c over (host-a's files went to whichever host was first): its
        # metrics count each file it logged as taken over from host-c.
        metrics = httpx.get(f"{cluster.metrics_url}/metrics", timeout=10).text
        from_c = [e for e in events(b, "file_taken_over") if e["from_host"] == "host-c"]
        assert from_c
        taken = sample(metrics, "symbl_inbox_files_taken_over_total", from_host="host-c")
        assert taken == len(from_c)
        assert 'symbl_inbox_host_info{host_id="host-b"} 1.0' in metrics

        # The cut-off host works again: a file of its own inbox is filed by it.
        sox_wav(cluster.root / "host-c" / "inbox" / "after.wav", seconds=0.3)
        c.wait_filed(1, timeout=60)
        assert not c.exited()
        assert latest_version() >= 10
