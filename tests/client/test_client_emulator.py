"""The Symbl client against the emulator over loopback HTTP, with faults injected on purpose."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from daemon.config.model import SymblSettings
from daemon.emulator import EmulatorServer, EmulatorState
from daemon.files.audio import AudioProblem
from daemon.files.samples import make_mp3, make_wav, write_large_wav
from daemon.symbl.client import (
    AuthenticationError,
    FinalError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    Submission,
    SymblClient,
    TransientError,
)

APP_ID, APP_SECRET = "inbox-app", "inbox-app-secret-0123"
# Patient enough that a 30 % fault rate never exhausts it (0.3 ** 10), quick enough for tests.
FAST_RETRY = RetryPolicy(attempts=10, initial=0.001, maximum=0.01)
Factory = Callable[..., EmulatorServer]


def client_for(server: EmulatorServer, retry: RetryPolicy = FAST_RETRY) -> SymblClient:
    settings = SymblSettings(base_url=server.base_url, app_id=APP_ID, app_secret=APP_SECRET)
    return SymblClient(settings, retry=retry)


@pytest.fixture
async def client(emulator: EmulatorServer) -> AsyncIterator[SymblClient]:
    async with client_for(emulator) as symbl:
        yield symbl


def write_wavs(folder: Path, count: int) -> list[Path]:
    paths = []
    for index in range(count):
        path = folder / f"call-{index}.wav"
        path.write_bytes(make_wav(seconds=0.05, tone_hz=200.0 + index))
        paths.append(path)
    return paths


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def submission_requests(state: EmulatorState) -> list[Any]:
    return [request for request in state.requests if request.path.startswith("/v1/process")]


async def wait_until(state: EmulatorState, predicate: Callable[[EmulatorState], bool]) -> None:
    await asyncio.to_thread(state.wait_for, predicate, 5.0)


class TestTransientFaults:
    """Server errors and dropped connections are retried until the call succeeds."""

    async def test_every_upload_succeeds_under_a_30_percent_fault_rate(
        self, emulator_factory: Factory, tmp_path: Path
    ) -> None:
        server = emulator_factory(fault_rate=0.3, seed=11)
        paths = write_wavs(tmp_path, 20)
        async with client_for(server) as symbl:
            results = await asyncio.gather(*(symbl.submit_file(path, {}) for path in paths))
            retries = symbl.stats.retries
        state = server.state
        faults = [request.fault for request in submission_requests(state) if request.fault]
        assert len(faults) >= 3
        assert retries >= len(faults)
        assert sorted(record.sha256 for record in state.submissions) == sorted(
            sha256_of(path) for path in paths
        )
        for path, result in zip(paths, results, strict=True):
            assert result.sha256 == sha256_of(path)
            assert result.attempts[-1].status == 201

    async def test_server_errors_and_drops_are_both_retried(
        self, emulator_factory: Factory
    ) -> None:
        server = emulator_factory(fault_rate=0.5, seed=3)
        async with client_for(server) as symbl:
            first = await symbl.submit_url("https://example.com/a.wav", {})
            statuses = [await symbl.job_status(first.job_id) for _ in range(20)]
        kinds = {request.fault for request in server.state.requests if request.fault}
        assert "drop" in kinds
        assert kinds & {"500", "502", "503"}
        assert set(statuses) <= {"scheduled", "in_progress", "completed"}

    async def test_retries_run_out_as_a_transient_error(self, emulator_factory: Factory) -> None:
        server = emulator_factory(fault_rate=1.0)
        retry = RetryPolicy(attempts=3, initial=0.001, maximum=0.01)
        async with client_for(server, retry=retry) as symbl:
            with pytest.raises(TransientError) as caught:
                await symbl.submit_url("https://example.com/a.wav", {})
        assert len(caught.value.attempts) == 3
        assert server.state.submissions == []


class TestLostResponses:
    """An accepted upload whose answer is lost is sent again, and both attempts are on record."""

    async def test_lost_answers_are_retried_and_recorded(
        self, emulator_factory: Factory, tmp_path: Path
    ) -> None:
        server = emulator_factory(lost_response_rate=0.5, seed=5)
        paths = write_wavs(tmp_path, 8)
        async with client_for(server) as symbl:
            results = [await symbl.submit_file(path, {}) for path in paths]
        records = server.state.submissions
        assert len(records) == sum(len(result.attempts) for result in results)
        assert any(len(result.attempts) > 1 for result in results)
        for path, result in zip(paths, results, strict=True):
            sent = [record for record in records if record.sha256 == sha256_of(path)]
            assert [record.lost_response for record in sent] == [True] * (len(sent) - 1) + [False]
            assert sent[-1].conversation_id == result.conversation_id
            assert all(attempt.status != 201 for attempt in result.attempts[:-1])


class TestFinalErrors:
    """Refusals are classified, carry the server's message, and are not retried."""

    async def test_stereo_audio(self, client: SymblClient, tmp_path: Path) -> None:
        stereo = tmp_path / "stereo.wav"
        stereo.write_bytes(make_wav(seconds=0.05, channels=2))
        with pytest.raises(FinalError, match="2 channels") as caught:
            await client.submit_file(stereo, {})
        assert caught.value.status == 400
        assert len(caught.value.attempts) == 1

    async def test_invalid_parameter(self, client: SymblClient, wav: Path) -> None:
        with pytest.raises(FinalError, match="confidenceThreshold") as caught:
            await client.submit_file(wav, {"confidenceThreshold": 0.2})
        assert caught.value.status == 400
        assert "message" in caught.value.body

    async def test_bad_audio_is_refused_before_anything_is_sent(
        self, emulator: EmulatorServer, client: SymblClient, tmp_path: Path
    ) -> None:
        text = tmp_path / "notes.wav"
        text.write_bytes(b"these are meeting notes, not audio" * 10)
        with pytest.raises(AudioProblem):
            await client.submit_file(text, {})
        assert submission_requests(emulator.state) == []

    async def test_unknown_conversation_on_put(self, client: SymblClient, wav: Path) -> None:
        with pytest.raises(NotFoundError) as file_error:
            await client.submit_file(wav, {}, conversation_id="404404")
        with pytest.raises(NotFoundError) as url_error:
            await client.submit_url("https://example.com/b.wav", {}, conversation_id="404404")
        assert file_error.value.status == url_error.value.status == 404
        assert file_error.value.body == url_error.value.body
        assert file_error.value.body["message"] in str(file_error.value)

    async def test_unknown_job(self, client: SymblClient) -> None:
        with pytest.raises(NotFoundError, match="could not be found"):
            await client.job_status("00000000-0000-0000-0000-000000000000")

    async def test_bad_credentials(self, emulator_factory: Factory) -> None:
        server = emulator_factory(app_id=APP_ID, app_secret="the-real-secret-value")
        async with client_for(server) as symbl:
            with pytest.raises(AuthenticationError) as caught:
                await symbl.submit_url("https://example.com/a.wav", {})
            assert symbl.stats.auth_failures == 1
        assert caught.value.status == 401
        assert APP_ID in str(caught.value)
        assert APP_SECRET not in str(caught.value)
        assert server.state.submissions == []

    async def test_job_limit_is_rate_limited_at_once(self, emulator_factory: Factory) -> None:
        server = emulator_factory(max_jobs=1, job_seconds=60.0)
        async with client_for(server) as symbl:
            await symbl.submit_url("https://example.com/a.wav", {})
            with pytest.raises(RateLimitedError, match="concurrent jobs") as caught:
                await symbl.submit_url("https://example.com/b.wav", {})
        assert caught.value.status == 429
        assert len(caught.value.attempts) == 1


class TestTokens:
    """Tokens are renewed before they expire, and a revoked one is replaced transparently."""

    async def test_tokens_expiring_mid_run_never_fail_a_call(
        self, emulator_factory: Factory
    ) -> None:
        server = emulator_factory(token_ttl=0.4)
        async with client_for(server) as symbl:
            job = (await symbl.submit_url("https://example.com/a.wav", {})).job_id
            # Four token requests span at least two lifetimes: renewal ahead, then a new one.
            while symbl.stats.token_refreshes < 4:
                await symbl.job_status(job)
        api = [request for request in server.state.requests if request.path.startswith("/v1/")]
        refused = [index for index, request in enumerate(api) if request.status == 401]
        # The API returns its cached token until it expires, so a call may meet the expiry;
        # it is then repeated at once with a new token, and the caller never sees a failure.
        assert len(refused) <= 2
        assert all(api[index + 1].status == 200 for index in refused)
        assert len(api) >= 5

    async def test_revoked_token_is_replaced_without_a_failed_call(
        self, emulator: EmulatorServer, client: SymblClient, wav: Path
    ) -> None:
        await client.submit_file(wav, {})
        emulator.state.expire_all_tokens()
        result = await client.submit_file(wav, {})
        assert [attempt.status for attempt in result.attempts] == [401, 201]
        assert client.stats.token_refreshes == 2
        assert len(emulator.state.submissions) == 2


class TestParameterEncoding:
    """Every documented parameter arrives at the server as it was sent."""

    EVERY_PARAM: dict[str, Any] = {  # noqa: RUF012 - read-only test data
        "name": "Quarterly review: sales & marketing",
        "webhookUrl": "http://127.0.0.1:9/hook?team=sales",
        "customVocabulary": ["Symbl", "async audio", "Zoë"],
        "confidenceThreshold": 0.75,
        "detectEntities": True,
        "detectPhrases": False,
        "enableSeparateRecognitionPerChannel": True,
        "enableSpeakerDiarization": True,
        "enableAllTrackers": False,
        "enableSummary": True,
        "entities": [{"customType": "Product", "text": "Inbox Pro"}],
        "channelMetadata": [
            {"channel": 1, "speaker": {"name": "Ann", "email": "ann@example.com"}},
            {"channel": 2, "speaker": {"name": "Bo"}},
        ],
        "languageCode": "en-GB",
        "mode": "phone",
        "trackers": [{"name": "Promotion Mention", "vocabulary": ["discount", "special offer"]}],
        "diarizationSpeakerCount": 2,
        "features": {"featureList": ["insights", "callScore"]},
        "metadata": {"salesStage": "qualification", "prospectCompany": "Acme"},
    }

    async def test_file_call_query(
        self, emulator: EmulatorServer, client: SymblClient, wav: Path
    ) -> None:
        await client.submit_file(wav, self.EVERY_PARAM)
        record = emulator.state.submissions[-1]
        assert record.params == self.EVERY_PARAM
        assert [value for key, value in record.raw_query if key == "customVocabulary"] == [
            "Symbl",
            "async audio",
            "Zoë",
        ]
        assert dict(record.raw_query)["detectPhrases"] == "false"
        assert dict(record.raw_query)["enableSummary"] == "true"

    async def test_url_call_json(self, emulator: EmulatorServer, client: SymblClient) -> None:
        await client.submit_url("https://example.com/call.mp3", self.EVERY_PARAM)
        record = emulator.state.submissions[-1]
        assert record.params == self.EVERY_PARAM
        assert record.raw_query == ()
        assert record.url == "https://example.com/call.mp3"

    async def test_appending_keeps_the_conversation(
        self, emulator: EmulatorServer, client: SymblClient, wav: Path
    ) -> None:
        first = await client.submit_file(wav, {"name": "part one"})
        second = await client.submit_file(wav, {}, conversation_id=first.conversation_id)
        third = await client.submit_url(
            "https://example.com/3.wav", {}, conversation_id=first.conversation_id
        )
        assert second.conversation_id == third.conversation_id == first.conversation_id
        methods = [(record.method, record.path) for record in emulator.state.submissions]
        assert methods == [
            ("POST", "/v1/process/audio"),
            ("PUT", f"/v1/process/audio/{first.conversation_id}"),
            ("PUT", f"/v1/process/audio/url/{first.conversation_id}"),
        ]


class TestStreamedUpload:
    """What the server hashed is what was on disk, with the sniffed Content-Type and Bearer."""

    async def test_large_wav_hash_and_size(
        self, emulator: EmulatorServer, client: SymblClient, tmp_path: Path
    ) -> None:
        path = tmp_path / "large.wav"
        write_large_wav(path, 5 * 1024 * 1024 + 3)
        result = await client.submit_file(path, {})
        record = emulator.state.submissions[-1]
        assert (record.sha256, record.size) == (result.sha256, result.size)
        assert result.sha256 == sha256_of(path)
        assert (record.content_type, record.auth) == ("audio/wav", "bearer")

    async def test_mp3_content_type(
        self, emulator: EmulatorServer, client: SymblClient, tmp_path: Path
    ) -> None:
        path = tmp_path / "call.mp3"
        path.write_bytes(make_mp3(seconds=1.0))
        result = await client.submit_file(path, {})
        assert emulator.state.submissions[-1].content_type == "audio/mpeg"
        assert emulator.state.submissions[-1].sha256 == result.sha256


class TestResults:
    """Job status and every conversation part can be read once the job is completed."""

    async def test_every_part(
        self, emulator: EmulatorServer, client: SymblClient, wav: Path
    ) -> None:
        params = {"name": "results", "enableSummary": True}
        submitted: Submission = await client.submit_file(wav, params)
        await wait_until(
            emulator.state, lambda state: state.job_status(submitted.job_id) == "completed"
        )
        assert await client.job_status(submitted.job_id) == "completed"
        conversation = await client.conversation(submitted.conversation_id)
        assert conversation["id"] == submitted.conversation_id
        messages = await client.conversation(submitted.conversation_id, "messages", verbose=True)
        assert "messages" in messages
        keys = {
            "topics": "topics",
            "questions": "questions",
            "action-items": "actionItems",
            "follow-ups": "followUps",
            "entities": "entities",
            "summary": "summary",
        }
        for part, key in keys.items():
            assert key in await client.conversation(submitted.conversation_id, part)
        assert isinstance(await client.conversation(submitted.conversation_id, "trackers"), list)


class TestCancellation:
    """Cancelling a call during its retry wait (shutdown) ends it at once."""

    async def test_cancel_during_backoff(self, emulator_factory: Factory) -> None:
        server = emulator_factory(fault_rate=1.0)
        patient = RetryPolicy(attempts=5, initial=60.0, maximum=60.0)
        async with client_for(server, retry=patient) as symbl:
            task = asyncio.create_task(symbl.submit_url("https://example.com/a.wav", {}))
            await wait_until(server.state, lambda state: len(state.requests) >= 1)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1.0)
        assert done == {task}
        assert task.cancelled()
        assert len(server.state.requests) == 1


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "call.wav"
    path.write_bytes(make_wav(seconds=0.1))
    return path
