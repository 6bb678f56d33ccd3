"""What the real daemon tells systemd, received on a notify socket the test owns."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from service_harness import DaemonProcess, NotifyListener, Site, wait_for

from daemon.files.samples import make_wav
from daemon.journal import SqliteJournal


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[NotifyListener]:
    notify = NotifyListener(tmp_path / "notify.sock")
    yield notify
    notify.close()


def journal_paths(site: Site) -> list[str]:
    journal = SqliteJournal.in_state_dir(site.state_dir, readonly=True)
    try:
        return [record.rel_path for record in asyncio.run(journal.active())]
    finally:
        journal.close_now()


class TestReadyAndStopping:
    """READY=1 comes once the startup scan is done, STOPPING=1 once SIGTERM arrives."""

    def test_ready_follows_the_startup_scan(
        self,
        site: Site,
        listener: NotifyListener,
        start_daemon: Callable[..., DaemonProcess],
    ) -> None:
        (site.inbox / "before-start.wav").write_bytes(make_wav(1.0))
        daemon = start_daemon(site, {"NOTIFY_SOCKET": str(listener.path)})

        ready = listener.wait_for_message("READY=1")

        # The file present before start is in the journal and counted the moment READY arrives:
        # once, wherever a slow start has got it to (settling, or admitted and ready already).
        assert journal_paths(site) == ["before-start.wav"]
        (status,) = [line for line in ready if line.startswith("STATUS=")]
        counts = re.fullmatch(
            r"STATUS=(\d+) settling, (\d+) ready, (\d+) uploading, (\d+) jobs running", status
        )
        assert counts is not None, status
        assert sum(int(n) for n in counts.groups()) == 1, status
        site.wait_done("before-start.wav")
        assert daemon.stop() == 0

    def test_stopping_is_sent_on_sigterm(
        self,
        site: Site,
        listener: NotifyListener,
        start_daemon: Callable[..., DaemonProcess],
    ) -> None:
        daemon = start_daemon(site, {"NOTIFY_SOCKET": str(listener.path)})
        listener.wait_for_message("READY=1")
        assert "STOPPING=1" not in listener.lines()

        assert daemon.stop() == 0

        stopping = listener.wait_for_message("STOPPING=1")
        assert "STATUS=stopping" in stopping
        assert listener.times_of("READY=1")[0] < listener.times_of("STOPPING=1")[0]

    def test_without_notify_socket_the_daemon_runs_as_usual(
        self, site: Site, listener: NotifyListener, start_daemon: Callable[..., DaemonProcess]
    ) -> None:
        daemon = start_daemon(site)
        daemon.wait_ready()
        (site.inbox / "plain.wav").write_bytes(make_wav(0.5))
        site.wait_done("plain.wav")
        assert daemon.stop() == 0
        assert listener.lines() == []


class TestWatchdog:
    """With WATCHDOG_USEC set, WATCHDOG=1 pings come at half the interval, with STATUS= lines."""

    def test_pings_at_half_the_watchdog_interval(
        self,
        site: Site,
        listener: NotifyListener,
        start_daemon: Callable[..., DaemonProcess],
    ) -> None:
        daemon = start_daemon(
            site, {"NOTIFY_SOCKET": str(listener.path), "WATCHDOG_USEC": "1000000"}
        )
        listener.wait_for_message("READY=1")
        ready_at = listener.times_of("READY=1")[0]

        # Five pings at 0.5 s come in about 2.5 s; the 5 s housekeeping pace would take 25 s.
        wait_for(lambda: len(listener.times_of("WATCHDOG=1")) >= 5, "five WATCHDOG=1", 8.0)
        pings = listener.times_of("WATCHDOG=1")[:5]
        assert pings[-1] - ready_at < 5.0
        gaps = [later - earlier for earlier, later in itertools.pairwise(pings)]
        assert all(0.2 < gap < 1.5 for gap in gaps), gaps

        statuses = [line for line in listener.lines() if line.startswith("STATUS=")]
        assert len(statuses) >= 5
        assert all("jobs running" in line for line in statuses[:5])
        assert daemon.stop() == 0
