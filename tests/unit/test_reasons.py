"""The failure reasons in code and in the README's table are the same list."""

from __future__ import annotations

import re
from pathlib import Path

from daemon.reasons import FAILURE_REASONS

README = Path(__file__).resolve().parents[2] / "README.md"


class TestReasons:
    """Every reason a file can fail with is documented, and nothing else is."""

    def test_readme_table_matches(self) -> None:
        text = README.read_text(encoding="utf-8")
        table = text[text.index("| reason | what happened |") :].split("\n\n", 1)[0]
        documented = set(re.findall(r"`([a-z_]+)`", "\n".join(
            line.split("|")[1] for line in table.splitlines()[2:]
        )))  # fmt: skip
        assert documented == set(FAILURE_REASONS)
