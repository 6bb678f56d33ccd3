"""Fixtures for configuration tests: a config file in a temporary folder, checked for real."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from config_harness import Outcome

from daemon import cli


@pytest.fixture(autouse=True)
def _no_system_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never fall back to /var/lib/symbl-inbox: a test that forgets state_dir stays in tmp."""
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "systemd-state"))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A temporary folder holding an ``inbox`` folder, where the config file will be written."""
    (tmp_path / "inbox").mkdir()
    return tmp_path


@pytest.fixture
def write_config(folder: Path) -> Callable[[str], Path]:
    """``write_config(text)`` writes ``config.yaml`` (dedented) and returns its path."""

    def write(text: str) -> Path:
        path = folder / "config.yaml"
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def check_config(capsys: pytest.CaptureFixture[str]) -> Callable[[Path], Outcome]:
    """``check_config(path)`` runs ``symbl-inbox --config PATH check-config`` in-process."""

    def run(path: Path, *extra: str) -> Outcome:
        code = cli.main(["--config", str(path), "check-config", *extra])
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err.splitlines())

    return run
