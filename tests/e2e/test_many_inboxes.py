"""Many inboxes on one inotify instance; at the kernel's limits, polling with one warning.

The limits are set for real, in a user namespace of the test's own (``unshare --user
--map-root-user``): there ``/proc/sys/user/max_inotify_instances`` and ``max_inotify_watches``
are the namespace's own limits, which the kernel enforces on top of the system's
``fs.inotify.max_user_*``; nothing outside the namespace changes.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import DaemonHarness, wait_until

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav

WATCHES = "fs.inotify.max_user_watches"
INSTANCES = "fs.inotify.max_user_instances"


def _can_limit_inotify() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run(
        [unshare, "--user", "--map-root-user", "sh", "-c",
         "echo 5 > /proc/sys/user/max_inotify_watches"],
        capture_output=True, timeout=10,
    )  # fmt: skip
    return probe.returncode == 0


def with_inotify_limits(
    *, instances: int | None = None, watches: int | None = None
) -> tuple[str, ...]:
    """A command prefix: the daemon runs in a user namespace with these inotify limits."""
    if not _can_limit_inotify():
        pytest.skip("no user namespaces here: the inotify limits cannot be set for one process")
    settings = []
    if instances is not None:
        settings.append(f"echo {instances} > /proc/sys/user/max_inotify_instances")
    if watches is not None:
        settings.append(f"echo {watches} > /proc/sys/user/max_inotify_watches")
    script = " && ".join([*settings, 'exec "$@"'])
    return ("unshare", "--user", "--map-root-user", "sh", "-c", script, "sh")


class ManyInboxes:
    """A daemon with ``count`` inboxes, each with done/ and failed/ beside it."""

    def __init__(self, root: Path, emulator: EmulatorServer, count: int) -> None:
        self.root = root
        self.runtime = root / "run"
        self.runtime.mkdir(parents=True)
        self.boxes = [root / f"box{index:03d}" for index in range(count)]
        for box in self.boxes:
            (box / "in").mkdir(parents=True)
        self.harness = DaemonHarness(root / "daemon", emulator)
        self.configure(range(count))

    def configure(self, indices: Iterable[int], **options: Any) -> None:
        """Write the configuration with these inboxes (a running daemon reads it on SIGHUP)."""
        inboxes = [
            {
                "path": str(self.boxes[index] / "in"),
                "profile": "default",
                "done": str(self.boxes[index] / "done"),
                "failed": str(self.boxes[index] / "failed"),
                "settle_seconds": 0.2,
                "poll_interval_seconds": 0.2,
                **options,
            }
            for index in indices
        ]
        self.harness.write_config(extra={"inboxes": inboxes})

    def start(self, prefix: tuple[str, ...] = ()) -> None:
        self.harness.start(prefix=prefix, env={"RUNTIME_DIRECTORY": str(self.runtime)})

    def drop(self, index: int, name: str) -> None:
        inbox = self.boxes[index] / "in"
        (inbox / f".{name}.part").write_bytes(make_wav(0.05 + index / 10_000))
        (inbox / f".{name}.part").rename(inbox / name)

    def filed(self, index: int, name: str) -> bool:
        done = self.boxes[index] / "done"
        return (done / name).exists() and (done / f"{name}.result.json").exists()

    def status(self) -> dict[str, Any]:
        return self.harness.status(self.runtime)

    def status_text(self) -> str:
        return self.harness.status_text(self.runtime)

    def events(self, name: str) -> list[dict[str, Any]]:
        return [event for event in self.harness.events() if event.get("event") == name]

    def warnings_and_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.harness.events() if e.get("level") in ("warning", "error")]

    def inotify_instances(self) -> int:
        assert self.harness.process is not None
        folder = Path(f"/proc/{self.harness.process.pid}/fd")
        count = 0
        for entry in folder.iterdir():
            try:
                count += str(entry.readlink()) == "anon_inode:inotify"
            except OSError:
                continue
        return count

    def threads(self) -> int:
        assert self.harness.process is not None
        return sum(1 for _ in Path(f"/proc/{self.harness.process.pid}/task").iterdir())


@pytest.fixture
def many(tmp_path: Path, emulator: EmulatorServer) -> Any:
    made: list[ManyInboxes] = []

    def make(count: int) -> ManyInboxes:
        setup = ManyInboxes(tmp_path / f"many{len(made)}", emulator, count)
        made.append(setup)
        return setup

    yield make
    for setup in made:
        setup.harness.close()


def test_two_hundred_inboxes_share_one_instance_and_each_delivers(many: Any) -> None:
    setup: ManyInboxes = many(200)
    setup.start()
    assert len(setup.events("inbox_watching")) == 200
    assert {event["mode"] for event in setup.events("inbox_watching")} == {"inotify"}
    assert setup.inotify_instances() == 1
    chosen = [0, 1, 57, 99, 142, 199]
    for index in chosen:
        setup.drop(index, "call.wav")
    wait_until(lambda: all(setup.filed(i, "call.wav") for i in chosen), 60, "every file filed")
    assert setup.status()["polled"] == {}
    assert setup.warnings_and_errors() == []
    # Before, each inbox cost three threads: 600 here. Now a few worker threads serve them all.
    assert setup.threads() < 30


def test_at_the_watch_limit_the_other_inboxes_are_polled_with_one_warning(many: Any) -> None:
    setup: ManyInboxes = many(10)
    setup.start(prefix=with_inotify_limits(watches=4))
    warnings = setup.events("inotify_limit_reached")
    assert len(warnings) == 1, warnings
    assert warnings[0]["limit"] == WATCHES and warnings[0]["value"] == 4
    assert "sysctl -w fs.inotify.max_user_watches=" in warnings[0]["message"]
    modes = {e["inbox"]: (e["mode"], e.get("limit")) for e in setup.events("inbox_watching")}
    watched = [str(box / "in") for box in setup.boxes[:4]]
    polled = [str(box / "in") for box in setup.boxes[4:]]
    assert all(modes[inbox] == ("inotify", None) for inbox in watched), modes
    assert all(modes[inbox] == ("poll", WATCHES) for inbox in polled), modes

    assert setup.status()["polled"] == dict.fromkeys(polled, WATCHES)
    text = setup.status_text()
    assert "Polled instead of watched (a kernel inotify limit is reached): 6" in text
    assert f"{polled[0]}: {WATCHES} reached" in text

    for index in (0, 3, 4, 9):  # watched and polled alike
        setup.drop(index, "late.wav")
    wait_until(lambda: all(setup.filed(i, "late.wav") for i in (0, 3, 4, 9)), 60, "files filed")
    # No flood: the one warning is all, however long it runs.
    assert [e["event"] for e in setup.warnings_and_errors()] == ["inotify_limit_reached"]


def test_a_polled_inbox_is_watched_again_once_watches_are_free(many: Any) -> None:
    """Two watched inboxes removed by a reload free their watches: the polled ones ask again
    at their next rescan, and get them; nothing more is warned."""
    setup: ManyInboxes = many(5)
    setup.configure(range(5), rescan_seconds=0.5)
    setup.start(prefix=with_inotify_limits(watches=3))
    inboxes = [str(box / "in") for box in setup.boxes]
    assert sorted(setup.status()["polled"]) == inboxes[3:]
    setup.configure(range(2, 5), rescan_seconds=0.5)
    assert setup.harness.process is not None
    setup.harness.process.send_signal(signal.SIGHUP)
    wait_until(lambda: setup.status()["polled"] == {}, 30, "every inbox watched again")
    back = [e["inbox"] for e in setup.events("inbox_watching") if e["mode"] == "inotify"]
    assert set(inboxes[3:]) <= set(back)
    setup.drop(4, "back.wav")
    wait_until(lambda: setup.filed(4, "back.wav"), 30, "the file filed")
    assert len(setup.events("inotify_limit_reached")) == 1


def test_without_an_instance_every_inbox_is_polled_and_delivers(many: Any) -> None:
    setup: ManyInboxes = many(3)
    setup.start(prefix=with_inotify_limits(instances=0))
    warnings = setup.events("inotify_limit_reached")
    assert [(w["limit"], w["value"]) for w in warnings] == [(INSTANCES, 0)]
    assert {e["mode"] for e in setup.events("inbox_watching")} == {"poll"}
    assert setup.inotify_instances() == 0
    assert set(setup.status()["polled"].values()) == {INSTANCES}
    for index in range(3):
        setup.drop(index, "a.wav")
    wait_until(lambda: all(setup.filed(i, "a.wav") for i in range(3)), 60, "files filed")
    assert len(setup.warnings_and_errors()) == 1


def test_folders_made_later_in_a_recursive_inbox_are_watched(harness: DaemonHarness) -> None:
    """A folder made (or moved in, files and all) after start is watched from then on: its
    files arrive within seconds, long before the next rescan (300 s)."""
    harness.write_config(inbox_options={"recursive": True})
    harness.start()
    deeper = harness.inbox / "team" / "2026" / "june"
    deeper.mkdir(parents=True)
    (deeper / "made.wav").write_bytes(make_wav(0.1))
    outside = harness.root / "prepared"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub" / "moved.wav").write_bytes(make_wav(0.2))
    outside.rename(harness.inbox / "prepared")
    wait_until(
        lambda: {"team/2026/june/made.wav", "prepared/sub/moved.wav"} <= set(harness.results()),
        30,
        "both files filed",
    )
    # After the move, a file written in the moved folder is still seen (under its new name).
    (harness.inbox / "prepared" / "sub" / "after.wav").write_bytes(make_wav(0.3))
    wait_until(lambda: "prepared/sub/after.wav" in harness.results(), 30, "the later file")
