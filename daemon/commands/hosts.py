"""What each host holds, for ``status`` on a shared journal (``journal.url``).

A shared journal knows which host recorded or holds each file (``files.host_id``); a SQLite
journal belongs to one host and has nothing to add here. Files no host holds (yet) show under
``-`` in the table and ``null`` in JSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class CountsByHost(Protocol):
    """A journal that knows the host of every file (the PostgreSQL one)."""

    async def counts_by_host(self) -> dict[tuple[str, str, str | None], int]: ...


async def gather_hosts(journal: object, keys: Sequence[str]) -> list[dict[str, Any]]:
    """Per host, its files by state (``keys``) over every inbox, in name order; [] for SQLite."""
    if not isinstance(journal, CountsByHost):
        return []
    totals: dict[str | None, dict[str, int]] = {}
    for (_inbox, state, host), count in (await journal.counts_by_host()).items():
        counts = totals.setdefault(host, dict.fromkeys(keys, 0))
        if state in counts:
            counts[state] += count
    return [
        {"host": host, "counts": counts}
        for host, counts in sorted(totals.items(), key=lambda item: (item[0] is None, item[0]))
    ]


def host_rows(hosts: list[dict[str, Any]], keys: Sequence[str]) -> list[list[Any]]:
    """Rows for the status table: the host (``-`` for none) and its counts."""
    return [[item["host"] or "-", *(item["counts"][key] for key in keys)] for item in hosts]
