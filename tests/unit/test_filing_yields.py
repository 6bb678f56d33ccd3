"""Work that uploads do not wait for (checks, filing, admission) yields to them, for a while."""

from __future__ import annotations

import asyncio
from collections import deque
from pathlib import Path
from types import SimpleNamespace

import pytest

from daemon import service
from daemon.config import load_config
from daemon.service import Daemon


@pytest.fixture
def daemon(tmp_path: Path) -> Daemon:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    config = tmp_path / "config.yaml"
    config.write_text(
        "symbl: {base_url: 'http://127.0.0.1:9', app_id: a, app_secret: secret-123456}\n"
        f"state_dir: {tmp_path / 'state'}\n"
        "profiles: {default: {params: {}}}\n"
        f"inboxes: [{{path: {inbox}, profile: default}}]\n"
    )
    return Daemon(load_config(config))


async def an_upload() -> asyncio.Task[None]:
    return asyncio.create_task(asyncio.Event().wait())


async def test_with_no_uploads_in_flight_filing_goes_at_once(daemon: Daemon) -> None:
    daemon._pump_now()
    await asyncio.wait_for(daemon._wait_for_quiet_uploads(), 1.0)


async def test_filing_waits_until_the_uploads_in_flight_end(daemon: Daemon) -> None:
    upload = await an_upload()
    daemon.uploading[1] = upload
    daemon._pump_now()
    waiting = asyncio.create_task(daemon._wait_for_quiet_uploads())
    for _ in range(3):  # loop turns, not time: a waiter with nothing to wait for is done by now
        await asyncio.sleep(0)
    assert not waiting.done()
    del daemon.uploading[1]
    upload.cancel()
    daemon._pump_now()  # what the upload's end runs
    await asyncio.wait_for(waiting, 1.0)


async def test_a_steady_stream_of_uploads_holds_filing_back_only_so_long(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "_FILING_YIELD_SECONDS", 0.1)
    upload = await an_upload()
    daemon.uploading[1] = upload
    daemon._pump_now()
    await asyncio.wait_for(daemon._wait_for_quiet_uploads(), 1.0)
    assert daemon.uploading, "it went ahead while the upload was still in flight"
    upload.cancel()


@pytest.mark.parametrize(
    ("ready", "in_flight", "enough"), [(3, 0, False), (50, 0, True), (4, 46, True), (3, 47, False)]
)
def test_admission_yields_once_the_ready_files_fill_the_free_slots(
    daemon: Daemon, ready: int, in_flight: int, enough: bool
) -> None:
    # 50 jobs and 4 uploads at once (the defaults); in_flight jobs hold slots already.
    runtime = SimpleNamespace(ready=deque(range(ready)))
    daemon.inboxes = {"inbox": runtime}  # type: ignore[dict-item]
    daemon.tracking = {index: None for index in range(in_flight)}  # type: ignore[misc]
    assert daemon._enough_ready() is enough
