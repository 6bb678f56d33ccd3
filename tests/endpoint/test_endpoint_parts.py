"""The endpoint's parts on their own: the kept webhook secret, the metrics, start and stop."""

from __future__ import annotations

import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from endpoint_harness import LOOPBACK, free_port, write_config
from prometheus_client.parser import text_string_to_metric_families

from daemon.config import load_config
from daemon.config.model import Config, HttpSettings
from daemon.http.endpoint import SECRET_FILE, resolve_webhook_secret, start_endpoint
from daemon.http.metrics import Metrics
from daemon.logs import MASK, masker
from daemon.service import Daemon
from daemon.symbl.client import SymblClient

SECRET = "configured-webhook-secret"


def config_in(tmp_path: Path, webhook_secret: str | None = None) -> Config:
    for name in ("inbox", "done", "failed", "state"):
        (tmp_path / name).mkdir(exist_ok=True)
    path = write_config(tmp_path, "http://127.0.0.1:9", free_port(), webhook_secret=webhook_secret)
    return load_config(path)


def samples_of(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (each.name, frozenset(each.labels.items())): each.value
        for family in text_string_to_metric_families(text)
        for each in family.samples
    }


class TestWebhookSecret:
    """Without a configured secret one is generated once, kept private, and reused."""

    def test_configured_secret_wins_and_nothing_is_written(self, tmp_path: Path) -> None:
        config = config_in(tmp_path, SECRET)
        assert resolve_webhook_secret(config) == SECRET
        assert not (config.state_dir / SECRET_FILE).exists()

    def test_generated_secret_survives_a_restart(self, tmp_path: Path) -> None:
        first = resolve_webhook_secret(config_in(tmp_path))
        again = resolve_webhook_secret(config_in(tmp_path))
        assert first == again and len(first) >= 32

    def test_generated_secret_is_for_our_user_only(self, tmp_path: Path) -> None:
        config = config_in(tmp_path)
        resolve_webhook_secret(config)
        kept = config.state_dir / SECRET_FILE
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        kept.chmod(0o644)
        resolve_webhook_secret(config)
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600

    def test_generated_secret_is_masked_in_logs(self, tmp_path: Path) -> None:
        secret = resolve_webhook_secret(config_in(tmp_path))
        assert masker.scrub(f"/webhook/{secret}") == f"/webhook/{MASK}"

    def test_empty_kept_secret_is_an_error_not_a_new_secret(self, tmp_path: Path) -> None:
        config = config_in(tmp_path)
        (config.state_dir / SECRET_FILE).write_text("\n")
        with pytest.raises(ValueError, match="is empty"):
            resolve_webhook_secret(config)


@pytest.fixture
async def idle_daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    """A daemon that was never run, with a real (unused) client whose counters tests can set."""
    config = config_in(tmp_path, SECRET)
    client = SymblClient(config.symbl)
    yield Daemon(config, client=client)
    await client.aclose()


class TestMetrics:
    """Reported events and the bound daemon's live state render as Prometheus text."""

    async def test_api_responses_carry_code_and_class(self, idle_daemon: Daemon) -> None:
        stats = idle_daemon.client.stats
        stats.responses.update({201: 4, 401: 2, 429: 1, 503: 3})
        stats.retries, stats.token_refreshes, stats.bytes_uploaded = 5, 2, 1234
        metrics = Metrics()
        metrics.bind(idle_daemon)
        found = samples_of((await metrics.render())[0].decode())
        responses = "symbl_inbox_api_responses_total"
        for code, kind, count in (("401", "4xx", 2), ("429", "4xx", 1), ("503", "5xx", 3)):
            assert found[(responses, frozenset({("code", code), ("class", kind)}))] == count
        assert found[("symbl_inbox_api_retries_total", frozenset())] == 5
        assert found[("symbl_inbox_token_refreshes_total", frozenset())] == 2
        assert found[("symbl_inbox_uploaded_bytes_total", frozenset())] == 1234

    async def test_job_histogram_and_filings(self, idle_daemon: Daemon) -> None:
        metrics = Metrics()
        metrics.bind(idle_daemon)
        metrics.job_finished("/in", "completed", 12.0)
        metrics.job_finished("/in", "completed", 400.0)
        metrics.job_finished("/in", "failed", 3.0)
        metrics.file_filed("/in", "failed", "job_failed")
        metrics.file_filed("/in", "done", None)
        found = samples_of((await metrics.render())[0].decode())
        completed = frozenset({("inbox", "/in"), ("status", "completed")})
        assert found[("symbl_inbox_job_duration_seconds_count", completed)] == 2
        assert found[("symbl_inbox_job_duration_seconds_sum", completed)] == 412.0
        le_15 = frozenset({*completed, ("le", "15.0")})
        assert found[("symbl_inbox_job_duration_seconds_bucket", le_15)] == 1
        filed = "symbl_inbox_files_filed_total"
        done = frozenset({("inbox", "/in"), ("outcome", "done"), ("reason", "")})
        assert found[(filed, done)] == 1

    async def test_two_instances_keep_separate_series(self) -> None:
        first, second = Metrics(), Metrics()
        first.job_finished("/in", "completed", 1.0)
        text = (await second.render())[0].decode()
        assert "symbl_inbox_job_duration_seconds_count" not in text


class TestStartAndStop:
    """Port 0 picks a free port, and stop() lets go of it."""

    async def test_port_zero_then_stop_frees_the_port(self, idle_daemon: Daemon) -> None:
        settings = HttpSettings(listen=f"{LOOPBACK}:0", webhook_secret=SECRET)
        endpoint = await start_endpoint(idle_daemon, settings)
        assert endpoint.port > 0
        async with httpx.AsyncClient(trust_env=False) as http:
            response = await http.get(f"http://{LOOPBACK}:{endpoint.port}/healthz")
        # Never run: the startup scan has not happened.
        assert response.status_code == 503
        assert response.json()["reasons"] == ["starting: the startup scan is not done"]
        await endpoint.stop()
        with socket.socket() as probe:
            probe.bind((LOOPBACK, endpoint.port))

    async def test_a_taken_port_is_an_error(self, idle_daemon: Daemon) -> None:
        with socket.socket() as taken:
            taken.bind((LOOPBACK, 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            settings = HttpSettings(listen=f"{LOOPBACK}:{port}", webhook_secret=SECRET)
            with pytest.raises(OSError):
                await start_endpoint(idle_daemon, settings)
