"""Which journal a configuration names, opened: SQLite in ``state_dir``, or the shared PostgreSQL.

The daemon opens it for writing (a PostgreSQL schema is migrated first); operator commands
open it to read or to mark a retry, without migrating: a database the daemons have not set up
yet reads as no journal at all.
"""

from __future__ import annotations

import sqlite3

from daemon.config.model import Config
from daemon.journal.base import Journal
from daemon.journal.sqlite import JOURNAL_NAME, JournalDamaged, SqliteJournal


class JournalUnavailable(Exception):
    """The journal cannot be used; the message says why and what to do (never a password)."""


def journal_errors(config: Config) -> tuple[type[Exception], ...]:
    """What reading or writing the configured journal may raise, for commands to report."""
    if config.journal is None:
        return (sqlite3.Error, JournalUnavailable)
    import psycopg
    import psycopg_pool

    return (psycopg.Error, psycopg_pool.PoolTimeout, JournalUnavailable)


def journal_place(config: Config) -> str:
    """Where the configured journal is, for messages: the database, or the state folder."""
    return config.journal.location if config.journal is not None else str(config.state_dir)


async def open_journal(config: Config) -> Journal:
    """The daemon's journal, ready to write; raises ``JournalUnavailable``."""
    if config.journal is None:
        try:
            return SqliteJournal.checked_in_state_dir(config.state_dir)
        except JournalDamaged as exc:
            raise JournalUnavailable(str(exc)) from exc
    return await _postgres(config, migrate=True)


async def open_for_operator(config: Config, *, readonly: bool = True) -> Journal | None:
    """The journal for ``status``, ``conversations`` and ``retry``; None when there is none yet.

    Raises ``JournalUnavailable`` when a shared journal cannot be reached or is too new.
    """
    if config.journal is None:
        if not (config.state_dir / JOURNAL_NAME).exists():
            return None
        return SqliteJournal.in_state_dir(config.state_dir, readonly=readonly)
    from daemon.journal.postgres import SchemaNotReady

    try:
        return await _postgres(config, migrate=False)
    except SchemaNotReady:
        return None


async def _postgres(config: Config, *, migrate: bool) -> Journal:
    from daemon.journal.migrations import SchemaTooNew
    from daemon.journal.pgconnect import Unavailable
    from daemon.journal.postgres import PostgresJournal

    assert config.journal is not None
    try:
        journal = await PostgresJournal.open(
            config.journal,
            config.cluster.host_id,
            migrate=migrate,
            pool_max=8 if migrate else 2,
            idle_transaction_seconds=config.cluster.lease_seconds,
        )
    except Unavailable as exc:
        raise JournalUnavailable(exc.message) from exc
    except SchemaTooNew as exc:
        raise JournalUnavailable(f"{config.journal.location}: {exc}") from exc
    return journal
