"""The daemon's HTTP endpoint over real loopback HTTP: metrics, health and webhooks."""

from __future__ import annotations

import json
import shutil
import signal
import time
from collections.abc import Callable

import httpx
import pytest
import uvicorn
from endpoint_harness import Running, StartDaemon, wait_until
from metric_samples import sample
from prometheus_client.parser import text_string_to_metric_families

from daemon.emulator import EmulatorServer
from daemon.files.samples import make_wav
from daemon.http.endpoint import MAX_WEBHOOK_BYTES, SECRET_FILE

SECRET = "webhook-secret-for-the-endpoint-tests"
NOT_AUDIO = b"These are meeting notes, not audio.\n"


async def scrape(running: Running) -> str:
    response = await running.http.get(f"{running.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return response.text


async def healthz(running: Running) -> httpx.Response:
    return await running.http.get(f"{running.url}/healthz")


def drop_wavs(running: Running, *names: str) -> int:
    """Write distinct WAVs into the inbox; returns their total size."""
    total = 0
    for index, name in enumerate(names):
        data = make_wav(1.0 + index / 10, tone_hz=300 + 50 * index)
        (running.inbox / name).write_bytes(data)
        total += len(data)
    return total


async def journal_counts(running: Running, **expected: int) -> None:
    """Wait until the scraped per-state counts reach ``expected``: a record is written before
    its file moves and the journal says filed, so a record alone is not the end of filing."""

    async def reached() -> bool:
        text = await scrape(running)
        inbox = str(running.inbox)
        counts = {
            each.labels["state"]: each.value
            for family in text_string_to_metric_families(text)
            for each in family.samples
            if each.name == "symbl_inbox_files" and each.labels.get("inbox") == inbox
        }
        return all(counts.get(state) == value for state, value in expected.items())

    await wait_until(reached, 10)


class TestMetricsScrape:
    """A scrape after the daemon processed real files shows what happened."""

    async def test_files_bytes_and_api_counters(
        self, emulator: EmulatorServer, start_daemon: StartDaemon
    ) -> None:
        running = await start_daemon(emulator)
        size = drop_wavs(running, "a.wav", "b.wav")
        (running.inbox / "notes.wav").write_bytes(NOT_AUDIO)
        await running.wait_filed("a.wav", "b.wav", "notes.wav")
        await journal_counts(running, filed_done=2, filed_failed=1)
        text = await scrape(running)
        inbox = str(running.inbox)
        assert sample(text, "symbl_inbox_files", inbox=inbox, state="filed_done") == 2
        assert sample(text, "symbl_inbox_files", inbox=inbox, state="filed_failed") == 1
        assert sample(text, "symbl_inbox_uploaded_bytes_total") >= size
        assert sample(text, "symbl_inbox_token_refreshes_total") >= 1
        assert sample(text, "symbl_inbox_api_responses_total", code="201", **{"class": "2xx"}) == 2
        assert sample(text, "symbl_inbox_inbox_available", inbox=inbox) == 1
        assert sample(text, "symbl_inbox_uploads_in_progress") == 0
        assert sample(text, "symbl_inbox_jobs_in_flight") == 0
        assert sample(text, "symbl_inbox_credentials_rejected") == 0
        jobs = sample(text, "symbl_inbox_job_duration_seconds_count", status="completed")
        assert jobs == 2
        filed = "symbl_inbox_files_filed_total"
        assert sample(text, filed, inbox=inbox, outcome="done") == 2
        assert sample(text, filed, inbox=inbox, outcome="failed") == 1

    async def test_account_limit_shows_as_429(
        self, emulator_factory: Callable[..., EmulatorServer], start_daemon: StartDaemon
    ) -> None:
        running = await start_daemon(emulator_factory(max_jobs=1, job_seconds=1.0))
        drop_wavs(running, "first.wav", "second.wav", "third.wav")
        await running.wait_filed("first.wav", "second.wav", "third.wav", within=30)
        await journal_counts(running, filed_done=3)
        text = await scrape(running)
        assert sample(text, "symbl_inbox_api_responses_total", code="429", **{"class": "4xx"}) >= 1
        done = sample(text, "symbl_inbox_files", inbox=str(running.inbox), state="filed_done")
        assert done == 3


class TestHealth:
    """``/healthz`` is 200 while all is well and 503 with a reason otherwise."""

    async def test_ok_lists_every_inbox(
        self, emulator: EmulatorServer, start_daemon: StartDaemon
    ) -> None:
        running = await start_daemon(emulator)
        response = await healthz(running)
        assert response.status_code == 200
        assert response.json() == {
            "status": "ok",
            "inboxes": {str(running.inbox): True},
            "stalls": [],
        }

    async def test_an_inbox_known_by_its_id_is_watched(
        self, emulator: EmulatorServer, start_daemon: StartDaemon
    ) -> None:
        # The id names the inbox (the same share mounted elsewhere on other hosts); its folder
        # is still where the daemon looks.
        running = await start_daemon(emulator, inbox_id="sales")
        response = await healthz(running)
        assert response.status_code == 200
        assert response.json()["inboxes"] == {"sales": True}

    async def test_removed_inbox_is_503(
        self, emulator: EmulatorServer, start_daemon: StartDaemon
    ) -> None:
        running = await start_daemon(emulator)
        shutil.rmtree(running.inbox)
        response = await healthz(running)
        assert response.status_code == 503
        body = response.json()
        assert body["inboxes"] == {str(running.inbox): False}
        assert body["reasons"] == [f"inbox {running.inbox} is unavailable"]

    async def test_rejected_credentials_are_503(
        self, emulator_factory: Callable[..., EmulatorServer], start_daemon: StartDaemon
    ) -> None:
        server = emulator_factory(app_id="another-app", app_secret="another-app-secret")
        running = await start_daemon(server)
        drop_wavs(running, "a.wav")

        async def unhealthy() -> bool:
            return (await healthz(running)).status_code == 503

        await wait_until(unhealthy)
        body = (await healthz(running)).json()
        reasons = body["reasons"]
        assert len(reasons) == 1 and reasons[0].startswith("credentials_refused: ")
        assert [stall["kind"] for stall in body["stalls"]] == ["credentials_refused"]
        text = await scrape(running)
        assert sample(text, "symbl_inbox_credentials_rejected") == 1
        assert sample(text, "symbl_inbox_api_responses_total", code="401") >= 1


class TestWebhook:
    """``/webhook/<secret>`` wakes the job it names; anything else learns nothing."""

    async def test_webhook_files_a_job_long_before_the_first_poll(
        self, emulator: EmulatorServer, start_daemon: StartDaemon
    ) -> None:
        running = await start_daemon(
            emulator, poll_initial=20.0, public_url=True, webhook_secret=SECRET
        )
        started = time.monotonic()
        drop_wavs(running, "call.wav")
        # Without the webhook the first status check comes 20 s after submission.
        await running.wait_filed("call.wav", within=10)
        assert time.monotonic() - started < 10
        assert running.filed("call.wav") == running.root / "done" / "call.wav.result.json"
        landed = [d for d in emulator.state.webhook_deliveries if d.answered]
        assert landed and all(d.url == f"{running.url}/webhook/{SECRET}" for d in landed)

    async def test_id_instead_of_job_id_wakes_the_job(
        self, emulator: EmulatorServer, start_daemon: StartDaemon
    ) -> None:
        running = await start_daemon(emulator, poll_initial=20.0, webhook_secret=SECRET)
        drop_wavs(running, "call.wav")
        await wait_until(lambda: bool(running.daemon.job_wakeups))
        (job_id,) = running.daemon.job_wakeups
        await wait_until(lambda: emulator.state.job_status(job_id) == "completed")
        response = await running.http.post(
            f"{running.url}/webhook/{SECRET}", json={"id": job_id, "status": "completed"}
        )
        assert response.status_code == 200
        await running.wait_filed("call.wav", within=10)

    async def test_a_final_webhook_frees_the_slot_before_the_check_answers(
        self, emulator_factory: Callable[..., EmulatorServer], start_daemon: StartDaemon
    ) -> None:
        # One job at a time, and jobs that run far longer than the test.
        emulator = emulator_factory(job_seconds=600)
        running = await start_daemon(emulator, poll_initial=20.0, webhook_secret=SECRET, max_jobs=1)
        drop_wavs(running, "first.wav", "second.wav")
        await wait_until(
            lambda: len(emulator.state.submissions) == 1 and bool(running.daemon.tracking)
        )
        (first_job,) = running.daemon.job_wakeups
        # Symbl says the first job ended (here falsely): the second file goes at once...
        response = await running.http.post(
            f"{running.url}/webhook/{SECRET}", json={"jobId": first_job, "status": "completed"}
        )
        assert response.status_code == 200
        await wait_until(lambda: len(emulator.state.submissions) == 2)
        # ...and the check, which finds the first job still running, takes its slot back.
        await wait_until(lambda: running.daemon.scheduler.jobs_in_flight() == 2)
        assert running.filed("first.wav") is None
        assert emulator.state.job_status(first_job) == "scheduled"

    async def test_wrong_secret_is_an_ordinary_404(
        self, emulator: EmulatorServer, start_daemon: StartDaemon
    ) -> None:
        running = await start_daemon(emulator, webhook_secret=SECRET)
        body = {"jobId": "any", "status": "completed"}
        wrong = await running.http.post(f"{running.url}/webhook/{SECRET[:-1]}", json=body)
        unknown = await running.http.post(f"{running.url}/no-such-path", json=body)
        assert wrong.status_code == unknown.status_code == 404
        assert wrong.content == unknown.content

    async def test_unknown_job_is_still_200(
        self, emulator: EmulatorServer, start_daemon: StartDaemon
    ) -> None:
        running = await start_daemon(emulator, webhook_secret=SECRET)
        response = await running.http.post(
            f"{running.url}/webhook/{SECRET}", json={"jobId": "not-ours", "status": "completed"}
        )
        assert response.status_code == 200
        text = await scrape(running)
        assert sample(text, "symbl_inbox_webhooks_received_total", outcome="unknown") == 1

    @pytest.mark.parametrize(
        "body",
        [
            b"not json",
            b"\xff\xfe",
            b'["jobId", "status"]',
            b'{"status": "completed"}',
            b'{"jobId": "abc"}',
            b'{"jobId": 17, "status": "completed"}',
            b'{"jobId": "", "status": "completed"}',
            json.dumps({"jobId": "abc", "status": "x" * MAX_WEBHOOK_BYTES}).encode(),
        ],
        ids=["text", "binary", "array", "no-id", "no-status", "number", "empty-id", "huge"],
    )
    async def test_malformed_body_is_400(
        self, emulator: EmulatorServer, start_daemon: StartDaemon, body: bytes
    ) -> None:
        running = await start_daemon(emulator, webhook_secret=SECRET)
        response = await running.http.post(f"{running.url}/webhook/{SECRET}", content=body)
        assert response.status_code == 400

    async def test_secret_never_reaches_the_logs(
        self,
        emulator: EmulatorServer,
        start_daemon: StartDaemon,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        # No secret configured: the daemon generates one and keeps it in the state directory.
        running = await start_daemon(emulator, poll_initial=20.0, public_url=True)
        drop_wavs(running, "call.wav")
        await running.wait_filed("call.wav", within=10)
        secret = (running.root / "state" / SECRET_FILE).read_text().strip()
        broken = await running.http.post(f"{running.url}/webhook/{secret}", content=b"broken")
        assert broken.status_code == 400
        logs = running.logs.getvalue()
        assert '"event": "webhook_received"' in logs
        assert secret not in logs
        assert secret not in caplog.text
        record = running.filed("call.wav")
        assert record is not None and secret not in record.read_text()


class TestServing:
    """Uvicorn runs inside the daemon's loop without taking over its signals."""

    async def test_signal_handlers_stay_the_daemons(
        self, emulator: EmulatorServer, start_daemon: StartDaemon
    ) -> None:
        running = await start_daemon(emulator)
        assert (await healthz(running)).status_code == 200
        for signum in (signal.SIGTERM, signal.SIGINT):
            # Stock Uvicorn would have put its bound ``handle_exit`` here while serving.
            owner = getattr(signal.getsignal(signum), "__self__", None)
            assert not isinstance(owner, uvicorn.Server)
