"""Unit checks of the pure pieces: audio sniffing, name filters, target names, mount types."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from daemon.files.audio import AudioFormat, AudioProblem, inspect_bytes
from daemon.files.filing import choose_target_in, file_into
from daemon.files.intake import Candidate, InboxFilter, classify, continuation_from_name
from daemon.files.samples import make_mp3, make_wav, wav_header
from daemon.files.watch import filesystem_type, needs_polling
from daemon.fsboundary import Folder, InboxFiles
from daemon.symbl.exports import render_transcript


class TestSniffing:
    """WAV and MP3 are recognised by content, and their headers read."""

    def test_wav_header_is_read(self) -> None:
        data = make_wav(0.5, sample_rate=16000, channels=2)
        info = inspect_bytes(data, len(data))
        assert (info.format, info.channels, info.sample_rate) == (AudioFormat.WAV, 2, 16000)
        assert info.duration_seconds == pytest.approx(0.5)
        assert info.expected_size == len(data)

    def test_mp3_with_id3_tag_is_read(self) -> None:
        data = make_mp3(1.0)
        info = inspect_bytes(data, len(data))
        assert (info.format, info.channels, info.sample_rate) == (AudioFormat.MP3, 1, 32000)
        assert info.format.content_type == "audio/mpeg"

    def test_bare_mpeg_frames_are_mp3(self) -> None:
        frames = make_mp3(0.5)
        tag_end = 10 + int.from_bytes(frames[6:10], "big")
        assert inspect_bytes(frames[tag_end:]).format is AudioFormat.MP3

    @pytest.mark.parametrize(
        ("data", "reason"),
        [
            (b"", "empty_file"),
            (b"%PDF-1.7 not audio", "not_audio"),
            (b"RIFF\x00\x00\x00\x00AVI LIST", "not_audio"),
            (wav_header(1000)[:20], "truncated_audio"),
            (make_wav(0.1)[:44], "truncated_audio"),
        ],
    )
    def test_problems_have_reasons(self, data: bytes, reason: str) -> None:
        with pytest.raises(AudioProblem) as caught:
            inspect_bytes(data, len(data))
        assert caught.value.reason == reason

    def test_a_streaming_wav_header_promises_nothing(self) -> None:
        header = bytearray(wav_header(0))
        header[4:8] = b"\xff\xff\xff\xff"
        header[40:44] = b"\xff\xff\xff\xff"
        info = inspect_bytes(bytes(header) + b"\x00" * 800)
        assert (info.expected_size, info.streamed) == (None, True)
        assert info.duration_seconds == pytest.approx(0.05)


class TestNames:
    """Names decide what the daemon looks at; everything else is left untouched."""

    @pytest.mark.parametrize(
        ("name", "kind"),
        [
            ("call.wav", Candidate.AUDIO),
            ("CALL.MP3", Candidate.AUDIO),
            ("call.Wav", Candidate.AUDIO),
            ("call.wav.yaml", Candidate.SIDECAR),
            ("call.MP3.yml", Candidate.SIDECAR),
            ("meeting.url.yaml", Candidate.URL_DROP),
            (".call.wav.Ab12Cd", None),
            ("._call.wav", None),
            ("call.wav.part", None),
            ("call.wav.tmp", None),
            ("call.wav~", None),
            (".call.wav.swp", None),
            ("Thumbs.db", None),
            ("desktop.ini", None),
            ("notes.yaml", None),
            ("call.flac", Candidate.AUDIO),
            ("call.M4A", Candidate.AUDIO),
            ("call.m4a.yaml", Candidate.SIDECAR),
            ("notes.txt", None),
            ("report.pdf", None),
        ],
    )
    def test_classify(self, name: str, kind: Candidate | None) -> None:
        assert classify(name) is kind

    def test_filter_skips_own_folders_hidden_folders_and_exclusions(self, tmp_path: Path) -> None:
        done = tmp_path / "done"
        inbox_filter = InboxFilter(tmp_path, True, (done, tmp_path / "failed"), ("archive/*",))
        assert inbox_filter.relative(tmp_path / "a" / "b.wav") == "a/b.wav"
        assert inbox_filter.relative(done / "b.wav") is None
        assert inbox_filter.relative(tmp_path / ".sync" / "b.wav") is None
        assert inbox_filter.relative(tmp_path / "archive" / "b.wav") is None
        flat = InboxFilter(tmp_path, False, ())
        assert flat.relative(tmp_path / "a" / "b.wav") is None
        assert flat.relative(tmp_path / "b.wav") == "b.wav"

    def test_continuation_pattern(self) -> None:
        pattern = re.compile(r"^(?P<conversation>rec-\d+)-part(?P<part>\d+)\.wav$")
        assert continuation_from_name(pattern, "rec-7-part3.wav") == ("rec-7", 3)
        assert continuation_from_name(pattern, "rec-7.wav") is None
        assert continuation_from_name(None, "rec-7-part3.wav") is None


class TestFilingNames:
    """Filing never overwrites: a clash gets a numbered name, companions included."""

    def test_free_names(self, tmp_path: Path) -> None:
        folder = Folder.open(tmp_path)
        assert choose_target_in(folder, "a/call.wav") == "a/call.wav"
        (tmp_path / "a").mkdir()
        (tmp_path / "a" / "call.wav.result.json").write_text("{}")
        assert choose_target_in(folder, "a/call.wav") == "a/call.1.wav"
        (tmp_path / "a" / "call.1.wav.yaml").write_text("")
        assert choose_target_in(folder, "a/call.wav", [".yaml"]) == "a/call.2.wav"
        (tmp_path / "a" / "call.2.wav.transcript.txt").symlink_to("/nowhere")
        assert choose_target_in(folder, "a/call.wav", [".yaml"]) == "a/call.3.wav"
        (tmp_path / "x.url.yaml").write_text("")
        assert choose_target_in(folder, "x.url.yaml") == "x.1.url.yaml"
        long = "b" * 251 + ".wav"
        (tmp_path / long).write_text("")
        numbered = choose_target_in(folder, long)
        assert numbered.endswith(".1.wav") and len(numbered.encode()) <= 255
        folder.close()

    def test_file_away_writes_the_record_then_moves(self, tmp_path: Path) -> None:
        inbox, done = tmp_path / "inbox", tmp_path / "done"
        inbox.mkdir()
        (inbox / "c.wav").write_bytes(b"audio")
        (inbox / "c.wav.yaml").write_text("part: 1\n")
        files = InboxFiles(inbox, done, tmp_path / "failed")
        args = ("c.wav", files.target("done"), "c.wav", {"ok": True}, "done", {".yaml": ".yaml"})
        file_into(files.inbox, *args)
        assert (done / "c.wav").read_bytes() == b"audio"
        assert (done / "c.wav.yaml").exists() and (done / "c.wav.result.json").exists()
        assert list(inbox.iterdir()) == []
        # Filing again (after a crash) is harmless: the source is gone, the record rewritten.
        file_into(files.inbox, *args)
        assert (done / "c.wav").read_bytes() == b"audio"
        files.close()

    @pytest.mark.parametrize("earlier_filing_moved_the_audio", [False, True])
    def test_filing_ends_with_the_target_folder_synced(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, earlier_filing_moved_the_audio: bool
    ) -> None:
        """The journal calls a file filed once ``file_into`` returns: by then the record's data
        and every rename into done/ must be on disk, also when an interrupted filing had
        already moved the audio (only the record is written then)."""
        inbox, done = tmp_path / "inbox", tmp_path / "done"
        inbox.mkdir()
        (inbox / "c.wav").write_bytes(b"audio")
        files = InboxFiles(inbox, done, tmp_path / "failed")
        args = ("c.wav", files.target("done"), "c.wav", {"ok": True}, "done", {})
        if earlier_filing_moved_the_audio:
            file_into(files.inbox, *args)
            (done / "c.wav.result.json").unlink()  # its record's rename was lost in the crash
        synced: list[Path] = []
        real_fsync = os.fsync

        def fsync(fd: int) -> None:
            synced.append(Path(f"/proc/self/fd/{fd}").readlink())
            real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)
        file_into(files.inbox, *args)
        assert (done / "c.wav.result.json").exists()
        assert synced[-1] == done, synced
        assert any(path.parent == done and path != done for path in synced), "record not synced"
        files.close()


class TestMountTable:
    """Network and FUSE filesystems are polled; local ones use inotify."""

    def test_longest_mount_point_wins(self, tmp_path: Path) -> None:
        mountinfo = tmp_path / "mountinfo"
        mountinfo.write_text(
            "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
            "40 22 0:50 / /srv/audio rw,relatime shared:20 - nfs4 server:/audio rw\n"
            "41 22 0:51 / /srv/audio\\040box rw - fuse.sshfs host: rw\n"
        )
        assert filesystem_type(Path("/srv/audio/sales"), mountinfo) == "nfs4"
        assert filesystem_type(Path("/srv/audio box/x"), mountinfo) == "fuse.sshfs"
        assert filesystem_type(Path("/home/x"), mountinfo) == "ext4"
        assert filesystem_type(Path("/srv/audiobook"), mountinfo) == "ext4"

    @pytest.mark.parametrize(
        ("fs_type", "poll"),
        [("nfs4", True), ("cifs", True), ("fuse.sshfs", True), ("ext4", False), (None, False)],
    )
    def test_which_types_are_polled(self, fs_type: str | None, poll: bool) -> None:
        assert needs_polling(fs_type) is poll


class TestTranscript:
    """Messages become readable timed lines."""

    def test_render(self) -> None:
        body = {
            "messages": [
                {"text": "Hello.", "from": {"name": "Ana"}, "startTime": "2026-01-01T10:00:00Z"},
                {"text": "Hi!", "from": {}, "startTime": "2026-01-01T10:01:05.5Z"},
            ]
        }
        assert render_transcript(body) == (
            "[00:00:00] Ana: Hello.\n[00:01:05] Unknown speaker: Hi!\n"
        )
