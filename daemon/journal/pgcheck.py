"""What ``check-config`` says about a PostgreSQL journal: reachable, and its schema's state."""

from __future__ import annotations

from dataclasses import dataclass

from daemon.config.model import JournalSettings
from daemon.journal import migrations
from daemon.journal.pgconnect import Unavailable, connect, explain


@dataclass(frozen=True)
class JournalCheck:
    usable: bool
    message: str


async def check_journal(settings: JournalSettings) -> JournalCheck:
    """Connect and read the schema's version; change nothing.

    Usable: an empty database (the schema is created at start), an older schema (migrated at
    start) or the current one. Not usable: unreachable, refused, missing, or a newer schema.
    """
    try:
        async with await connect(settings, role="symbl-inbox check-config") as connection:
            state = await migrations.schema_state(connection)
    except Unavailable as exc:
        return JournalCheck(False, exc.message)
    except Exception as exc:  # e.g. no right to read the tables: say it, never a traceback
        return JournalCheck(False, explain(exc, settings).message)
    where = settings.location
    return JournalCheck(not state.unknown, f"{where}: reachable; schema {state.describe()}")
