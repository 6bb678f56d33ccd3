"""Reaching the PostgreSQL journal: connection settings, and what went wrong, in plain words.

The password travels beside the URL (``journal.password``, ``password_file`` or the URL's own),
never inside a string that could be printed; every message here is scrubbed by the masker too.
libpq reports a failed connection without an SQLSTATE, so the kind of failure is told by its
message: unreachable, authentication, a missing database, or something else.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from daemon.config.model import JournalSettings
from daemon.logs import masker

APPLICATION_NAME = "symbl-inbox"


class Failure(StrEnum):
    UNREACHABLE = "unreachable"
    AUTHENTICATION = "authentication"
    NO_DATABASE = "no_database"
    OTHER = "other"


class Unavailable(Exception):
    """The journal cannot be reached; ``message`` says what is wrong and what to check."""

    def __init__(self, failure: Failure, message: str) -> None:
        super().__init__(message)
        self.failure = failure
        self.message = message


def connection_kwargs(
    settings: JournalSettings,
    role: str = APPLICATION_NAME,
    *,
    idle_transaction_seconds: float | None = None,
) -> dict[str, Any]:
    """The keywords psycopg takes beside the URL: password, timeout, a name in pg_stat_activity;
    with ``idle_transaction_seconds``, the server ends a transaction left idle that long."""
    kwargs: dict[str, Any] = {
        "connect_timeout": max(1, round(settings.connect_timeout_seconds)),
        "application_name": role,
    }
    if settings.password:
        kwargs["password"] = settings.password
    if idle_transaction_seconds is not None:
        # A host cut off in the middle of a transaction would hold its rows locked until TCP
        # gives up, hours later, and the host taking its files over would wait on them.
        milliseconds = max(1, round(idle_transaction_seconds * 1000))
        own = conninfo_to_dict(settings.url).get("options")  # kept: this is added to them
        setting = f"-c idle_in_transaction_session_timeout={milliseconds}"
        kwargs["options"] = f"{own} {setting}" if own else setting
    return kwargs


async def connect(
    settings: JournalSettings, *, autocommit: bool = True, role: str = APPLICATION_NAME
) -> psycopg.AsyncConnection[tuple[Any, ...]]:
    """One connection to the journal's database, or ``Unavailable`` saying why not."""
    try:
        return await psycopg.AsyncConnection.connect(
            settings.url, autocommit=autocommit, **connection_kwargs(settings, role)
        )
    except psycopg.Error as exc:
        raise explain(exc, settings) from None


def explain(exc: BaseException, settings: JournalSettings) -> Unavailable:
    """A failed connection (or query) told for people, with what to check."""
    where = settings.location
    detail = _detail(exc)
    lowered = detail.lower()
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return Unavailable(
            Failure.AUTHENTICATION,
            f"{where}: authentication failed ({detail}); check the user in journal.url and "
            "the password (journal.password, journal.password_file or the URL's)",
        )
    if "authentication failed" in lowered or "no pg_hba.conf entry" in lowered:
        return Unavailable(
            Failure.AUTHENTICATION,
            f"{where}: the server refused this user ({detail}); check pg_hba.conf and the user",
        )
    if "database" in lowered and "does not exist" in lowered:
        return Unavailable(
            Failure.NO_DATABASE,
            f"{where}: {detail}; create it (an empty database is fine: the schema is "
            "created at start)",
        )
    if any(
        sign in lowered
        for sign in (
            "connection refused",
            "failed to resolve host",
            "could not translate host",
            "timeout expired",
            "no route to host",
            "network is unreachable",
            "no such file or directory",
            "server closed the connection",
            "connection timed out",
        )
    ):
        return Unavailable(
            Failure.UNREACHABLE,
            f"{where}: cannot reach the server ({detail}); check the host and port in "
            "journal.url, that PostgreSQL runs there and that this host may connect",
        )
    return Unavailable(Failure.OTHER, f"{where}: {detail}")


def _detail(exc: BaseException) -> str:
    """libpq's reason, without its 'connection to server at ... failed:' preamble."""
    text = " ".join(str(exc).split())
    text = text.removeprefix("connection failed: ")
    if " failed: " in text and text.startswith("connection to server"):
        text = text.split(" failed: ", 1)[1]
    text = text.removeprefix("FATAL: ").strip()
    scrubbed: str = masker.scrub(text)
    return scrubbed or type(exc).__name__
