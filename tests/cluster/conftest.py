"""The cluster tests run daemons as the end-to-end tests do: with their harness."""

from __future__ import annotations

import sys
from pathlib import Path

# tests/e2e is on the path only when pytest collects it; these tests use its DaemonHarness.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
