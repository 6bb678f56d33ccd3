"""The status page at ``/`` in a real headless Chromium, while files flow."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_harness import DaemonHarness, wait_until
from receivers import free_port

from daemon.commands.status import StatusReport
from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav
from daemon.http.statuspage import render_page

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = 'evil <img src=x onerror="window.pwned=1"> & \x1b[31m.wav'


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed (Debian package chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    profile = tempfile.mkdtemp(prefix="symbl-inbox-chromium-")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 390, "height": 844},  # a phone
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


class TestStatusPage:
    """What a person reads: stalls, inboxes by state, jobs in flight, failures; names escaped."""

    def test_page_while_files_flow(
        self,
        browser: object,
        emulator_factory: Callable[..., EmulatorServer],
        harness_factory: Callable[..., DaemonHarness],
    ) -> None:
        server = emulator_factory(job_seconds=4.0)
        listen = f"127.0.0.1:{free_port()}"
        harness = harness_factory(emulator=server, extra={"http": {"listen": listen}})
        harness.start()
        (harness.inbox / "bad <i>.wav").write_bytes(b"plain text, not audio " * 5)
        wait_until(lambda: len(harness.errors()) == 1, 20, "the failure")
        for index in range(3):
            (harness.inbox / f"call-{index}.wav").write_bytes(make_wav(0.2 + index / 10))
        (harness.inbox / HOSTILE).write_bytes(make_wav(0.6))
        wait_until(lambda: "in_flight" in _submitted(harness), 20, "jobs in flight")

        page = browser.new_page()  # type: ignore[attr-defined]  # playwright's context
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        page.goto(f"http://{listen}/")

        assert page.title() == "symbl-inbox: working"
        assert page.inner_text("#stalls") == "No stalls: work proceeds."
        inbox_row = page.inner_text("#inboxes tbody tr")
        assert str(harness.inbox) in inbox_row and "default" in inbox_row
        headers = page.inner_text("#inboxes thead")
        assert "processing" in headers and "done" in headers and "in failed/" in headers
        jobs = page.inner_text("#jobs")
        assert "call-0.wav" in jobs and re.search(r"\t\d+s\t", jobs)
        failures = page.inner_text("#failures")
        assert "bad <i>.wav" in failures and "not_audio" in failures
        shown = page.inner_text("body")
        assert 'evil <img src=x onerror="window.pwned=1"> & \\x1b[31m.wav' in shown
        assert page.evaluate("window.pwned") is None and dialogs == []
        assert page.evaluate("document.documentElement.scrollWidth") <= 390

        # It refreshes itself: the counts move on without anyone reloading.
        harness.wait_filed(5, timeout=40)
        for _ in range(10):
            page.wait_for_event("load", timeout=20_000)
            if "No job in flight." in page.inner_text("body"):
                break
        assert "No job in flight." in page.inner_text("body")
        row = page.inner_text("#inboxes tbody tr").split("\t")
        assert row[-2:] == ["4", "1"]  # done, in failed/
        page.close()

    def test_upload_progress_and_stalls_render(self, browser: object) -> None:
        report = StatusReport(
            state_dir=Path("/var/lib/symbl-inbox"),
            journal=None,
            pid=42,
            inboxes=[],
            in_flight=[],
            failures=[],
            stalls=[
                {
                    "kind": "credentials_refused",
                    "since": "2026-01-01T00:00:00.000+00:00",
                    "message": "Symbl refused the app's credentials",
                }
            ],
            uploads=[
                {
                    "inbox": "/in",
                    "file": "big.wav",
                    "ageSeconds": 12.0,
                    "bytesSent": 3 * 1024 * 1024,
                    "bytesTotal": 12 * 1024 * 1024,
                }
            ],
        )
        page = browser.new_page()  # type: ignore[attr-defined]
        page.set_content(render_page(report, "host1", "2026-01-01T00:00:12"))
        assert page.title() == "symbl-inbox: stalled: credentials_refused"
        assert "credentials_refused since 2026-01-01" in page.inner_text("#stalls")
        uploads = page.inner_text("#uploads")
        assert "big.wav" in uploads and "25 %" in uploads and "3.0 MiB of 12.0 MiB" in uploads
        assert page.evaluate("document.querySelector('#uploads progress').value") == 3145728
        page.close()

    def test_inboxes_polled_at_a_kernel_limit_are_listed(self, browser: object) -> None:
        report = StatusReport(
            state_dir=Path("/var/lib/symbl-inbox"),
            journal=None,
            pid=42,
            inboxes=[],
            in_flight=[],
            failures=[],
            polled={
                "/srv/in/<b>team</b>": "fs.inotify.max_user_watches",
                "/srv/in/sales": "fs.inotify.max_user_watches",
            },
        )
        page = browser.new_page()  # type: ignore[attr-defined]
        page.set_content(render_page(report, "host1", "2026-01-01T00:00:12"))
        polled = page.inner_text("#polled")
        assert "Polled instead of watched (2)" in polled
        assert "/srv/in/<b>team</b>: fs.inotify.max_user_watches reached" in polled
        assert "/srv/in/sales: fs.inotify.max_user_watches reached" in polled
        page.close()


def _submitted(harness: DaemonHarness) -> str:
    return "in_flight" if harness.event_count("file_submitted") >= 2 else ""


class TestStatusText:
    """``status`` shows a hostile name as escapes: it cannot forge a line or steer a terminal."""

    def test_control_characters_in_a_failed_name(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        harness = harness_factory()
        harness.start()
        (harness.inbox / "evil\x1b[2J\nFAKE: all good.wav").write_bytes(b"not audio " * 10)
        harness.wait_filed(1)
        shown = subprocess.run(
            [sys.executable, "-m", "daemon", "--config", str(harness.config_path), "status"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
        assert "evil\\x1b[2J\\nFAKE: all good.wav: not_audio" in shown
        assert "\x1b" not in shown
        assert not any(line.startswith("FAKE") for line in shown.splitlines())
