"""The ``journal`` and ``cluster`` sections: where the journal lives and who this host is.

Without ``journal.url`` the journal is SQLite in ``state_dir``, as for one host. With a
``postgresql://`` URL, daemons on several hosts share one PostgreSQL journal; then every inbox
needs an ``id`` that names it alike on every host, because the same share is mounted at
different paths. The password may sit in the URL (``${VAR}`` expands it), in ``password`` or
in ``password_file``; wherever it comes from it is registered with the masker and never kept
in the URL the rest of the daemon sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from daemon.params import ParamProblem

POSTGRES_SCHEMES = ("postgresql", "postgres")


def url_problem(url: str) -> str | None:
    """Why ``url`` is not a PostgreSQL connection URL, or None."""
    if urlsplit(url).scheme not in POSTGRES_SCHEMES:
        return "must be a PostgreSQL URL: postgresql://USER@HOST:PORT/DATABASE"
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except ProgrammingError as exc:
        return f"is not a PostgreSQL URL libpq can read: {exc}"
    return None


def password_in(url: str) -> str | None:
    """The password written into the URL (``user:password@`` or ``?password=``), decoded."""
    parts = urlsplit(url)
    if parts.password:
        return unquote(parts.password)
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "password" and value:
            return value
    return None


def url_without_password(url: str) -> str:
    """The URL with its password left out wherever it was written (user name and rest stay)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, hosts = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{hosts}"
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"]
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def describe(url: str) -> str:
    """Where the journal is, for people: ``USER@HOST:PORT/DATABASE`` (never a password)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url_without_password(url))
    except Exception:  # already reported by url_problem; say something harmless
        return "PostgreSQL"
    host = str(info.get("host") or "localhost (socket)")
    port = str(info.get("port") or "5432")
    user = f"{info['user']}@" if info.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{info.get('dbname') or info.get('user') or ''}"


def inbox_id_problems(inboxes: Any, shared: bool) -> list[ParamProblem]:
    """Inboxes without an ``id`` under a shared journal, and ids given twice."""
    problems: list[ParamProblem] = []
    seen: dict[str, int] = {}
    entries: Sequence[Any] = inboxes if isinstance(inboxes, list) else []
    for index, inbox in enumerate(entries):
        if not isinstance(inbox, Mapping):
            continue
        given = inbox.get("id")
        if given is None and shared:
            problems.append(
                ParamProblem(
                    ("inboxes", index),
                    "needs an id with journal.url: hosts that share the journal mount the same "
                    "folder at different paths, so each names the inbox by its id "
                    "(the same on every host)",
                )
            )
        if isinstance(given, str):
            if given in seen:
                problems.append(
                    ParamProblem(("inboxes", index, "id"), f"same id as inboxes[{seen[given]}]")
                )
            seen.setdefault(given, index)
    return problems
