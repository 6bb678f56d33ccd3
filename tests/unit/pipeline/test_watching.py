"""What a rescan compares to pass over a file unchanged since the last scan."""

from __future__ import annotations

import gc
import os
from pathlib import Path

from daemon.pipeline.watching import signature


def test_a_change_of_size_mtime_or_inode_is_a_change(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    path.write_bytes(b"x" * 10)
    first = signature(os.lstat(path))
    assert signature(os.lstat(path)) == first
    os.utime(path, ns=(0, os.lstat(path).st_mtime_ns + 1))
    touched = signature(os.lstat(path))
    path.write_bytes(b"x" * 11)
    os.utime(path, ns=(0, os.lstat(path).st_mtime_ns))
    grown = signature(os.lstat(path))
    replacement = tmp_path / "b.wav"
    replacement.write_bytes(b"x" * 11)
    os.utime(replacement, ns=(0, os.lstat(path).st_mtime_ns))
    replacement.replace(path)  # same size and mtime, another inode
    replaced = signature(os.lstat(path))
    assert len({first, touched, grown, replaced}) == 4


def test_a_file_from_before_1970_has_a_signature_of_its_own(tmp_path: Path) -> None:
    path = tmp_path / "old.wav"
    path.write_bytes(b"x")
    os.utime(path, ns=(0, -(10**9)))
    before_1970 = signature(os.lstat(path))
    os.utime(path, ns=(0, 10**9))
    assert signature(os.lstat(path)) != before_1970


def test_signatures_are_not_followed_by_the_garbage_collector(tmp_path: Path) -> None:
    assert not gc.is_tracked(signature(os.lstat(tmp_path)))
