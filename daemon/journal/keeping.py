"""What retention keeps of the filed rows, stated once for both SQL stores.

``Journal.prune_filed`` promises to keep a conversation's latest filed part (the next part is
appended after it) and the first done file of each content in the inboxes named (duplicates are
recognised by it). SQLite and PostgreSQL differ only in how a statement tests membership in a
list handed over as one parameter.
"""

from __future__ import annotations

from typing import LiteralString


def prune_delete(in_list: LiteralString) -> LiteralString:
    """DELETE of the examined rows (first parameter) that nothing needs; the second parameter is
    the inboxes whose first done files stay. ``in_list`` tests membership in one parameter:
    ``"= ANY(%s)"`` for PostgreSQL, ``"IN (SELECT value FROM json_each(?))"`` for SQLite."""
    return f"""
DELETE FROM files AS f WHERE f.id {in_list}
AND NOT (
    f.conversation_key IS NOT NULL AND f.id = (
        SELECT max(g.id) FROM files AS g
        WHERE g.inbox = f.inbox AND g.conversation_key = f.conversation_key AND g.state = 'filed'
    )
)
AND NOT (
    f.outcome = 'done' AND f.conversation_id IS NOT NULL AND f.sha256 IS NOT NULL
    AND f.inbox {in_list}
    AND f.id = (
        SELECT min(g.id) FROM files AS g
        WHERE g.inbox = f.inbox AND g.sha256 = f.sha256 AND g.outcome = 'done'
            AND g.conversation_id IS NOT NULL
    )
)
"""
