"""The live snapshot: its JSON contract and its file."""

from __future__ import annotations

import json
from pathlib import Path

from daemon.live import (
    LIVE_NAME,
    LiveState,
    UploadMeters,
    read_live,
    runtime_dir,
    write_live,
)
from daemon.stalls import Stall, StallKind


def state() -> LiveState:
    meters = UploadMeters()
    meters.begin(1, "/in", "a.wav", 1000)(400)
    return LiveState(
        updated=100.0,
        pid=42,
        started=True,
        stopping=False,
        stalls=(
            Stall(StallKind.RATE_LIMITED, 50.0, "429"),
            Stall(StallKind.STATE_FULL, 60.0, "full"),
        ),
        inboxes={"/in": True},
        uploads=meters.snapshot(),
    )


class TestLiveState:
    """Stalls in the contract shape; only some stop all work."""

    def test_json_contract(self) -> None:
        data = state().as_json()
        assert data["stalls"][0] == {
            "kind": "rate_limited",
            "since": "1970-01-01T00:00:50.000+00:00",
            "message": "429",
        }
        assert data["uploads"][0]["bytesSent"] == 400
        assert data["uploads"][0]["bytesTotal"] == 1000

    def test_rate_limits_do_not_stop_all_work(self) -> None:
        assert [s.kind for s in state().stops_all_work()] == [StallKind.STATE_FULL]


class TestLiveFile:
    """Written whole (temporary name, then rename), read back as JSON."""

    def test_round_trip(self, tmp_path: Path) -> None:
        assert write_live(tmp_path, state()) is None
        assert read_live(tmp_path) == json.loads((tmp_path / LIVE_NAME).read_text())
        assert [p.name for p in tmp_path.iterdir()] == [LIVE_NAME]

    def test_unwritable_folder_is_reported_not_raised(self, tmp_path: Path) -> None:
        assert isinstance(write_live(tmp_path / "missing", state()), OSError)

    def test_runtime_dir_prefers_systemd(self, tmp_path: Path) -> None:
        run = tmp_path / "run"
        assert runtime_dir(tmp_path, {"RUNTIME_DIRECTORY": f"{run}:/other"}) == run
