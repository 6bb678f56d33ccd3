"""status shows each host's lease and what it holds, in words an operator reads."""

from __future__ import annotations

import dataclasses

from daemon.cluster.base import HostHolding
from daemon.cluster.report import LEASE_HEADERS, lease_rows
from daemon.commands.status import render_table


class TestLeaseRows:
    """One row per host: lease, heartbeat age, files, slots, takeovers, re-uploads."""

    def test_a_dead_host_and_what_a_live_one_took_over(self) -> None:
        hosts = [
            dataclasses.asdict(HostHolding("edge-1", False, 41.6, 0, 0, 0, 0)),
            dataclasses.asdict(
                HostHolding("edge-2", True, 2.2, 12, 4, reuploads_after_takeover=1, adopted=9)
            ),
        ]
        table = render_table(LEASE_HEADERS, lease_rows(hosts))
        lines = table.splitlines()
        assert "re-uploads after takeover" in lines[0]
        assert lines[-2].split() == ["edge-1", "expired", "42", "s", "ago", "0", "0", "0", "0"]
        assert lines[-1].split() == ["edge-2", "holds", "2", "s", "ago", "12", "4", "9", "1"]
