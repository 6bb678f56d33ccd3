"""The decisions of daemon.hooks: grouping, message text, a command's arguments and environment."""

from __future__ import annotations

from pathlib import Path

from daemon.config.model import Config, Hook, Profile, SymblSettings
from daemon.hooks import (
    FIRST_NAMES,
    Burst,
    Happening,
    HookEvent,
    HookRunner,
    command_argv,
    command_environment,
    compose,
    retry_delay,
)
from daemon.logs import masker


def failed(name: str, reason: str = "not_audio", message: str = "not WAV or MP3") -> Happening:
    return Happening(
        HookEvent.FAILED,
        1_700_000_000.0,
        inbox="/srv/in",
        file=name,
        record=f"/srv/failed/{name}.error.json",
        reason=reason,
        message=message,
    )


class TestBurst:
    """Events are gathered until quiet for a moment, or for group_seconds at most."""

    def test_empty_burst_is_never_due(self) -> None:
        assert Burst(60.0).due() is None

    def test_due_once_quiet(self) -> None:
        burst = Burst(60.0, quiet=5.0)
        burst.add(failed("a.wav"), now=100.0)
        burst.add(failed("b.wav"), now=103.0)
        assert burst.due() == 108.0

    def test_a_steady_stream_is_cut_at_the_window(self) -> None:
        burst = Burst(60.0, quiet=5.0)
        for second in range(0, 200):
            burst.add(failed(f"{second}.wav"), now=100.0 + second * 0.3)
        assert burst.due() == 160.0
        assert len(burst.take()) == 200
        assert burst.due() is None

    def test_zero_window_sends_each_at_once(self) -> None:
        burst = Burst(0.0)
        burst.add(failed("a.wav"), now=100.0)
        assert burst.due() == 100.0


class TestCompose:
    """One message names what happened: counts by reason and the first few files."""

    def test_two_hundred_failures_make_one_short_message(self) -> None:
        happenings = [failed(f"call-{i:03}.wav") for i in range(150)]
        happenings += [failed(f"x-{i}.wav", "rejected_by_api", "400") for i in range(50)]
        title, body = compose(happenings, "host1")
        assert title == "symbl-inbox on host1: 200 failed"
        assert "Failed: 200 files (not_audio 150, rejected_by_api 50)" in body
        assert body.count("\n- ") == FIRST_NAMES
        assert "- /srv/in/call-000.wav: not_audio: not WAV or MP3" in body
        assert f"... and {200 - FIRST_NAMES} more" in body

    def test_a_single_file_is_named_in_the_title(self) -> None:
        title, _ = compose([failed("team/standup.wav")], "h")
        assert title == "symbl-inbox on h: failed: standup.wav (not_audio)"

    def test_stalls_and_recoveries(self) -> None:
        stalled = Happening(
            HookEvent.STALLED, 10.0, stall="credentials_refused", message="401", since=10.0
        )
        title, body = compose([stalled], "h")
        assert title == "symbl-inbox on h: stalled: credentials_refused"
        assert "Stalled: credentials_refused since 1970-01-01T00:00:10.000+00:00: 401" in body

    def test_control_characters_in_names_cannot_forge_lines(self) -> None:
        _, body = compose([failed("evil\nFailed: 0 files\x1b[31m.wav")], "h")
        assert "evil\\nFailed: 0 files\\x1b[31m.wav" in body
        assert "\x1b" not in body

    def test_registered_secrets_are_masked(self) -> None:
        masker.register(["hook-test-secret-value"])
        _, body = compose([failed("a.wav", message="token hook-test-secret-value")], "h")
        assert "hook-test-secret-value" not in body


class TestCommand:
    """A command gets its own arguments plus the record, and only the documented environment."""

    def test_record_path_is_the_last_argument(self) -> None:
        happening = failed("a.wav")
        assert command_argv(["/bin/copy", "--to", "/x"], happening) == [
            "/bin/copy",
            "--to",
            "/x",
            "/srv/failed/a.wav.error.json",
        ]

    def test_stall_events_have_no_record_argument(self) -> None:
        stalled = Happening(HookEvent.STALLED, 1.0, stall="state_full", message="m", since=1.0)
        assert command_argv(["/bin/alert"], stalled) == ["/bin/alert"]

    def test_environment_is_clean(self) -> None:
        ours = {"PATH": "/usr/bin", "LANG": "de_DE.UTF-8", "SYMBL_APP_SECRET": "s3cr3t-value"}
        env = command_environment(failed("a.wav"), ours)
        assert env["PATH"] == "/usr/bin" and env["LANG"] == "de_DE.UTF-8"
        assert env["SYMBL_INBOX_EVENT"] == "failed"
        assert env["SYMBL_INBOX_REASON"] == "not_audio"
        assert env["SYMBL_INBOX_RECORD"] == "/srv/failed/a.wav.error.json"
        assert set(env) - {"PATH", "LANG"} == {k for k in env if k.startswith("SYMBL_INBOX_")}
        assert "s3cr3t-value" not in env.values()

    def test_defaults_without_path_or_lang(self) -> None:
        env = command_environment(failed("a.wav"), {})
        assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin" and env["LANG"] == "C.UTF-8"


class TestRetries:
    """Retries back off from 2 s, doubling, to a minute at most."""

    def test_delays(self) -> None:
        assert [retry_delay(n) for n in (1, 2, 3, 4, 10)] == [2.0, 4.0, 8.0, 16.0, 60.0]


class TestRouting:
    """A file's events reach global hooks and its profile's; a stall reaches every listener."""

    def runner(self) -> HookRunner:
        def hook(where: str, *events: str) -> Hook:
            return Hook(events=events, command=("/bin/true",), where=where)

        config = Config(
            source=Path("config.yaml"),
            symbl=SymblSettings("http://api", "app", "secret-value"),
            state_dir=Path("/state"),
            profiles={
                "a": Profile("a", {}, hooks=(hook("a", "stalled", "failed"),)),
                "b": Profile("b", {}, hooks=(hook("b", "failed"),)),
            },
            inboxes=(),
            hooks=(hook("global", "done"),),
        )
        return HookRunner(config, count=lambda *_: None, health=lambda: (True, ""))

    def test_files(self) -> None:
        runner = self.runner()
        assert runner.listens(HookEvent.DONE, "a") and runner.listens(HookEvent.DONE, None)
        assert runner.listens(HookEvent.FAILED, "b")
        assert not runner.listens(HookEvent.FAILED, None)

    def test_stalls(self) -> None:
        runner = self.runner()
        assert runner.listens(HookEvent.STALLED)  # profile a's hook
        assert not runner.listens(HookEvent.RECOVERED)
