"""Per host, for ``status``: whose lease holds, what each host holds, what takeovers cost."""

from __future__ import annotations

import dataclasses
from typing import Any

from daemon.config.model import Config

LEASE_HEADERS = (
    "host",
    "lease",
    "heartbeat",
    "files",
    "job slots",
    "taken over",
    "re-uploads after takeover",
)


async def read_leases(config: Config) -> list[dict[str, Any]]:
    """Every host of the cluster that shares this configuration's journal (none for SQLite,
    or when the database has no cluster tables yet)."""
    if config.journal is None:
        return []
    # Here, not at the top: psycopg is 10 MiB of every daemon's memory, and one host on SQLite
    # (``status`` is part of the daemon's status page) never needs it.
    import psycopg

    from daemon.cluster.postgres import HOLDINGS_QUERY, holdings_from
    from daemon.journal.pgconnect import connect

    async with await connect(config.journal, role="symbl-inbox-status") as connection:
        try:
            cursor = await connection.execute(HOLDINGS_QUERY)
        except psycopg.errors.UndefinedTable:
            return []
        rows = await cursor.fetchall()
    return [dataclasses.asdict(holding) for holding in holdings_from(rows)]


def lease_rows(hosts: list[dict[str, Any]]) -> list[list[Any]]:
    """The table of ``status``, one row per host."""
    return [
        [
            host["host_id"],
            "holds" if host["alive"] else "expired",
            f"{host['heartbeat_age_seconds']:.0f} s ago",
            host["files"],
            host["slots"],
            host["adopted"],
            host["reuploads_after_takeover"],
        ]
        for host in hosts
    ]
