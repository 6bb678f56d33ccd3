"""Hooks against real receivers on loopback: e-mail, a JSON endpoint, commands, pings."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from e2e_harness import DaemonHarness, wait_until
from receivers import HttpReceiver, SmtpReceiver, free_port

from daemon.files.samples import make_wav

APP_SECRET = "test-secret-value-42"  # what DaemonHarness configures
WEBHOOK_SECRET = "hook-test-webhook-secret-0c1d"
# Written by a command hook: its arguments and environment, one JSON file per run.
RECORDER = textwrap.dedent(
    """
    import json, os, sys, time
    out = sys.argv[1]
    name = f"{time.time_ns()}-{os.getpid()}.json"
    with open(os.path.join(out, name), "w") as handle:
        json.dump({"argv": sys.argv[2:], "env": dict(os.environ), "cwd": os.getcwd()}, handle)
    """
)
# A hook that hangs, with a child of its own that hangs too; both pids are written down.
HANGER = textwrap.dedent(
    """
    import os, subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with open(sys.argv[1], "a") as handle:  # a line per run
        handle.write(f"{os.getpid()} {child.pid}\\n")
    time.sleep(600)
    """
)


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as receiver:
        yield receiver


@pytest.fixture
def http() -> Iterator[HttpReceiver]:
    with HttpReceiver() as receiver:
        yield receiver


def with_hooks(
    harness_factory: Callable[..., DaemonHarness], hooks: list[dict[str, object]], **extra: object
) -> DaemonHarness:
    listen = f"127.0.0.1:{free_port()}"
    return harness_factory(
        extra={
            "hooks": hooks,
            "http": {"listen": listen, "webhook_secret": WEBHOOK_SECRET},
            **extra,
        }
    )


def metrics(harness: DaemonHarness) -> str:
    config = harness.config_path.read_text()
    listen = re.search(r"listen: (\S+)", config)
    assert listen is not None
    return httpx.get(f"http://{listen.group(1)}/metrics", timeout=5).text


def hook_runs(text: str, outcome: str) -> float:
    pattern = rf'symbl_inbox_hook_runs_total\{{[^}}]*outcome="{outcome}"[^}}]*\}} (\S+)'
    return sum(float(value) for value in re.findall(pattern, text))


def no_secret_in(blobs: list[bytes]) -> None:
    for blob in blobs:
        assert APP_SECRET.encode() not in blob
        assert WEBHOOK_SECRET.encode() not in blob


class TestNotifications:
    """Apprise delivers to a real SMTP server and a real HTTP endpoint, grouped in bursts."""

    def test_mail_and_json_receive_done_and_failed(
        self,
        harness_factory: Callable[..., DaemonHarness],
        smtp: SmtpReceiver,
        http: HttpReceiver,
    ) -> None:
        harness = with_hooks(
            harness_factory,
            [
                {
                    "on": ["done", "failed"],
                    "notify": [smtp.url(), f"json://127.0.0.1:{http.port}/alerts"],
                    "group_seconds": 1,
                }
            ],
        )
        harness.start()
        (harness.inbox / "weekly-sync.wav").write_bytes(make_wav(0.5))
        (harness.inbox / "notes.wav").write_bytes(b"this is text, not audio\n" * 10)
        harness.wait_filed(2)
        wait_until(lambda: smtp.mails and http.on("/alerts"), 20, "both notifications")
        mail_text = "\n".join(m.subject + "\n" + m.body for m in smtp.mails)
        posted = [request.json() for request in http.on("/alerts")]
        json_text = "\n".join(p["title"] + "\n" + p["message"] for p in posted)
        for text in (mail_text, json_text):
            assert "weekly-sync.wav" in text
            assert "notes.wav: not_audio" in text
        assert smtp.mails[0].recipients == ["ops@example.com"]
        assert smtp.mails[0].subject.startswith("symbl-inbox on ")
        harness.stop()
        no_secret_in([m.raw for m in smtp.mails] + list(http.everything()))

    def test_a_burst_of_failures_is_one_message(
        self, harness_factory: Callable[..., DaemonHarness], http: HttpReceiver
    ) -> None:
        harness = with_hooks(
            harness_factory,
            [{"on": ["failed"], "notify": [f"json://127.0.0.1:{http.port}/alerts"]}],
        )
        harness.start()
        for index in range(40):
            (harness.inbox / f"bad-{index:02}.wav").write_bytes(b"not audio at all" * 4)
        harness.wait_filed(40)
        wait_until(lambda: http.on("/alerts"), 20, "the grouped message")
        harness.stop()  # anything still gathered would be sent now
        [request] = http.on("/alerts")
        message = request.json()
        assert message["title"].endswith(": 40 failed")
        assert "Failed: 40 files (not_audio 40)" in message["message"]
        assert message["message"].count("\n- ") == 5
        assert "... and 35 more" in message["message"]

    def test_a_failing_receiver_is_retried_then_counted(
        self, harness_factory: Callable[..., DaemonHarness], http: HttpReceiver
    ) -> None:
        http.fail_next = 100
        harness = with_hooks(
            harness_factory,
            [
                {
                    "on": ["done"],
                    "notify": [f"json://127.0.0.1:{http.port}/alerts"],
                    "group_seconds": 0,
                    "retries": 1,
                }
            ],
        )
        harness.start()
        (harness.inbox / "a.wav").write_bytes(make_wav(0.3))
        harness.wait_filed(1)
        wait_until(lambda: len(http.on("/alerts")) >= 2, 20, "two attempts")
        wait_until(lambda: hook_runs(metrics(harness), "failed") == 1, 10, "the failure counted")
        assert list(harness.results()) == ["a.wav"]  # the file is done all the same
        assert not harness.exited()


class TestCommands:
    """A command runs with its arguments, the record's path and only the documented facts."""

    def test_command_gets_the_documented_environment(
        self, harness_factory: Callable[..., DaemonHarness], tmp_path: Path
    ) -> None:
        out = tmp_path / "runs"
        out.mkdir()
        script = tmp_path / "recorder.py"
        script.write_text(RECORDER)
        harness = with_hooks(
            harness_factory,
            [{"on": ["done", "failed"], "command": [sys.executable, str(script), str(out)]}],
        )
        harness.start(env={"SYMBL_APP_SECRET": APP_SECRET, "AWS_SECRET_ACCESS_KEY": "x" * 20})
        (harness.inbox / "call.wav").write_bytes(make_wav(0.3))
        (harness.inbox / "broken.wav").write_bytes(b"RIFF but nothing else")
        harness.wait_filed(2)
        wait_until(lambda: len(list(out.iterdir())) == 2, 20, "two hook runs")
        runs = {}
        for path in out.iterdir():
            run = json.loads(path.read_text())
            runs[run["env"]["SYMBL_INBOX_EVENT"]] = run
        done, failed = runs["done"], runs["failed"]
        assert done["argv"] == [str(harness.done / "call.wav.result.json")]
        assert json.loads(Path(done["argv"][0]).read_text())["status"] == "completed"
        assert failed["argv"] == [str(harness.failed / "broken.wav.error.json")]
        env = done["env"]
        extra = {"PWD", "LC_CTYPE"}  # the interpreter's own additions, not the daemon's
        assert set(env) - extra - {"PATH", "LANG"} == {k for k in env if k.startswith("SYMBL_")}
        assert env["SYMBL_INBOX_FILE"] == "call.wav"
        assert env["SYMBL_INBOX_INBOX"] == str(harness.inbox)
        assert env["SYMBL_INBOX_FILED_AS"] == str(harness.done / "call.wav")
        assert env["SYMBL_INBOX_PROFILE"] == "default"
        assert env["SYMBL_INBOX_JOB_ID"] and env["SYMBL_INBOX_CONVERSATION_ID"]
        assert failed["env"]["SYMBL_INBOX_REASON"] in ("truncated_audio", "not_audio")
        assert "SYMBL_APP_SECRET" not in env and "AWS_SECRET_ACCESS_KEY" not in env
        assert done["cwd"] == "/"
        wait_until(lambda: harness.event_count("hook_finished") == 2, 10, "two exits logged")
        finished = [e for e in harness.events() if e.get("event") == "hook_finished"]
        assert {e["exit_status"] for e in finished} == {0}
        no_secret_in([path.read_bytes() for path in out.iterdir()])

    def test_record_and_transcript_paths_name_what_was_filed_even_for_a_long_name(
        self, harness_factory: Callable[..., DaemonHarness], tmp_path: Path
    ) -> None:
        out = tmp_path / "runs"
        out.mkdir()
        script = tmp_path / "recorder.py"
        script.write_text(RECORDER)
        harness = harness_factory(
            profile={"params": {"languageCode": "en-US"}, "export": ["transcript"]},
            extra={
                "hooks": [{"on": ["done"], "command": [sys.executable, str(script), str(out)]}],
                "http": {"listen": f"127.0.0.1:{free_port()}"},
            },
        )
        harness.start()
        name = "m" * 247 + ".wav"  # 251 bytes: its record and transcript names are shortened
        (harness.inbox / name).write_bytes(make_wav(0.3))
        wait_until(lambda: len(list(out.iterdir())) == 1, 30, "the done hook ran")
        env = json.loads(next(out.iterdir()).read_text())["env"]
        assert env["SYMBL_INBOX_FILED_AS"] == str(harness.done / name)
        assert Path(env["SYMBL_INBOX_RECORD"]).is_file()
        assert json.loads(Path(env["SYMBL_INBOX_RECORD"]).read_text())["recordNameShortened"]
        assert Path(env["SYMBL_INBOX_TRANSCRIPT"]).is_file()

    def test_a_profile_hook_runs_in_addition_to_the_global_one(
        self, harness_factory: Callable[..., DaemonHarness], tmp_path: Path
    ) -> None:
        script = tmp_path / "recorder.py"
        script.write_text(RECORDER)
        folders = {name: tmp_path / name for name in ("global", "team", "other")}
        for folder in folders.values():
            folder.mkdir()

        def hook(name: str) -> dict[str, object]:
            return {"on": ["done"], "command": [sys.executable, str(script), str(folders[name])]}

        listen = f"127.0.0.1:{free_port()}"
        harness = harness_factory(
            profile={"params": {"languageCode": "en-US"}, "hooks": [hook("team")]},
            extra_profiles={"other": {"hooks": [hook("other")]}},
            extra={"hooks": [hook("global")], "http": {"listen": listen}},
        )
        harness.start()
        (harness.inbox / "a.wav").write_bytes(make_wav(0.3))
        harness.wait_filed(1)
        wait_until(
            lambda: all(any(folders[n].iterdir()) for n in ("global", "team")), 20, "both hooks"
        )
        harness.stop()
        assert not any(folders["other"].iterdir())  # another profile's hook is not ours

    def test_a_hanging_hook_is_cut_off_with_its_children(
        self, harness_factory: Callable[..., DaemonHarness], tmp_path: Path
    ) -> None:
        script = tmp_path / "hang.py"
        script.write_text(HANGER)
        pids = tmp_path / "pids"
        harness = with_hooks(
            harness_factory,
            [
                {
                    "on": ["done"],
                    "command": [sys.executable, str(script), str(pids)],
                    "timeout_seconds": 1,
                    "retries": 0,
                }
            ],
        )
        harness.start()
        (harness.inbox / "a.wav").write_bytes(make_wav(0.3))
        (harness.inbox / "b.wav").write_bytes(make_wav(0.4))
        harness.wait_filed(2)  # the hanging hook holds nothing up
        wait_until(lambda: hook_runs(metrics(harness), "timeout") >= 1, 20, "a time-out")
        first_run = pids.read_text().splitlines()[0]
        for pid in map(int, first_run.split()):
            wait_until(lambda pid=pid: not _alive(pid), 10, f"process {pid} to be gone")
        assert sorted(harness.results()) == ["a.wav", "b.wav"]
        timeouts = [e for e in harness.events() if e.get("outcome") == "timeout"]
        assert timeouts and timeouts[0]["hook"] == "hooks[0]"
        # A stop while the second file's hook may still hang leaves none of its processes.
        assert harness.stop() == 0
        for pid in map(int, pids.read_text().split()):
            wait_until(lambda pid=pid: not _alive(pid), 10, f"process {pid} to be gone")


class TestPing:
    """A ping hook says start, then success at its interval."""

    def test_start_and_success(
        self, harness_factory: Callable[..., DaemonHarness], http: HttpReceiver
    ) -> None:
        harness = with_hooks(
            harness_factory, [{"ping": f"{http.base}/ping/abc", "interval_seconds": 0.5}]
        )
        harness.start()
        wait_until(lambda: len(http.on("/ping/abc")) >= 2, 20, "two success pings")
        assert http.requests[0].path == "/ping/abc/start"
        assert not http.on("/ping/abc/fail")
        no_secret_in(list(http.everything()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie waiting for its parent counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
