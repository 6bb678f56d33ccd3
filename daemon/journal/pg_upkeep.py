"""The PostgreSQL journal's upkeep: counts kept beside the rows, and retention.

``PostgresJournal`` answers ``counts``, ``active_files`` and ``prune_filed`` with these; they
live apart so that the store's own module stays about files and conversations. The tables and
triggers are those of migration 0002 (``migrations/0002_counts_and_retention.sql``).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, LiteralString

from daemon.journal.keeping import prune_delete
from daemon.journal.pgrows import name_text
from daemon.model import ActiveFile, PruneCursor, State

# Folds the changes appended since the last fold into file_counts. One host folds at a time
# (the others skip: what they would fold is being folded); the rows of file_counts are updated
# in one order, so two folds can never wait for each other.
FOLD_LOCK = 0x5359_4D42_434E_5453  # "SYMBCNTS"
TRY_FOLD_LOCK: LiteralString = "SELECT pg_try_advisory_xact_lock(%s)"
FOLD: LiteralString = """
WITH moved AS (
    DELETE FROM file_count_changes RETURNING inbox, state, host, delta
), summed AS (
    SELECT inbox, state, host, sum(delta) AS delta FROM moved GROUP BY 1, 2, 3
)
INSERT INTO file_counts (inbox, state, host, files)
    SELECT inbox, state, host, delta FROM summed ORDER BY inbox, state, host
ON CONFLICT (inbox, state, host) DO UPDATE SET files = file_counts.files + excluded.files
"""
READ_COUNTS: LiteralString = """
SELECT inbox, state, sum(files)::bigint FROM (
    SELECT inbox, state, files FROM file_counts
    UNION ALL
    SELECT inbox, state, delta FROM file_count_changes
) AS counted GROUP BY 1, 2 HAVING sum(files) <> 0
"""
READ_COUNTS_BY_HOST: LiteralString = """
SELECT inbox, state, host, sum(files)::bigint FROM (
    SELECT inbox, state, host, files FROM file_counts
    UNION ALL
    SELECT inbox, state, host, delta FROM file_count_changes
) AS counted GROUP BY 1, 2, 3 HAVING sum(files) <> 0
"""
ACTIVE_FILES: LiteralString = (
    "SELECT id, inbox, rel_path, state, size, mtime_ns, conversation_key FROM files"
    " WHERE state <> 'filed'"
)
# Retention, oldest filed rows first from a cursor; then those of them nothing needs. What stays
# is what ``Journal.prune_filed`` promises: a conversation's latest filed part, and the first
# done file of each content in the inboxes named.
PRUNE_EXAMINE: LiteralString = (
    "SELECT id, extract(epoch FROM updated_at)::float8 FROM files"
    " WHERE state = 'filed' AND updated_at < to_timestamp(%s)"
    " AND (updated_at, id) > (to_timestamp(%s), %s)"
    " ORDER BY updated_at, id LIMIT %s"
)
PRUNE_DELETE: LiteralString = prune_delete("= ANY(%s)")
# The earliest moment PostgreSQL's to_timestamp takes: where a pass begins.
_BEGINNING: PruneCursor = (-210866803200.0, 0)


def prune_examine_params(
    before: float, after: PruneCursor | None, limit: int
) -> tuple[float, float, int, int]:
    start = after or _BEGINNING
    return before, start[0], start[1], limit


def prune_delete_params(ids: list[int], keep_twins_in: Collection[str]) -> tuple[Any, ...]:
    return ids, sorted(keep_twins_in)


def active_file(row: tuple[Any, ...]) -> ActiveFile:
    key = row[6]
    return ActiveFile(
        int(row[0]),
        str(row[1]),
        name_text(row[2]),
        State(row[3]),
        int(row[4]),
        int(row[5]),
        name_text(key) if key is not None else None,
    )
