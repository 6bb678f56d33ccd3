"""Walking an inbox one entry at a time: the trust boundary's rules, and nothing left open."""

from __future__ import annotations

from pathlib import Path

from daemon.files.intake import InboxFilter
from daemon.fsboundary import Folder
from daemon.fsboundary.walk import walk


def _open_descriptors() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def _tree(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "outside").mkdir()
    (root / "outside" / "secret.wav").write_bytes(b"x")
    (root / "top.wav").write_bytes(b"x")
    (root / "a" / "one.wav").write_bytes(b"x")
    (root / "a" / "b" / "two.mp3").write_bytes(b"x")
    (root / "link").symlink_to(root / "outside")
    (root / "a" / "loop").symlink_to(root)


def test_every_entry_once_and_symlinked_folders_are_entries_not_ways_in(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    _tree(inbox)
    folder = Folder.open(inbox)
    entered: list[str] = []
    try:
        found = list(
            walk(
                folder,
                True,
                lambda rel, name: rel != "outside",
                lambda rel, name: True,
                lambda rel, fd: entered.append(rel),
            )
        )
    finally:
        folder.close()
    names = sorted(rel for rel, _ in found)
    assert names == ["a/b/two.mp3", "a/loop", "a/one.wav", "link", "top.wav"]
    assert sorted(entered) == ["", "a", "a/b"]


def test_a_folder_is_announced_before_its_entries_are_listed(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    folder = Folder.open(tmp_path)
    order: list[str] = []

    def entered(rel: str, fd: int) -> None:
        order.append(f"enter {rel}")
        if rel == "sub":  # made after the folder is open, before it is listed: still found
            (tmp_path / "sub" / "late.wav").write_bytes(b"x")

    try:
        for rel, _ in walk(folder, True, lambda r, n: True, lambda r, n: True, entered):
            order.append(rel)
    finally:
        folder.close()
    assert order.index("enter sub") < order.index("sub/late.wav")


def test_a_walk_stopped_half_way_closes_what_it_opened(tmp_path: Path) -> None:
    for index in range(3):
        (tmp_path / f"d{index}").mkdir()
        for number in range(5):
            (tmp_path / f"d{index}" / f"{number}.wav").write_bytes(b"x")
    folder = Folder.open(tmp_path)
    before = _open_descriptors()
    entries = walk(folder, True, lambda r, n: True, lambda r, n: True)
    next(entries)
    assert _open_descriptors() > before
    entries.close()
    folder.close()
    assert _open_descriptors() == before - 1


def test_the_filter_walks_what_it_scans(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "done").mkdir()
    (tmp_path / "done" / "old.wav").write_bytes(b"x")
    (tmp_path / "a" / "notes.txt").write_text("not audio")
    inbox_filter = InboxFilter(tmp_path, True, (tmp_path / "done",))
    folder = Folder.open(tmp_path)
    try:
        walked = [(rel, kind) for rel, _, kind in inbox_filter.walk(folder)]
        scanned = [(rel, kind) for rel, _, kind in inbox_filter.scan(folder)]
    finally:
        folder.close()
    assert walked == scanned
    assert sorted(rel for rel, _ in walked) == [
        "a/b/two.mp3", "a/one.wav", "outside/secret.wav", "top.wav"
    ]  # fmt: skip
