"""The README's configuration reference and the real schema list the same keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from daemon.config.schema import schema_keys

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
TABLE_KEY = re.compile(r"^\| `([^`]+)` \|", re.MULTILINE)


@pytest.fixture
def documented() -> list[str]:
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, "the config-reference markers are missing"
    region = text[text.index(START) : text.index(END)]
    return TABLE_KEY.findall(region)


class TestConfigurationReference:
    """Every schema key has one row in the README table, and every row is a schema key."""

    def test_every_schema_key_documented(self, documented: list[str]) -> None:
        assert sorted(set(schema_keys()) - set(documented)) == []

    def test_no_unknown_key_documented(self, documented: list[str]) -> None:
        assert sorted(set(documented) - set(schema_keys())) == []

    def test_each_key_once(self, documented: list[str]) -> None:
        assert len(documented) == len(set(documented))

    def test_walker_sees_nested_keys(self) -> None:
        keys = set(schema_keys())

        assert {"symbl.app_secret_file", "profiles.<name>.extends", "inboxes[].exclude"} <= keys
