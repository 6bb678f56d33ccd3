"""The journal, cluster and inbox-id keys through the real ``check-config``: what is wrong with
them is said exactly, and the database password never shows."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from config_harness import Outcome

from daemon.config import load_config
from daemon.config.changes import config_changes

BASE = """\
symbl:
  app_id: test-app
  app_secret: s3cret-value-for-tests
state_dir: state
profiles:
  default: {}
"""
DB_PASSWORD = "db-pass-for-config-tests"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "inboxes:\n  - path: inbox\n    profile: default\n"
            "journal:\n  url: postgresql://symbl@db.example.com/inbox\n",
            [
                "config.yaml:8: inboxes[0]: needs an id with journal.url: hosts that share the "
                "journal mount the same folder at different paths, so each names the inbox by its "
                "id (the same on every host)"
            ],
            id="shared-journal-needs-inbox-ids",
        ),
        pytest.param(
            "inboxes:\n  - path: inbox\n    profile: default\n    id: sales\n"
            "  - path: inbox/other\n    profile: default\n    id: sales\n",
            ["config.yaml:13: inboxes[1].id: same id as inboxes[0]"],
            id="inbox-ids-unique",
        ),
        pytest.param(
            "inboxes:\n  - path: inbox\n    profile: default\n    id: sales\n"
            "journal:\n  url: mysql://symbl@db.example.com/inbox\n",
            [
                "config.yaml:12: journal.url: must be a PostgreSQL URL: "
                "postgresql://USER@HOST:PORT/DATABASE"
            ],
            id="journal-url-not-postgres",
        ),
        pytest.param(
            "inboxes:\n  - path: inbox\n    profile: default\n    id: sales\n"
            "journal:\n  url: postgresql://symbl@db.example.com/inbox\n  passwrd: x\n",
            ["config.yaml:13: journal.passwrd: unknown key; did you mean 'password'?"],
            id="journal-unknown-key",
        ),
        pytest.param(
            "inboxes:\n  - path: inbox\n    profile: default\n    id: sales\n"
            f"journal:\n  url: postgresql://symbl:{DB_PASSWORD}@db.example.com/inbox\n"
            "  password_file: db-password\n",
            [
                "config.yaml:12: journal.url: has a password, and so does journal.password or "
                "password_file: give one"
            ],
            id="journal-password-twice",
        ),
        pytest.param(
            "inboxes:\n  - path: inbox\n    profile: default\n    id: sales\n"
            "journal:\n  url: postgresql://symbl@db.example.com/inbox\n"
            "  password_file: missing-password\n",
            [
                "config.yaml:13: journal.password_file: cannot read {tmp}/missing-password: "
                "No such file or directory"
            ],
            id="journal-password-file-missing",
        ),
        pytest.param(
            "inboxes:\n  - path: inbox\n    profile: default\n"
            "cluster:\n  lease_seconds: 10\n  heartbeat_seconds: 10\n",
            [
                "config.yaml:12: cluster.heartbeat_seconds: must be less than lease_seconds "
                "(a host renews its lease by its heartbeat)"
            ],
            id="heartbeat-within-lease",
        ),
        pytest.param(
            "inboxes:\n  - path: inbox\n    profile: default\n"
            "cluster:\n  host_id: ''\n  lease_seconds: 0\n",
            [
                "config.yaml:11: cluster.host_id: must not be empty",
                "config.yaml:12: cluster.lease_seconds: must be greater than 0",
            ],
            id="cluster-values",
        ),
    ],
)
def test_bad_journal_and_cluster_keys(
    text: str,
    expected: list[str],
    folder: Path,
    write_config: Callable[[str], Path],
    check_config: Callable[[Path], Outcome],
) -> None:
    (folder / "inbox" / "other").mkdir()
    (folder / "db-password").write_text(DB_PASSWORD + "\n")
    outcome = check_config(write_config(BASE + text))
    assert outcome.errors == [f"{folder}/{line}".replace("{tmp}", str(folder)) for line in expected]
    assert outcome.code == 2
    assert DB_PASSWORD not in outcome.out + "".join(outcome.errors)


class TestDefaults:
    """Without journal or cluster keys: SQLite, this host's name, an id that is the path."""

    def test_effective_configuration(
        self,
        folder: Path,
        write_config: Callable[[str], Path],
        check_config: Callable[[Path], Outcome],
    ) -> None:
        outcome = check_config(
            write_config(BASE + "inboxes:\n  - path: inbox\n    profile: default\n")
        )
        assert outcome.code == 0, outcome.errors
        assert "journal:" not in outcome.out
        assert (
            f"cluster:\n  host_id: {socket.gethostname()}\n  lease_seconds: 30.0\n"
            "  heartbeat_seconds: 10.0\n" in outcome.out
        )
        assert f"- id: {folder}/inbox\n" in outcome.out


class TestReload:
    """A reload cannot move the journal or rename the host: those wait for a restart."""

    def test_journal_and_cluster_need_a_restart(
        self, folder: Path, write_config: Callable[[str], Path]
    ) -> None:
        path = write_config(BASE + "inboxes:\n  - path: inbox\n    profile: default\n")
        old = load_config(path)
        write_config(
            BASE + "inboxes:\n  - path: inbox\n    profile: default\n    id: sales\n"
            "journal:\n  url: postgresql://symbl@db.example.com/inbox\n"
            "cluster:\n  host_id: other\n"
        )
        new = load_config(path)
        assert config_changes(old, new).needs_restart == "journal, cluster"
        assert config_changes(old, old).needs_restart == ""
