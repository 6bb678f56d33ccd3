"""PostgreSQL connection URLs: checked, their password taken out, described for people."""

from __future__ import annotations

from urllib.parse import parse_qsl, unquote, urlsplit

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
    """The URL with its password left out wherever it was written; the rest as written."""
    if password_in(url) is None:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, hosts = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}@{hosts}"
    query = "&".join(
        item for item in parts.query.split("&") if item and not item.startswith("password=")
    )
    # Rebuilt by hand: urlunsplit drops the "//" of an empty host (a unix socket's URL).
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


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
