"""SIGHUP reloads the configuration live; exports are fetched and filed beside the audio."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from e2e_harness import DaemonHarness, wait_until

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav


def edit_config(harness: DaemonHarness, change: Callable[[dict[str, Any]], None]) -> None:
    config = yaml.safe_load(harness.config_path.read_text())
    change(config)
    harness.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def second_inbox(root: Path) -> dict[str, Any]:
    (root / "inbox-b").mkdir(exist_ok=True)
    return {
        "path": str(root / "inbox-b"),
        "profile": "default",
        "done": str(root / "done-b"),
        "failed": str(root / "failed-b"),
        "settle_seconds": 0.2,
    }


def reload(harness: DaemonHarness, expect_event: str) -> None:
    before = harness.event_count(expect_event)
    assert harness.process is not None
    harness.process.send_signal(signal.SIGHUP)
    wait_until(lambda: harness.event_count(expect_event) > before, 15, expect_event)


class TestReload:
    """Inboxes come and go on SIGHUP; a broken file changes nothing; work in flight is kept."""

    def test_reload_adds_and_removes_inboxes(self, harness: DaemonHarness) -> None:
        harness.start()
        edit_config(harness, lambda c: c["inboxes"].append(second_inbox(harness.root)))
        reload(harness, "config_reloaded")
        (harness.root / "inbox-b" / "new.wav").write_bytes(make_wav(0.2))
        wait_until(lambda: (harness.root / "done-b" / "new.wav").exists(), 20, "inbox b")

        edit_config(harness, lambda c: c.update(inboxes=c["inboxes"][1:]))
        reload(harness, "config_reloaded")
        (harness.inbox / "ignored.wav").write_bytes(make_wav(0.2))
        (harness.root / "inbox-b" / "after.wav").write_bytes(make_wav(0.3))
        wait_until(lambda: (harness.root / "done-b" / "after.wav").exists(), 20, "inbox b")
        assert (harness.inbox / "ignored.wav").exists()
        assert not any("ignored.wav" in str(e.get("file")) for e in harness.events())

    def test_a_broken_config_is_reported_and_the_old_one_kept(self, harness: DaemonHarness) -> None:
        harness.start()
        good = harness.config_path.read_text()
        harness.config_path.write_text(good.replace("languageCode: en-US", "languageCode: xx-XX"))
        reload(harness, "config_kept")
        problems = [
            e["problem"] for e in harness.events() if e["event"] == "config_reload_rejected"
        ]
        lines = harness.config_path.read_text().splitlines()
        line = next(number for number, text in enumerate(lines, 1) if "xx-XX" in text)
        assert problems == [
            f"{harness.config_path}:{line}: profiles.default.params.languageCode: "
            "unsupported language 'xx-XX'"
        ]
        (harness.inbox / "still.wav").write_bytes(make_wav(0.2))
        harness.wait_filed(1)
        assert harness.results()["still.wav"]["parameters"]["languageCode"] == "en-US"
        assert harness.process is not None and harness.process.poll() is None

    def test_removing_an_inbox_keeps_its_running_job(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
    ) -> None:
        harness = harness_factory(emulator=emulator_factory(job_seconds=2.0))
        harness.start()
        (harness.inbox / "in-flight.wav").write_bytes(make_wav(0.2))
        wait_until(lambda: harness.event_count("file_submitted") == 1, 20, "the submission")
        edit_config(harness, lambda c: c["inboxes"].append(second_inbox(harness.root)))
        edit_config(harness, lambda c: c.update(inboxes=c["inboxes"][1:]))
        reload(harness, "config_reloaded")
        harness.wait_filed(1, timeout=20)
        assert harness.results()["in-flight.wav"]["status"] == "completed"

    def test_a_changed_profile_applies_to_files_not_yet_submitted(
        self, harness: DaemonHarness
    ) -> None:
        harness.start()
        (harness.inbox / "p-2.wav.yaml").write_text("conversation: k\npart: 2\n")
        (harness.inbox / "p-2.wav").write_bytes(make_wav(0.2))
        wait_until(lambda: harness.event_count("part_held") == 1, 10, "part 2 to be held")
        edit_config(
            harness,
            lambda c: c["profiles"]["default"]["params"].update(confidenceThreshold=0.8),
        )
        reload(harness, "config_reloaded")
        (harness.inbox / "p-1.wav.yaml").write_text("conversation: k\npart: 1\n")
        (harness.inbox / "p-1.wav").write_bytes(make_wav(0.1))
        harness.wait_filed(2)
        sent = [record.params for record in harness.emulator.state.submissions]
        assert [params.get("confidenceThreshold") for params in sent] == [0.8, 0.8]

    def test_a_changed_log_level_applies_at_once(self, harness: DaemonHarness) -> None:
        harness.start()
        edit_config(harness, lambda c: c.update(log_level="warning"))
        reload(harness, "config_reloaded")
        (harness.inbox / "quiet.wav").write_bytes(make_wav(0.2))
        (harness.inbox / "loud.wav").write_bytes(b"not audio")
        harness.wait_filed(2)
        events = [e["event"] for e in harness.events()]
        after = events[events.index("config_reloaded") + 1 :]
        assert "file_failed" in after  # a warning still gets through
        assert "file_seen" not in after and "file_filed" not in after


class TestStopping:
    """SIGTERM during an upload stops within the bound and the file is sent after a restart."""

    def test_sigterm_during_an_upload(
        self,
        harness_factory: Callable[..., DaemonHarness],
        emulator_factory: Callable[..., EmulatorServer],
    ) -> None:
        harness = harness_factory(emulator=emulator_factory(latency_seconds=2.0))
        harness.start()
        (harness.inbox / "cut-short.wav").write_bytes(make_wav(0.3))
        wait_until(lambda: harness.event_count("upload_started") == 1, 20, "the upload")
        assert harness.stop(signal.SIGTERM) == 0
        harness.start()
        harness.wait_filed(1, timeout=30)
        assert harness.results()["cut-short.wav"]["status"] == "completed"


class TestExports:
    """A profile's exports land in done/: a transcript file and the rest in the result."""

    def test_exports_are_written_beside_the_audio(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        tracker = {"name": "Price", "vocabulary": ["price"]}
        profile = {
            "params": {"languageCode": "en-US", "trackers": [tracker], "enableSummary": True},
            "export": ["transcript", "messages", "topics", "questions", "action_items",
                       "follow_ups", "summary", "entities", "trackers"],
        }  # fmt: skip
        harness = harness_factory(profile=profile)
        harness.start()
        (harness.inbox / "board-meeting.wav").write_bytes(make_wav(1.0))
        harness.wait_filed(1)
        result = harness.results()["board-meeting.wav"]
        exports = result["exports"]
        assert set(exports) == {
            "messages", "topics", "questions", "action_items", "follow_ups", "summary",
            "entities", "trackers",
        }  # fmt: skip
        assert exports["messages"][0]["text"]
        assert isinstance(exports["trackers"], list)
        assert "export_errors" not in result
        transcript = (harness.done / "board-meeting.wav.transcript.txt").read_text()
        first_line = transcript.splitlines()[0]
        assert first_line.startswith("[00:00:00] ")
        assert "board-meeting.wav" in first_line
