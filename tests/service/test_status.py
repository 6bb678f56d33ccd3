"""``status`` and ``conversations`` read what a real daemon run left in the journal."""

from __future__ import annotations

from collections.abc import Callable

from service_harness import DaemonProcess, Site, wait_for

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav

NOT_AUDIO = b"Minutes of the meeting, typed, not recorded.\n"


def one_done_one_failed(site: Site, start_daemon: Callable[..., DaemonProcess]) -> DaemonProcess:
    daemon = start_daemon(site)
    daemon.wait_ready()
    (site.inbox / "good.wav").write_bytes(make_wav(1.0))
    (site.inbox / "notes.wav").write_bytes(NOT_AUDIO)
    site.wait_done("good.wav")
    site.wait_failed("notes.wav")
    return daemon


class TestStatusJson:
    """``status --json`` gives counts per inbox, failures with reasons, and the daemon's pid."""

    def test_counts_failures_and_running_daemon(
        self, site: Site, start_daemon: Callable[..., DaemonProcess]
    ) -> None:
        daemon = one_done_one_failed(site, start_daemon)

        report = site.cli_json("status")

        assert report["daemon"] == {"running": True, "pid": daemon.pid}
        assert report["journal"] == str(site.state_dir / "journal.sqlite3")
        [inbox] = report["inboxes"]
        assert inbox["path"] == str(site.inbox)
        assert inbox["profile"] == "default"
        assert inbox["counts"] == {
            "waiting": 0,
            "ready": 0,
            "held": 0,
            "uploading": 0,
            "submitted": 0,
            "completed": 0,
            "failed": 0,
            "filed_done": 1,
            "filed_failed": 1,
        }
        assert report["in_flight"] == []
        [failure] = report["recent_failures"]
        assert failure["file"] == "notes.wav"
        assert failure["reason"] == "not_audio"
        assert "neither WAV nor MP3" in failure["message"]
        assert failure["filedAs"] == str(site.failed / "notes.wav")

    def test_stopped_daemon_is_reported_as_not_running(
        self, site: Site, start_daemon: Callable[..., DaemonProcess]
    ) -> None:
        daemon = one_done_one_failed(site, start_daemon)
        assert daemon.stop() == 0

        report = site.cli_json("status")

        assert report["daemon"] == {"running": False, "pid": None}
        assert report["inboxes"][0]["counts"]["filed_done"] == 1

    def test_jobs_in_flight_have_an_age(
        self,
        site: Site,
        start_daemon: Callable[..., DaemonProcess],
        emulator_factory: Callable[..., EmulatorServer],
    ) -> None:
        slow = emulator_factory(job_seconds=60)
        site.base_url = slow.base_url
        site.write_config()
        daemon = start_daemon(site)
        daemon.wait_ready()
        (site.inbox / "long.wav").write_bytes(make_wav(1.0))

        def in_flight() -> list[dict[str, object]]:
            jobs: list[dict[str, object]] = site.cli_json("status")["in_flight"]
            return jobs

        [job] = wait_for(in_flight, "a job in flight")
        assert job["file"] == "long.wav"
        assert isinstance(job["jobId"], str) and job["jobId"]
        assert isinstance(job["ageSeconds"], float) and 0 <= job["ageSeconds"] < 60
        assert site.cli_json("status")["inboxes"][0]["counts"]["submitted"] == 1


class TestStatusText:
    """The human output is a table with the same facts, and copes with a missing journal."""

    def test_table_names_inbox_counts_and_failure(
        self, site: Site, start_daemon: Callable[..., DaemonProcess]
    ) -> None:
        daemon = one_done_one_failed(site, start_daemon)

        result = site.cli("status")

        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines[0].startswith(f"Daemon: running, pid {daemon.pid}")
        header = next(line for line in lines if line.startswith("inbox "))
        assert header.split() == [
            "inbox",
            "profile",
            "waiting",
            "ready",
            "held",
            "uploading",
            "submitted",
            "completed",
            "failed",
            "filed_done",
            "filed_failed",
        ]
        row = lines[lines.index(header) + 1].split()
        assert row == [str(site.inbox), "default", "0", "0", "0", "0", "0", "0", "0", "1", "1"]
        assert "Jobs in flight: 0" in lines
        failure = next(line for line in lines if "notes.wav" in line)
        assert "not_audio" in failure

    def test_no_journal_yet(self, site: Site) -> None:
        result = site.cli("status")
        assert result.returncode == 0
        assert "Journal: none yet" in result.stdout
        assert "Daemon: not running" in result.stdout
        report = site.cli_json("status")
        assert report["journal"] is None
        assert report["inboxes"][0]["counts"]["filed_done"] == 0
        assert not (site.state_dir / "journal.sqlite3").exists()

    def test_bad_configuration_is_exit_2(self, site: Site) -> None:
        site.config.write_text("symbl: [not, a, mapping]\n")
        result = site.cli("status")
        assert result.returncode == 2
        assert "config.yaml" in result.stderr


class TestConversations:
    """``conversations`` maps each conversation key to its Symbl conversationId."""

    def test_two_part_conversation(
        self, site: Site, start_daemon: Callable[..., DaemonProcess]
    ) -> None:
        daemon = start_daemon(site)
        daemon.wait_ready()
        for part in (1, 2):
            name = f"call-{part}.wav"
            (site.inbox / f"{name}.yaml").write_text(f"conversation: weekly\npart: {part}\n")
            (site.inbox / name).write_bytes(make_wav(0.5 * part, tone_hz=300 + part))
        first = site.wait_done("call-1.wav")
        second = site.wait_done("call-2.wav")
        assert first["conversationId"] == second["conversationId"]

        document = site.cli_json("conversations")

        assert document == {
            "conversations": [
                {
                    "inbox": str(site.inbox),
                    "key": "weekly",
                    "conversationId": first["conversationId"],
                    "partsDone": 2,
                    "rejected": False,
                }
            ]
        }
        text = site.cli("conversations").stdout.splitlines()
        assert text[0].split() == ["inbox", "key", "conversationId", "parts", "done", "rejected"]
        assert text[1].split() == [str(site.inbox), "weekly", first["conversationId"], "2", "no"]

    def test_none_yet(self, site: Site) -> None:
        assert site.cli_json("conversations") == {"conversations": []}
        assert "No journal yet" in site.cli("conversations").stdout
