"""What the admitter counts as not yet admitted. The status line's "settling" reads it, so
a file it is examining (no longer settling, not yet ready) must be counted here."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from async_waiting import wait_until

from daemon.files.intake import TrackedFile
from daemon.journal import MemoryJournal
from daemon.pipeline.admitter import Admitter
from daemon.pipeline.scheduler import Scheduler
from daemon.pipeline.supervisor import Supervisor


class SlowInboxes:
    """An inbox whose folder takes until ``release`` to open (a slow share), then is gone."""

    def __init__(self) -> None:
        self.opening = threading.Event()
        self.release = threading.Event()

    def files(self, inbox: object) -> Any:
        self.opening.set()
        self.release.wait(10)
        raise FileNotFoundError("the inbox folder is gone")


async def test_a_file_being_examined_is_counted_until_it_is_admitted() -> None:
    inboxes = SlowInboxes()
    supervisor = Supervisor()
    # Stand-ins for the daemon and its inboxes: only what examining one file asks of them.
    shell: Any = SimpleNamespace(db=MemoryJournal())
    slow: Any = inboxes
    scheduler = Scheduler(max_jobs=1, max_uploads=1)
    admitter = Admitter(shell, supervisor, scheduler, slow, can_convert=False)
    runtime: Any = SimpleNamespace(inbox=SimpleNamespace(key="in"), tracked={})
    tracked = TrackedFile(1, "call.wav", 10, 1, 0.0)
    try:
        admitter.settled(runtime, tracked, 10, 1)
        assert admitter.queued() == 1
        await wait_until(inboxes.opening.is_set)
        assert admitter.queued() == 1, "taken up for examination, still not admitted"
    finally:
        inboxes.release.set()
    # Its record is gone (nothing to admit): it counts no more.
    await wait_until(lambda: admitter.queued() == 0)
    await supervisor.end_all()
