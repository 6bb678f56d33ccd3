"""The shared inotify watcher: one instance, each watch on a folder the daemon opened itself."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from async_waiting import wait_until

from daemon.files.watch import (
    INSTANCES_SYSCTL,
    WATCHES_SYSCTL,
    SharedWatcher,
    WatchLimitReached,
    limit_value,
    sysctl_value,
)
from daemon.fsboundary import DIR_FLAGS


class Heard:
    """A listener that keeps what it is told."""

    def __init__(self) -> None:
        self.changes: list[tuple[str, str, bool, bool]] = []
        self.lost_owners: list[str] = []
        self.overflows = 0

    def changed(self, owner: str, rel: str, gone: bool, is_dir: bool) -> None:
        self.changes.append((owner, rel, gone, is_dir))

    def lost(self, owner: str) -> None:
        self.lost_owners.append(owner)

    def overflowed(self) -> None:
        self.overflows += 1

    def names(self, owner: str, *, gone: bool = False) -> set[str]:
        return {rel for who, rel, was_gone, _ in self.changes if who == owner and was_gone == gone}


@pytest.fixture
def heard() -> Heard:
    return Heard()


@pytest.fixture
async def watcher(heard: Heard) -> AsyncIterator[SharedWatcher]:
    shared = SharedWatcher(asyncio.get_running_loop(), heard)
    yield shared
    shared.close()


def opened(path: Path) -> int:
    return os.open(path, DIR_FLAGS)


def watch_path(watcher: SharedWatcher, owner: str, rel: str, path: Path) -> None:
    fd = opened(path)
    try:
        watcher.watch(owner, rel, fd)
    finally:
        os.close(fd)  # the watch stays: it is on the folder, not on the descriptor


class TestEvents:
    async def test_files_in_a_folder_and_its_watched_subfolder_are_named_relative(
        self, watcher: SharedWatcher, heard: Heard, tmp_path: Path
    ) -> None:
        (tmp_path / "sub").mkdir()
        watch_path(watcher, "A", "", tmp_path)
        watch_path(watcher, "A", "sub", tmp_path / "sub")
        (tmp_path / "one.wav").write_bytes(b"x")
        (tmp_path / "sub" / "two.wav").write_bytes(b"y")
        (tmp_path / "one.wav").rename(tmp_path / "gone.txt")
        await wait_until(lambda: {"one.wav", "sub/two.wav", "gone.txt"} <= heard.names("A"))
        await wait_until(lambda: "one.wav" in heard.names("A", gone=True))
        assert watcher.watches("A") == 2

    async def test_many_inboxes_share_one_instance(
        self, watcher: SharedWatcher, heard: Heard, tmp_path: Path
    ) -> None:
        before = _inotify_instances()
        for index in range(50):
            folder = tmp_path / f"inbox{index}"
            folder.mkdir()
            watch_path(watcher, f"in{index}", "", folder)
        assert _inotify_instances() == before + 1
        for index in (0, 49):
            (tmp_path / f"inbox{index}" / "a.wav").write_bytes(b"x")
        await wait_until(lambda: "a.wav" in heard.names("in0") and "a.wav" in heard.names("in49"))
        assert {owner for owner, *_ in heard.changes} == {"in0", "in49"}

    async def test_a_folder_swapped_for_a_symlink_is_not_followed(
        self, watcher: SharedWatcher, heard: Heard, tmp_path: Path
    ) -> None:
        """The watch is on the folder the descriptor was opened on, whatever the path is now."""
        inbox, elsewhere = tmp_path / "inbox", tmp_path / "elsewhere"
        inbox.mkdir()
        elsewhere.mkdir()
        fd = opened(inbox)
        inbox.rename(tmp_path / "moved")
        inbox.symlink_to(elsewhere)
        try:
            watcher.watch("A", "", fd)
        finally:
            os.close(fd)
        (elsewhere / "planted.wav").write_bytes(b"x")
        (tmp_path / "moved" / "real.wav").write_bytes(b"x")
        await wait_until(lambda: "real.wav" in heard.names("A"))
        assert "planted.wav" not in heard.names("A")

    async def test_the_inbox_folder_removed_is_lost_and_forgotten(
        self, watcher: SharedWatcher, heard: Heard, tmp_path: Path
    ) -> None:
        inbox = tmp_path / "inbox"
        inbox.mkdir()
        watch_path(watcher, "A", "", inbox)
        inbox.rmdir()
        await wait_until(lambda: heard.lost_owners == ["A"])
        assert watcher.watches("A") == 0

    async def test_a_subfolder_moved_away_loses_its_watches(
        self, watcher: SharedWatcher, heard: Heard, tmp_path: Path
    ) -> None:
        (tmp_path / "sub" / "deeper").mkdir(parents=True)
        watch_path(watcher, "A", "", tmp_path)
        watch_path(watcher, "A", "sub", tmp_path / "sub")
        watch_path(watcher, "A", "sub/deeper", tmp_path / "sub" / "deeper")
        (tmp_path / "sub").rename(tmp_path / "renamed")
        await wait_until(lambda: ("A", "sub", True, True) in heard.changes)
        assert watcher.watches("A") == 1
        (tmp_path / "renamed" / "deeper" / "late.wav").write_bytes(b"x")
        (tmp_path / "marker.wav").write_bytes(b"x")
        await wait_until(lambda: "marker.wav" in heard.names("A"))
        assert not any("late.wav" in rel for rel in heard.names("A"))

    async def test_forget_ends_the_events_of_one_inbox_only(
        self, watcher: SharedWatcher, heard: Heard, tmp_path: Path
    ) -> None:
        watch_path(watcher, "A", "", tmp_path)
        watch_path(watcher, "B", "", tmp_path)  # the same folder, e.g. configured twice
        watcher.forget("A")
        (tmp_path / "x.wav").write_bytes(b"x")
        await wait_until(lambda: "x.wav" in heard.names("B"))
        assert heard.names("A") == set()

    async def test_an_overflowing_queue_asks_for_a_rescan(
        self, watcher: SharedWatcher, heard: Heard, tmp_path: Path
    ) -> None:
        """More events than the kernel queues, made without letting the loop read any."""
        queued = sysctl_value("fs.inotify.max_queued_events")
        if queued is None or queued > 100_000:
            pytest.skip("the kernel's event queue is too long to overflow here")
        watch_path(watcher, "A", "", tmp_path)
        target = tmp_path / "f.wav"
        target.write_bytes(b"")
        for _ in range(queued // 2 + 10):  # two events per round (create, delete)
            target.unlink()
            target.write_bytes(b"")
        await wait_until(lambda: heard.overflows >= 1)


class TestLimits:
    def test_a_sysctl_is_read_by_its_dotted_name(self, tmp_path: Path) -> None:
        (tmp_path / "fs" / "inotify").mkdir(parents=True)
        (tmp_path / "fs" / "inotify" / "max_user_watches").write_text("8192\n")
        assert sysctl_value(WATCHES_SYSCTL, proc=tmp_path) == 8192
        assert sysctl_value(INSTANCES_SYSCTL, proc=tmp_path) is None

    def test_a_user_namespace_s_lower_limit_is_the_one_in_force(self, tmp_path: Path) -> None:
        (tmp_path / "fs" / "inotify").mkdir(parents=True)
        (tmp_path / "user").mkdir()
        (tmp_path / "fs" / "inotify" / "max_user_watches").write_text("8192\n")
        (tmp_path / "user" / "max_inotify_watches").write_text("100\n")
        (tmp_path / "fs" / "inotify" / "max_user_instances").write_text("128\n")
        (tmp_path / "user" / "max_inotify_instances").write_text("2147483647\n")
        assert limit_value(WATCHES_SYSCTL, proc=tmp_path) == 100
        assert limit_value(INSTANCES_SYSCTL, proc=tmp_path) == 128

    def test_the_error_names_the_limit_and_its_value(self) -> None:
        error = WatchLimitReached(INSTANCES_SYSCTL)
        assert error.sysctl == INSTANCES_SYSCTL
        assert error.value == limit_value(INSTANCES_SYSCTL)
        assert "fs.inotify.max_user_instances" in str(error)


def _inotify_instances() -> int:
    count = 0
    for entry in Path("/proc/self/fd").iterdir():
        try:
            if str(entry.readlink()) == "anon_inode:inotify":
                count += 1
        except OSError:
            continue
    return count
