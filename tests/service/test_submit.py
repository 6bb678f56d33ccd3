"""``submit``: one file by hand against the emulator: progress, job state, exit codes."""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from pathlib import Path

from service_harness import Site

from daemon.commands.submit import ProgressBar
from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav

CONVERSATION_LINE = re.compile(r"^conversationId: (\d+)$", re.MULTILINE)
JOB_LINE = re.compile(r"^jobId: ([0-9a-f-]{36})$", re.MULTILINE)


def audio_file(tmp_path: Path, seconds: float = 1.0) -> Path:
    path = tmp_path / "one-off.wav"
    path.write_bytes(make_wav(seconds))
    return path


class TestSubmitAccepted:
    """A good file is uploaded with progress; --wait follows the job to completed."""

    def test_wait_until_completed(self, site: Site, tmp_path: Path) -> None:
        path = audio_file(tmp_path)

        result = site.cli("submit", str(path), "--profile", "default", "--wait")

        assert result.returncode == 0, result.stderr
        assert CONVERSATION_LINE.search(result.stdout)
        job_id = JOB_LINE.search(result.stdout)
        assert job_id is not None
        assert result.stdout.rstrip().endswith("status: completed")
        assert f"job {job_id.group(1)}: completed" in result.stderr
        size = path.stat().st_size
        assert re.search(
            rf"uploading {size / 1024:.1f} KiB / {size / 1024:.1f} KiB  100%", (result.stderr)
        )
        # A one-off submission leaves the daemon's journal alone.
        assert not site.state_dir.exists()

    def test_without_wait_exits_once_accepted(self, site: Site, tmp_path: Path) -> None:
        result = site.cli("submit", str(audio_file(tmp_path)), "--profile", "default")
        assert result.returncode == 0, result.stderr
        assert CONVERSATION_LINE.search(result.stdout) and JOB_LINE.search(result.stdout)
        assert "status:" not in result.stdout

    def test_appends_to_an_existing_conversation(self, site: Site, tmp_path: Path) -> None:
        first = site.cli("submit", str(audio_file(tmp_path)), "--profile", "default")
        conversation = CONVERSATION_LINE.search(first.stdout)
        assert conversation is not None
        second_path = tmp_path / "second.wav"
        second_path.write_bytes(make_wav(0.7, tone_hz=200))

        second = site.cli(
            "submit",
            str(second_path),
            "--profile",
            "default",
            "--conversation-id",
            conversation.group(1),
            "--wait",
        )

        assert second.returncode == 0, second.stderr
        assert f"conversationId: {conversation.group(1)}" in second.stdout


class TestSubmitRefused:
    """Bad files, failed jobs and API refusals exit 1; usage and config errors exit 2."""

    def test_not_audio_is_exit_1_before_any_upload(self, site: Site, tmp_path: Path) -> None:
        path = tmp_path / "notes.wav"
        path.write_text("meeting notes\n")

        result = site.cli("submit", str(path), "--profile", "default", "--wait")

        assert result.returncode == 1
        assert "not_audio" in result.stderr
        assert "uploading" not in result.stderr
        assert result.stdout == ""

    def test_stereo_is_refused_like_the_daemon_does(self, site: Site, tmp_path: Path) -> None:
        path = tmp_path / "stereo.wav"
        path.write_bytes(make_wav(0.5, channels=2))
        result = site.cli("submit", str(path), "--profile", "default")
        assert result.returncode == 1
        assert "stereo_audio" in result.stderr

    def test_failed_job_is_exit_1(
        self, tmp_path: Path, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        failing = emulator_factory(job_failure_rate=1.0)
        site = Site(tmp_path / "site", failing.base_url)

        result = site.cli("submit", str(audio_file(tmp_path)), "--profile", "default", "--wait")

        assert result.returncode == 1
        assert result.stdout.rstrip().endswith("status: failed")

    def test_api_refusal_shows_the_api_message(
        self, tmp_path: Path, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        strict = emulator_factory(app_id="service-tests", app_secret="the-right-secret")
        site = Site(tmp_path / "site", strict.base_url, app_secret="a-wrong-secret-123")

        result = site.cli("submit", str(audio_file(tmp_path)), "--profile", "default")

        assert result.returncode == 1
        assert "upload failed:" in result.stderr
        assert "401" in result.stderr
        assert "uploading" not in result.stderr

    def test_unknown_profile_lists_the_known_ones(self, site: Site, tmp_path: Path) -> None:
        result = site.cli("submit", str(audio_file(tmp_path)), "--profile", "nope")
        assert result.returncode == 2
        assert "unknown profile 'nope'; the configuration has: default" in result.stderr

    def test_missing_file_is_a_usage_error(self, site: Site, tmp_path: Path) -> None:
        result = site.cli("submit", str(tmp_path / "absent.wav"), "--profile", "default")
        assert result.returncode == 2
        assert "no such file" in result.stderr

    def test_profile_is_required(self, site: Site, tmp_path: Path) -> None:
        result = site.cli("submit", str(audio_file(tmp_path)))
        assert result.returncode == 2
        assert "--profile" in result.stderr


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class TestProgressBar:
    """A terminal gets one redrawn line; a pipe gets a few plain lines, never carriage returns."""

    def test_terminal_redraws_one_line(self) -> None:
        stream = _Terminal()
        bar = ProgressBar(4096, stream)
        for sent in (1024, 2048, 4096):
            bar.update(sent)
        bar.finish()
        text = stream.getvalue()
        assert text.startswith("\r")
        assert text.count("\n") == 1 and text.endswith("\n")
        assert "4.0 KiB / 4.0 KiB  100%" in text

    def test_pipe_gets_plain_lines_per_quarter(self) -> None:
        stream = io.StringIO()
        bar = ProgressBar(100 * 1024, stream)
        for sent in range(1024, 100 * 1024 + 1, 1024):
            bar.update(sent)
        bar.finish()
        lines = stream.getvalue().splitlines()
        assert "\r" not in stream.getvalue()
        assert [line.split()[6] for line in lines] == ["1%", "25%", "50%", "75%", "100%"]
