"""daemon.logs: file names print escaped on a terminal; JSON lines escape them already."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator

import pytest
import structlog

from daemon.logs import configure_logging, get_logger

NAME = os.fsdecode(b"evil\x1b[2J\n\xff.wav")


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    yield
    structlog.reset_defaults()


class TestNamesInLogs:
    """A name of any bytes never reaches the terminal raw, and never breaks a log line."""

    def test_console_lines_escape_control_characters(self) -> None:
        out = io.StringIO()
        configure_logging("info", json=False, stream=out)
        get_logger("test").info("file_seen", file=NAME)
        text = out.getvalue()
        assert "\x1b" not in text and "\\x1b[2J\\n\\xff.wav" in text
        assert text.count("\n") == 1

    def test_json_lines_stay_one_line_and_lossless(self) -> None:
        out = io.StringIO()
        configure_logging("info", json=True, stream=out)
        get_logger("test").info("file_seen", file=NAME)
        line = out.getvalue()
        assert line.count("\n") == 1 and "\x1b" not in line
        assert os.fsencode(json.loads(line)["file"]) == os.fsencode(NAME)


def test_every_line_names_the_part_of_the_daemon_that_wrote_it() -> None:
    out = io.StringIO()
    configure_logging("info", json=True, stream=out)
    get_logger("symbl_inbox.scheduler").warning("submissions_paused", seconds=1.0)
    line = json.loads(out.getvalue())
    assert line["logger"] == "symbl_inbox.scheduler" and line["event"] == "submissions_paused"
