"""Deliberate misbehaviour and webhooks, observed from a real client over loopback."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from emulator_http import api_client, webhook_receiver

from daemon.emulator import EmulatorServer, EmulatorState
from daemon.files.samples import make_wav

WAV = {"Content-Type": "audio/wav"}


def post_wav(client: httpx.Client, **params: str) -> httpx.Response:
    return client.post("/v1/process/audio", content=make_wav(0.5), headers=WAV, params=params)


class TestServerFaults:
    """A share of requests fails with 500/502/503 or a dropped connection, creating nothing."""

    def test_every_request_faulty_at_rate_one(
        self, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        server = emulator_factory()
        outcomes: set[str] = set()
        with api_client(server) as client:
            server.state.update_settings(fault_rate=1.0)
            for _ in range(20):
                try:
                    outcomes.add(str(post_wav(client).status_code))
                except httpx.TransportError:
                    outcomes.add("drop")
        assert outcomes <= {"500", "502", "503", "drop"}
        assert "drop" in outcomes and outcomes & {"500", "502", "503"}
        assert server.state.submissions == []
        faults = [record.fault for record in server.state.requests[1:]]
        assert len(faults) == 20 and None not in faults

    def test_dropped_connection_gives_no_status_line(
        self, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        server = emulator_factory()
        with api_client(server) as client:
            server.state.update_settings(fault_rate=1.0)
            drops = 0
            for _ in range(20):
                try:
                    client.get("/v1/job/anything")
                except (httpx.RemoteProtocolError, httpx.ReadError):
                    drops += 1
        assert drops > 0
        assert [r.status for r in server.state.requests if r.fault == "drop"] == [None] * drops

    def test_fault_rate_is_a_share(self, emulator_factory: Callable[..., EmulatorServer]) -> None:
        server = emulator_factory(seed=7)
        with api_client(server) as client:
            server.state.update_settings(fault_rate=0.3)
            for _ in range(100):
                try:
                    client.get("/v1/job/anything")
                except httpx.TransportError:
                    continue
        faulty = sum(1 for record in server.state.requests[1:] if record.fault is not None)
        assert 15 <= faulty <= 45


class TestLostResponses:
    """The job exists, but the client hears an error or nothing."""

    def test_lost_response_creates_the_job_anyway(
        self, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        server = emulator_factory(lost_response_rate=1.0)
        heard: list[str] = []
        with api_client(server) as client:
            for _ in range(10):
                try:
                    heard.append(str(post_wav(client).status_code))
                except httpx.TransportError:
                    heard.append("drop")
        assert "201" not in heard
        records = server.state.submissions
        assert len(records) == 10 and all(record.lost_response for record in records)
        for record in records:
            assert server.state.job_status(record.job_id) in (
                "scheduled",
                "in_progress",
                "completed",
            )
        lost_faults = {r.fault for r in server.state.requests if r.fault}
        assert lost_faults <= {"lost-500", "lost-502", "lost-503", "lost-drop"}


class TestLatency:
    """Added latency delays every API answer."""

    def test_latency_is_added(self, emulator_factory: Callable[..., EmulatorServer]) -> None:
        server = emulator_factory(latency_seconds=0.2)
        with api_client(server) as client:
            started = time.monotonic()
            client.get("/v1/job/unknown")
            elapsed = time.monotonic() - started
        assert elapsed >= 0.2


class TestWebhooks:
    """Every status change is POSTed with ``jobId`` and ``id``, retried until answered 200."""

    def test_every_status_change_is_delivered_in_order(self, emulator: EmulatorServer) -> None:
        with webhook_receiver() as receiver, api_client(emulator) as client:
            job_id = post_wav(client, webhookUrl=receiver.url).json()["jobId"]
            emulator.state.wait_for(lambda state: len(receiver.answered_200) == 3, 5)
        assert receiver.answered_200 == [
            {"jobId": job_id, "id": job_id, "status": status}
            for status in ("scheduled", "in_progress", "completed")
        ]

    def test_refused_updates_are_sent_again(self, emulator: EmulatorServer) -> None:
        with webhook_receiver(fail_first=2) as receiver, api_client(emulator) as client:
            post_wav(client, webhookUrl=receiver.url)

            def all_delivered(state: EmulatorState) -> bool:
                return len(receiver.answered_200) == 3

            emulator.state.wait_for(all_delivered, 10)
        assert [payload["status"] for payload in receiver.received[:3]] == ["scheduled"] * 3
        first = emulator.state.webhook_deliveries[0]
        assert (first.status, first.attempts, first.answered) == ("scheduled", 3, True)

    @pytest.mark.parametrize("failure_rate", [1.0])
    def test_failed_job_is_announced(
        self, emulator_factory: Callable[..., EmulatorServer], failure_rate: float
    ) -> None:
        server = emulator_factory(job_failure_rate=failure_rate)
        with webhook_receiver() as receiver, api_client(server) as client:
            post_wav(client, webhookUrl=receiver.url)
            server.state.wait_for(lambda state: len(receiver.answered_200) == 3, 5)
        assert receiver.answered_200[-1]["status"] == "failed"
