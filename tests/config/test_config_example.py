"""The shipped ``config.example.yaml`` stays valid against the real loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config import Config, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.yaml"
SYSTEM_FOLDERS = ("/srv/audio", "/var/lib/symbl-inbox")


@pytest.fixture
def example(tmp_path: Path) -> Config:
    """The example with its system folders moved under ``tmp_path`` and its secrets on disk."""
    text = EXAMPLE.read_text(encoding="utf-8")
    for system_folder in SYSTEM_FOLDERS:
        assert system_folder in text, f"the example no longer mentions {system_folder}"
        text = text.replace(system_folder, f"{tmp_path}{system_folder}")
    for inbox in ("sales/inbox", "support/inbox", "meetings"):
        (tmp_path / "srv/audio" / inbox).mkdir(parents=True)
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "symbl-app-secret").write_text("example-app-secret\n", encoding="utf-8")
    (credentials / "symbl-webhook-secret").write_text("example-hook-secret", encoding="utf-8")
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    environ = {
        "SYMBL_APP_ID": "example-app-id",
        "CREDENTIALS_DIRECTORY": str(credentials),
        "SMTP_PASSWORD": "example-smtp-password",
    }
    return load_config(path, environ=environ)


class TestExampleConfiguration:
    """The example loads cleanly and means what its comments say."""

    def test_loads_without_warnings(self, example: Config) -> None:
        assert example.warnings == ()
        assert example.symbl.app_id == "example-app-id"
        assert example.symbl.app_secret == "example-app-secret"
        assert example.http is not None
        assert example.http.webhook_secret == "example-hook-secret"

    def test_hooks(self, example: Config) -> None:
        mail, command, ping = example.hooks
        assert mail.events == ("failed", "stalled", "recovered") and mail.group_seconds == 300
        assert "example-smtp-password" in mail.notify[0]
        assert command.command[0] == "/usr/local/bin/copy-transcript"
        assert ping.ping is not None and ping.interval_seconds == 240

    def test_three_teams(self, example: Config) -> None:
        assert [inbox.profile for inbox in example.inboxes] == [
            "sales-calls",
            "support-es",
            "meetings",
        ]
        sales = example.profiles["sales-calls"].params
        assert (sales["mode"], sales["diarizationSpeakerCount"]) == ("phone", 2)
        assert sales["enableSpeakerDiarization"] is True
        assert [tracker["name"] for tracker in sales["trackers"]] == [
            "Promotion Mention",
            "Competitor Mention",
        ]
        assert example.profiles["support-es"].params["languageCode"] == "es-ES"
        meetings = example.profiles["meetings"]
        assert meetings.continuation_pattern is not None
        assert meetings.continuation_pattern.match("standup-2024-05-02-part2.mp3") is not None
        assert "summary" in meetings.export

    def test_folders_prepared(self, example: Config, tmp_path: Path) -> None:
        assert example.state_dir == tmp_path / "var/lib/symbl-inbox"
        for inbox in example.inboxes:
            assert inbox.done.is_dir()
            assert inbox.failed.is_dir()
