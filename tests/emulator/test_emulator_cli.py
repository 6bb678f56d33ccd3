"""``symbl-inbox emulator`` as a real child process on a loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from daemon import cli

GRANT = {"type": "application", "appId": "the-id", "appSecret": "the-secret"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_emulator(*extra: str, env: dict[str, str] | None = None) -> Iterator[str]:
    port = free_port()
    command = [sys.executable, "-m", "daemon", "emulator", "--port", str(port), *extra]
    process = subprocess.Popen(command, env={**os.environ, **(env or {})}, stderr=subprocess.PIPE)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base_url}/_emulator/settings", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, "the emulator exited early"
                assert time.monotonic() < deadline, "the emulator did not start"
                time.sleep(0.02)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


class TestEmulatorCommand:
    """The command serves the API with the options it was given and stops cleanly on SIGTERM."""

    def test_options_reach_the_settings(self) -> None:
        with running_emulator("--max-jobs", "3", "--job-seconds", "0.1") as base_url:
            settings = httpx.get(f"{base_url}/_emulator/settings").json()
        assert (settings["max_jobs"], settings["job_seconds"]) == (3, 0.1)

    def test_job_time_options_reach_the_settings(self) -> None:
        options = ("--job-seconds-per-audio-second", "0.5", "--job-seconds-spread", "0.05")
        with running_emulator(*options) as base_url:
            settings = httpx.get(f"{base_url}/_emulator/settings").json()
        assert settings["job_seconds_per_audio_second"] == 0.5
        assert settings["job_seconds_spread"] == 0.05

    def test_app_credentials_are_enforced(self) -> None:
        with running_emulator("--app-id", "the-id", "--app-secret", "the-secret") as base_url:
            url = f"{base_url}/oauth2/token:generate"
            assert httpx.post(url, json=GRANT).status_code == 200
            assert httpx.post(url, json={**GRANT, "appSecret": "nope"}).status_code == 401
            shown = httpx.get(f"{base_url}/_emulator/settings").json()
        assert shown["app_secret"] == "***"

    def test_secret_from_the_environment(self) -> None:
        env = {"SYMBL_EMULATOR_APP_SECRET": "the-secret"}
        with running_emulator("--app-id", "the-id", env=env) as base_url:
            response = httpx.post(f"{base_url}/oauth2/token:generate", json=GRANT)
        assert response.status_code == 200

    def test_bad_values_are_a_usage_error(self, capsys: object) -> None:
        assert cli.main(["emulator", "--fault-rate", "2"]) == 2
        assert cli.main(["emulator", "--app-id", "only-the-id"]) == 2
        assert cli.main(["emulator", "--job-seconds-spread", "1.5"]) == 2
        assert cli.main(["emulator", "--job-seconds-per-audio-second", "-1"]) == 2
