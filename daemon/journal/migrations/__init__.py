"""The PostgreSQL journal's schema, owned by the project: numbered SQL files, applied in order.

Each ``NNNN_what_it_does.sql`` in this package is one version of the schema. ``schema_version``
in the database lists the versions applied there, with when and by which host. ``migrate``
applies the missing ones in one transaction under an advisory lock, so hosts that start at the
same moment apply each version once: the others wait for the lock and then find nothing to do.
A database that holds a version this code does not know was migrated by a newer symbl-inbox;
it is refused (``SchemaTooNew``) rather than written to with the wrong idea of its tables.

Versions 1-9 are the journal's own tables (files, conversations, settings); versions from 10 on
are the cluster's (claims, job slots, hosts). Never edit a file once released: add the next one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from psycopg import AsyncConnection, sql

# Taken for the length of the migrating transaction; any 64-bit number unique to this project.
ADVISORY_LOCK = 0x5359_4D42_4C4D_4947  # "SYMBLMIG"
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    applied_by text NOT NULL
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def __str__(self) -> str:
        return f"{self.version:04d} {self.name}"


class SchemaTooNew(Exception):
    """The database was migrated by a newer symbl-inbox; this one must not write to it."""


@cache
def known_migrations() -> tuple[Migration, ...]:
    """Every migration shipped with this code, in version order."""
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    return tuple(sorted(found, key=lambda migration: migration.version))


def latest_version() -> int:
    return max((m.version for m in known_migrations()), default=0)


@dataclass(frozen=True)
class SchemaState:
    """What a database holds, compared with what this code knows."""

    applied: frozenset[int]
    """Versions recorded in ``schema_version``; empty for an empty database."""
    known: tuple[Migration, ...] = field(default_factory=known_migrations)

    @property
    def version(self) -> int:
        return max(self.applied, default=0)

    @property
    def latest(self) -> int:
        return max((m.version for m in self.known), default=0)

    @property
    def unknown(self) -> tuple[int, ...]:
        """Applied versions this code does not know: a newer symbl-inbox migrated it."""
        return tuple(sorted(self.applied - {m.version for m in self.known}))

    @property
    def pending(self) -> tuple[Migration, ...]:
        return tuple(m for m in self.known if m.version not in self.applied)

    def too_new_message(self) -> str | None:
        if not self.unknown:
            return None
        return (
            f"the journal's schema is at version {self.version}, newer than this symbl-inbox "
            f"knows (up to {self.latest}): upgrade symbl-inbox on this host to the "
            "version the other hosts run"
        )

    def describe(self) -> str:
        """One line for people: up to date, will be migrated, or too new."""
        too_new = self.too_new_message()
        if too_new is not None:
            return too_new
        if not self.applied:
            return (
                f"empty: the schema (version {self.latest}) is created at start "
                "or by `symbl-inbox migrate`"
            )
        if self.pending:
            names = ", ".join(str(m) for m in self.pending)
            return (
                f"at version {self.version}, older than this symbl-inbox's "
                f"{self.latest}: will be migrated at start ({names})"
            )
        return f"at version {self.version}, up to date"


async def schema_state(connection: AsyncConnection[Any]) -> SchemaState:
    """Read the versions applied, without changing anything (no lock, no table created)."""
    async with connection.cursor() as cursor:
        await cursor.execute("SELECT to_regclass('schema_version') IS NOT NULL")
        row = await cursor.fetchone()
        if not (row and row[0]):
            return SchemaState(frozenset())
        await cursor.execute("SELECT version FROM schema_version")
        return SchemaState(frozenset(int(version) for (version,) in await cursor.fetchall()))


async def migrate(connection: AsyncConnection[Any], applied_by: str) -> list[Migration]:
    """Apply every missing migration, all in one transaction; the ones applied, in order.

    Safe when several hosts call it at once: the advisory lock makes them take turns, and
    each one reads the versions only once it holds the lock. Raises ``SchemaTooNew``.
    """
    async with connection.transaction(), connection.cursor() as cursor:
        await cursor.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK,))
        await cursor.execute(_VERSION_TABLE)
        await cursor.execute("SELECT version FROM schema_version")
        state = SchemaState(frozenset(int(version) for (version,) in await cursor.fetchall()))
        too_new = state.too_new_message()
        if too_new is not None:
            raise SchemaTooNew(too_new)
        for migration in state.pending:
            await cursor.execute(sql.SQL(migration.sql))
            await cursor.execute(
                "INSERT INTO schema_version (version, name, applied_by) VALUES (%s, %s, %s)",
                (migration.version, migration.name, applied_by),
            )
        return list(state.pending)
