"""The daemon end to end: every way a file arrives reaches done/ with a true record."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from e2e_harness import DaemonHarness, sha256_of, wait_until

from daemon.files.samples import make_mp3, make_wav

# Names that writers and desktops leave around: the daemon must never touch them.
LEFT_ALONE = (
    ".rsync-upload.wav.Xy12ab",
    "partial.wav.part",
    "download.mp3.tmp",
    "edit.wav~",
    ".edit.wav.swp",
    "Thumbs.db",
    "desktop.ini",
    "._call.wav",
    "notes.txt",
)


def write_slowly(path: Path, data: bytes, pieces: int = 5, pause: float = 0.05) -> None:
    """Write in place in chunks, as a recorder does (pauses well inside the settle window)."""
    step = max(1, len(data) // pieces)
    with open(path, "wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start : start + step])
            handle.flush()
            time.sleep(pause)


class TestEveryRoute:
    """Files written in place, moved in, copied, present before start, in any case, all arrive."""

    def test_two_hundred_files_by_every_route_reach_done(
        self, harness_factory: Callable[..., DaemonHarness], tmp_path: Path
    ) -> None:
        harness = harness_factory()
        inbox, staging = harness.inbox, tmp_path / "staging"
        staging.mkdir()
        expected: dict[str, str] = {}

        def audio(index: int) -> bytes:
            return make_wav(0.05 + index / 4000) if index % 3 else make_mp3(0.2, salt=index)

        for index in range(40):  # present before the daemon starts
            name = f"before-{index}.wav" if index % 3 else f"before-{index}.mp3"
            data = audio(index)
            (inbox / name).write_bytes(data)
            expected[name] = sha256_of(data)
        for name in LEFT_ALONE:
            (inbox / name).write_bytes(b"not for the daemon")
        harness.start()

        def drop(index: int) -> None:
            data = audio(1000 + index)
            route = index % 4
            name = f"r{route}-{index}" + (".wav" if index % 3 else ".mp3")
            if route == 3:
                name = name.upper()
            expected[name] = sha256_of(data)
            if route == 0:
                write_slowly(inbox / name, data)
            elif route == 1:
                (staging / name).write_bytes(data)
                (staging / name).rename(inbox / name)
            else:
                (staging / name).write_bytes(data)
                shutil.copy(staging / name, inbox / name)

        writers = [threading.Thread(target=drop, args=(index,)) for index in range(160)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join()

        harness.wait_filed(200, timeout=90)
        results = harness.results()
        assert harness.errors() == {}
        assert set(results) == set(expected)
        for name, result in results.items():
            assert result["sha256"] == expected[name]
            assert result["status"] == "completed"
            assert result["conversationId"].isdigit() and result["jobId"]
            assert result["parameters"]["languageCode"] == "en-US"
            assert (harness.done / name).exists()
        assert sorted(harness.submissions_by_sha().values()) == [1] * 200
        for name in LEFT_ALONE:
            assert (inbox / name).read_bytes() == b"not for the daemon"
        assert harness.stop() == 0

    def test_a_file_that_keeps_growing_is_followed_until_it_stops(
        self, harness: DaemonHarness
    ) -> None:
        harness.start()
        data = make_wav(2.0)
        # Ten writes 0.1 s apart: growing for 1 s, five times the 0.2 s settle window.
        write_slowly(harness.inbox / "long.wav", data, pieces=10, pause=0.1)
        harness.wait_filed(1)
        assert harness.results()["long.wav"]["sha256"] == sha256_of(data)
        assert harness.submissions_by_sha() == {sha256_of(data): 1}

    def test_a_sidecar_written_first_is_followed(self, harness: DaemonHarness) -> None:
        harness.start()
        (harness.inbox / "call.wav.yaml").write_text("params:\n  confidenceThreshold: 0.9\n")
        (harness.inbox / "call.wav").write_bytes(make_wav(0.3))
        harness.wait_filed(1)
        assert harness.results()["call.wav"]["parameters"]["confidenceThreshold"] == 0.9
        # The record is written first, then the audio and its sidecar move beside it.
        wait_until(lambda: (harness.done / "call.wav.yaml").exists(), 10, "the sidecar filed")
        assert harness.emulator.state.submissions[0].params["confidenceThreshold"] == 0.9

    def test_a_name_clash_in_done_gets_a_suffix(self, harness: DaemonHarness) -> None:
        harness.done.mkdir()
        (harness.done / "same.wav").write_bytes(b"an older file, kept")
        harness.start()
        (harness.inbox / "same.wav").write_bytes(make_wav(0.2))
        harness.wait_filed(1)
        assert (harness.done / "same.wav").read_bytes() == b"an older file, kept"
        assert "same.1.wav" in harness.results()


class TestWatching:
    """Polling inboxes, recursive inboxes and inboxes that are missing at start."""

    def test_polling_inbox_picks_files_up(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        harness = harness_factory(inbox_options={"watch": "poll", "poll_interval_seconds": 0.2})
        harness.start()
        (harness.inbox / "polled.mp3").write_bytes(make_mp3(0.5))
        harness.wait_filed(1)
        assert "polled.mp3" in harness.results()

    def test_recursive_inbox_keeps_relative_paths(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        harness = harness_factory(inbox_options={"recursive": True})
        harness.start()
        (harness.inbox / "team-a" / "monday").mkdir(parents=True)
        (harness.inbox / "team-a" / "monday" / "standup.wav").write_bytes(make_wav(0.2))
        harness.wait_filed(1)
        assert "team-a/monday/standup.wav" in harness.results()
        assert (harness.done / "team-a" / "monday" / "standup.wav").exists()

    def test_missing_inbox_is_reported_and_picked_up_when_it_appears(
        self, harness: DaemonHarness
    ) -> None:
        shutil.rmtree(harness.inbox)
        harness.start()
        wait_until(lambda: harness.event_count("inbox_unavailable") >= 1, 10, "the report")
        harness.inbox.mkdir()
        (harness.inbox / "late.wav").write_bytes(make_wav(0.2))
        harness.wait_filed(1, timeout=30)
        assert "late.wav" in harness.results()

    def test_skip_duplicates_points_at_the_original(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        harness = harness_factory(inbox_options={"on_duplicate": "skip"})
        harness.start()
        data = make_wav(0.3)
        (harness.inbox / "first.wav").write_bytes(data)
        harness.wait_filed(1)
        (harness.inbox / "again.wav").write_bytes(data)
        harness.wait_filed(2)
        again = harness.results()["again.wav"]
        first = harness.results()["first.wav"]
        assert again["status"] == "skipped_duplicate"
        assert again["duplicate_of"]["conversationId"] == first["conversationId"]
        assert harness.submissions_by_sha() == {sha256_of(data): 1}


class TestLifecycle:
    """SIGTERM stops cleanly and running jobs resume after a restart."""

    def test_sigterm_exits_zero_and_a_running_job_is_resumed_after_restart(
        self, harness_factory: Callable[..., DaemonHarness], emulator_factory: Callable[..., object]
    ) -> None:
        slow = emulator_factory(job_seconds=3.0)
        harness = harness_factory(emulator=slow)
        harness.start()
        data = make_wav(0.3)
        (harness.inbox / "resume.wav").write_bytes(data)
        wait_until(lambda: harness.event_count("file_submitted") == 1, 20, "the submission")
        assert harness.stop(signal.SIGTERM) == 0
        assert harness.results() == {}
        harness.start()
        harness.wait_filed(1)
        assert harness.results()["resume.wav"]["status"] == "completed"
        assert harness.submissions_by_sha() == {sha256_of(data): 1}

    def test_sigint_during_an_upload_exits_zero_and_loses_nothing(
        self, harness_factory: Callable[..., DaemonHarness], emulator_factory: Callable[..., object]
    ) -> None:
        laggy = emulator_factory(latency_seconds=2.0)
        harness = harness_factory(emulator=laggy)
        harness.start()
        (harness.inbox / "interrupted.wav").write_bytes(make_wav(0.3))
        wait_until(lambda: harness.event_count("upload_started") == 1, 20, "the upload")
        assert harness.stop(signal.SIGINT) == 0
        harness.start()
        harness.wait_filed(1, timeout=30)
        assert "interrupted.wav" in harness.results()

    def test_a_second_daemon_on_the_same_state_dir_refuses_to_run(
        self, harness: DaemonHarness
    ) -> None:
        harness.start()
        second = subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(harness.config_path), "run",
             "--log-format", "json"],
            capture_output=True,
            timeout=30,
        )  # fmt: skip
        assert second.returncode == 1
        assert b"state_dir_unavailable" in second.stdout
        assert f"pid {harness.process.pid}".encode() in second.stdout  # type: ignore[union-attr]
