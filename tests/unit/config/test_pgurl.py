"""PostgreSQL URLs: the password comes out wherever libpq would read it from, nothing else."""

from __future__ import annotations

import pytest

from daemon.config.pgurl import describe, password_in, url_problem, url_without_password


class TestPassword:
    """The password in a URL is found and taken out, in the user part or the query."""

    @pytest.mark.parametrize(
        ("url", "password", "without"),
        [
            ("postgresql://u:p%40ss@db:5432/inbox", "p@ss", "postgresql://u@db:5432/inbox"),
            (
                "postgresql://u@db/inbox?sslmode=require&password=zz",
                "zz",
                "postgresql://u@db/inbox?sslmode=require",
            ),
            ("postgres://db/inbox", None, "postgres://db/inbox"),
            (
                "postgresql:///inbox?host=/run/postgresql&password=x1",
                "x1",
                "postgresql:///inbox?host=/run/postgresql",
            ),
            (
                "postgresql://u:pw@h1:5432,h2:5433/inbox",
                "pw",
                "postgresql://u@h1:5432,h2:5433/inbox",
            ),
        ],
    )
    def test_found_and_removed(self, url: str, password: str | None, without: str) -> None:
        assert password_in(url) == password
        assert url_without_password(url) == without


class TestCheckAndDescribe:
    """Other schemes are refused; the description never has a password."""

    def test_other_schemes(self) -> None:
        assert url_problem("mysql://u@db/x") is not None
        assert url_problem("postgresql://u@db/x") is None

    def test_describe(self) -> None:
        assert describe("postgresql://u:secret-pw@db/inbox") == "postgresql://u@db:5432/inbox"
        assert describe("postgresql:///inbox?host=/run/postgresql") == (
            "postgresql:///run/postgresql:5432/inbox"
        )
