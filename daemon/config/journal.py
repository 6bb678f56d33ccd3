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
from typing import TYPE_CHECKING, Any

from daemon.config.model import ClusterSettings, JournalSettings
from daemon.config.pgurl import password_in, url_without_password
from daemon.logs import masker
from daemon.params import ParamProblem

if TYPE_CHECKING:
    from daemon.config.schema import ClusterSection, JournalSection


def journal_settings(
    section: JournalSection, given_password: str | None
) -> tuple[JournalSettings, list[ParamProblem]]:
    """The settings, the password taken out of the URL; a problem if it was given twice."""
    problems = []
    in_url = password_in(section.url)
    if in_url and given_password:
        problems.append(
            ParamProblem(
                ("journal", "url"),
                "has a password, and so does journal.password or password_file: give one",
            )
        )
    password = given_password or in_url
    if password:
        masker.register([password])
    settings = JournalSettings(
        url=url_without_password(section.url),
        password=password,
        connect_timeout_seconds=float(section.connect_timeout_seconds),
    )
    return settings, problems


def cluster_settings(section: ClusterSection) -> ClusterSettings:
    return ClusterSettings(
        **({"host_id": section.host_id} if section.host_id else {}),
        lease_seconds=float(section.lease_seconds),
        heartbeat_seconds=float(section.heartbeat_seconds),
    )


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
