"""daemon.fsboundary: names, entry checks, moves and records across the trust boundary."""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.fsboundary import (
    NAME_MAX,
    FolderSwapped,
    InboxFiles,
    NotRegularFile,
    companion_name,
    display,
    move_entry,
    open_in,
    record_mode,
    rename_noreplace,
    write_new,
)


class TestNames:
    """Names are shown escaped, and shortened only where they would not fit."""

    def test_display_escapes_control_characters_and_undecodable_bytes(self) -> None:
        name = os.fsdecode(b"caf\xe9\n\x1b[31m\x7f.wav")
        assert display(name) == "caf\\xe9\\n\\x1b[31m\\x7f.wav"
        assert display("plain café.wav") == "plain café.wav"
        assert display("a\u2028b.wav") == "a\\u2028b.wav"  # a line break to some readers

    def test_companion_names_fit_and_share_one_stem(self) -> None:
        assert companion_name("call.wav", ".result.json") == ("call.wav.result.json", False)
        long = "é" * 125 + ".wav"  # 254 bytes
        record, shortened = companion_name(long, ".result.json")
        transcript, _ = companion_name(long, ".transcript.txt")
        assert shortened and len(os.fsencode(record)) <= NAME_MAX
        assert record.removesuffix(".result.json") == transcript.removesuffix(".transcript.txt")
        assert record.startswith("é" * 50) and "~" in record  # cut on a character boundary
        assert companion_name("x" + long[1:], ".result.json")[0] != record


class TestEntries:
    """Only a regular file is opened; anything else is refused before any read."""

    @pytest.fixture
    def files(self, tmp_path: Path) -> InboxFiles:
        (tmp_path / "inbox").mkdir()
        return InboxFiles(tmp_path / "inbox", tmp_path / "done", tmp_path / "failed")

    def test_special_entries_are_never_opened(self, files: InboxFiles, tmp_path: Path) -> None:
        inbox = files.path
        (tmp_path / "target.wav").write_bytes(b"RIFF")
        (inbox / "link.wav").symlink_to(tmp_path / "target.wav")
        os.mkfifo(inbox / "pipe.wav")  # opening it for reading would block
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(inbox / "sock.wav"))
        expected = {"link.wav": "symlink", "pipe.wav": "fifo", "sock.wav": "socket"}
        for name, kind in expected.items():
            with pytest.raises(NotRegularFile) as raised:
                open_in(files.inbox, name)
            assert raised.value.entry_type == kind

    def test_a_symlinked_folder_is_not_a_way_in(self, files: InboxFiles, tmp_path: Path) -> None:
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "x.wav").write_bytes(b"data")
        (files.path / "sub").symlink_to(tmp_path / "elsewhere")
        with pytest.raises(OSError):
            open_in(files.inbox, "sub/x.wav")

    def test_a_regular_file_is_read_from_its_descriptor(self, files: InboxFiles) -> None:
        (files.path / "a.wav").write_bytes(b"content")
        with open_in(files.inbox, "a.wav") as checked:
            (files.path / "a.wav").unlink()
            assert checked.pread(100, 0) == b"content"


class TestMovesAndRecords:
    """Nothing is overwritten, and nothing is written through a planted name."""

    def test_rename_never_replaces(self, tmp_path: Path) -> None:
        (tmp_path / "a").write_text("a")
        (tmp_path / "b").write_text("b")
        fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(FileExistsError):
                rename_noreplace(fd, "a", fd, "b")
            assert move_entry(fd, "gone", fd, "c") is False
        finally:
            os.close(fd)
        assert (tmp_path / "b").read_text() == "b"

    def test_a_planted_symlink_at_the_record_name_is_not_written_through(
        self, tmp_path: Path
    ) -> None:
        victim = tmp_path / "victim"
        victim.write_text("keep")
        (tmp_path / "x.result.json").symlink_to(victim)
        fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with pytest.raises(FileExistsError):
                write_new(fd, "x.result.json", b"{}", 0o644, None, replace_own=True)
            write_new(fd, "y.result.json", b"{}", 0o644, None, replace_own=True)
            write_new(fd, "y.result.json", b"{1}", 0o644, None, replace_own=True)  # our own
        finally:
            os.close(fd)
        assert victim.read_text() == "keep"
        assert (tmp_path / "y.result.json").read_text() == "{1}"
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".symbl-inbox-tmp-")]

    def test_record_modes_follow_the_audio(self, tmp_path: Path) -> None:
        audio = tmp_path / "a.wav"
        audio.write_bytes(b"x")
        for mode, expected in ((0o600, 0o600), (0o640, 0o640), (0o644, 0o644), (0o604, 0o604)):
            audio.chmod(mode)
            assert record_mode(audio.stat())[0] == expected
        assert record_mode(None) == (0o644, None)

    def test_a_swapped_target_folder_is_refused(self, tmp_path: Path) -> None:
        (tmp_path / "inbox").mkdir()
        files = InboxFiles(tmp_path / "inbox", tmp_path / "inbox" / "done", tmp_path / "failed")
        files.target("done")
        (tmp_path / "inbox" / "done").rename(tmp_path / "inbox" / "done.old")
        (tmp_path / "inbox" / "done").symlink_to(tmp_path / "failed")
        with pytest.raises(FolderSwapped):
            files.target("done")
        (tmp_path / "inbox" / "done").unlink()
        (tmp_path / "inbox" / "done.old").rename(tmp_path / "inbox" / "done")
        assert stat.S_ISDIR(os.fstat(files.target("done").fd).st_mode)
        files.close()


class TestAcrossFilesystems:
    """On another filesystem the entry is made anew from the checked descriptor or the link."""

    @pytest.fixture
    def shm(self, tmp_path: Path) -> Iterator[Path]:
        shm = Path("/dev/shm")
        if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
            pytest.skip("no /dev/shm on another filesystem than the temporary folder")
        folder = Path(tempfile.mkdtemp(dir=shm))
        yield folder
        shutil.rmtree(folder)

    def test_entries_are_made_anew_and_an_interrupted_copy_is_replaced(
        self, tmp_path: Path, shm: Path
    ) -> None:
        (tmp_path / "a.wav").write_bytes(b"audio")
        (tmp_path / "l.wav").symlink_to("/etc/shadow")
        (tmp_path / "b.wav").write_bytes(b"other")
        shutil.copy2(tmp_path / "a.wav", shm / "a.wav")  # as an interrupted filing left it
        (shm / "b.wav").write_bytes(b"someone else's")
        source = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
        target = os.open(shm, os.O_RDONLY | os.O_DIRECTORY)
        try:
            assert move_entry(source, "a.wav", target, "a.wav")
            assert move_entry(source, "l.wav", target, "l.wav")
            with pytest.raises(FileExistsError):
                move_entry(source, "b.wav", target, "b.wav")
        finally:
            os.close(source)
            os.close(target)
        assert (shm / "a.wav").read_bytes() == b"audio" and not (tmp_path / "a.wav").exists()
        assert (shm / "l.wav").readlink() == Path("/etc/shadow")
        assert (shm / "b.wav").read_bytes() == b"someone else's"
        assert (tmp_path / "b.wav").read_bytes() == b"other"
