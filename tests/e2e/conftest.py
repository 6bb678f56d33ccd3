"""Fixtures for end-to-end tests of the daemon process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import DaemonHarness

from daemon.emulator import EmulatorServer


@pytest.fixture
def harness_factory(
    tmp_path: Path, emulator_factory: Callable[..., EmulatorServer]
) -> Iterator[Callable[..., DaemonHarness]]:
    """``harness_factory(emulator=..., **config)`` builds a daemon setup, killed at teardown."""
    made: list[DaemonHarness] = []

    def make(emulator: EmulatorServer | None = None, **options: Any) -> DaemonHarness:
        server = emulator or emulator_factory()
        harness = DaemonHarness(tmp_path / f"setup{len(made)}", server, **options)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


@pytest.fixture
def harness(harness_factory: Callable[..., DaemonHarness]) -> DaemonHarness:
    """A daemon setup with one inbox and fast settings (not started)."""
    return harness_factory()
