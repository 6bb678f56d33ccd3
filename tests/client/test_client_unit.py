"""Unit checks of the Symbl client's wire details, against an ``httpx.MockTransport``.

The behaviour under real HTTP (faults, lost responses, expiring tokens) is covered against the
emulator in ``test_client_emulator.py``; here only what one request looks like byte for byte,
and the decisions the client takes on one answer.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from structlog.testing import capture_logs

from daemon.config.model import SymblSettings
from daemon.files.samples import make_mp3, make_wav, write_large_wav
from daemon.logs import masker
from daemon.symbl import client as client_module
from daemon.symbl.client import (
    AuthenticationError,
    FileChangedError,
    FinalError,
    NotFoundError,
    RateLimitedError,
    RetryPolicy,
    SymblClient,
    TransientError,
)

SECRET = "s3cret-app-secret-value"
TOKEN = "tok-0123456789abcdef"
FAST_RETRY = RetryPolicy(attempts=3, initial=0.001, maximum=0.005)
Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]


def settings(**changes: Any) -> SymblSettings:
    values: dict[str, Any] = {
        "base_url": "http://127.0.0.1:9",
        "app_id": "app-id",
        "app_secret": SECRET,
    }
    values.update(changes)
    return SymblSettings(**values)


class FakeSymbl:
    """Answers the token endpoint itself and hands every API request to ``api``."""

    def __init__(self, api: Handler, *, expires_in: float = 86400.0) -> None:
        self.api = api
        self.expires_in = expires_in
        self.token_requests: list[httpx.Request] = []
        self.api_requests: list[httpx.Request] = []
        self.bodies: list[bytes] = []
        self.tokens_issued = 0

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if request.url.path.endswith("/oauth2/token:generate"):  # under any base path
            self.token_requests.append(request)
            self.tokens_issued += 1
            token = f"{TOKEN}-{self.tokens_issued}"
            return httpx.Response(200, json={"accessToken": token, "expiresIn": self.expires_in})
        self.api_requests.append(request)
        self.bodies.append(body)
        return await self.api(request)

    def client(self, **changes: Any) -> SymblClient:
        return SymblClient(
            settings(**changes), transport=httpx.MockTransport(self), retry=FAST_RETRY
        )


async def accepted(request: httpx.Request) -> httpx.Response:
    return httpx.Response(201, json={"conversationId": "5551", "jobId": "job-1"})


def answer(status: int, body: Any = None) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body if body is not None else {"message": "nope"})

    return handler


async def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


WAV_BYTES = make_wav(seconds=0.2)


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "call.wav"
    path.write_bytes(WAV_BYTES)
    return path


class TestFileRequest:
    """A file submission is one request whose bytes match the API's documentation."""

    async def test_query_string_is_encoded_as_documented(self, wav: Path) -> None:
        fake = FakeSymbl(accepted)
        params = {
            "name": "Q3 call & review",
            "customVocabulary": ["Symbl", "async audio"],
            "detectEntities": True,
            "enableSummary": False,
            "confidenceThreshold": 0.6,
            "diarizationSpeakerCount": 2,
            "trackers": [{"name": "Promo", "vocabulary": ["discount"]}],
        }
        async with fake.client() as client:
            await client.submit_file(wav, params)
        assert fake.api_requests[0].url.query == (
            b"name=Q3+call+%26+review&customVocabulary=Symbl&customVocabulary=async+audio"
            b"&detectEntities=true&enableSummary=false&confidenceThreshold=0.6"
            b"&diarizationSpeakerCount=2"
            b"&trackers=%5B%7B%22name%22%3A%22Promo%22%2C%22vocabulary%22%3A%5B%22discount%22%5D%7D%5D"
        )

    async def test_headers_carry_token_length_and_sniffed_type(self, tmp_path: Path) -> None:
        fake = FakeSymbl(accepted)
        mp3 = tmp_path / "call.mp3"
        mp3.write_bytes(make_mp3(seconds=0.5))
        async with fake.client() as client:
            await client.submit_file(mp3, {}, conversation_id="777")
        request = fake.api_requests[0]
        assert (request.method, request.url.path) == ("PUT", "/v1/process/audio/777")
        assert request.headers["authorization"] == f"Bearer {TOKEN}-1"
        assert request.headers["content-type"] == "audio/mpeg"
        assert request.headers["content-length"] == str(mp3.stat().st_size)
        assert "transfer-encoding" not in request.headers
        assert fake.bodies[0] == mp3.read_bytes()

    async def test_result_carries_ids_hash_and_one_attempt(self, wav: Path) -> None:
        fake = FakeSymbl(accepted)
        async with fake.client() as client:
            result = await client.submit_file(wav, {})
        assert (result.conversation_id, result.job_id, result.status_code) == ("5551", "job-1", 201)
        assert result.sha256 == hashlib.sha256(WAV_BYTES).hexdigest()
        assert result.size == len(WAV_BYTES)
        assert [attempt.status for attempt in result.attempts] == [201]
        assert fake.api_requests[0].headers["content-type"] == "audio/wav"

    async def test_progress_reports_bytes_sent_in_chunks(self, tmp_path: Path) -> None:
        fake = FakeSymbl(accepted)
        big = tmp_path / "big.wav"
        write_large_wav(big, 3 * 1024 * 1024 + 100)
        seen: list[int] = []
        async with fake.client() as client:
            await client.submit_file(big, {}, progress=seen.append)
            assert client.stats.bytes_uploaded == big.stat().st_size
        assert seen == [1024 * 1024, 2 * 1024 * 1024, 3 * 1024 * 1024, big.stat().st_size]


class TestWhatEveryCallKeeps:
    """Calls go to the transport without ``AsyncClient.send``: what it added is still there."""

    async def test_a_base_url_path_prefix_default_headers_and_the_call_timeout(
        self, wav: Path
    ) -> None:
        fake = FakeSymbl(answer(200, {"status": "in_progress"}))
        async with fake.client(base_url="http://127.0.0.1:9/gateway/") as client:
            await client.job_status("job-1")
        request = fake.api_requests[0]
        assert request.url.raw_path == b"/gateway/v1/job/job-1"
        assert request.url.host == "127.0.0.1"
        assert request.headers["user-agent"].startswith("python-httpx/")
        assert request.headers["accept-encoding"] and request.headers["accept"] == "*/*"
        assert request.extensions["timeout"]["read"] == client_module.SMALL_CALL_TIMEOUT_SECONDS
        assert fake.token_requests[0].url.raw_path == b"/gateway/oauth2/token:generate"

    async def test_an_upload_gets_more_time_with_its_size(self, wav: Path) -> None:
        fake = FakeSymbl(accepted)
        async with fake.client() as client:
            await client.submit_file(wav, {})
        read = fake.api_requests[0].extensions["timeout"]["read"]
        assert read > client_module.UPLOAD_BASE_TIMEOUT_SECONDS

    async def test_a_failed_connection_names_its_request(self) -> None:
        fake = FakeSymbl(unreachable)
        async with fake.client() as client:
            with pytest.raises(TransientError) as caught:
                await client.job_status("job-1")
        cause = caught.value.__cause__
        assert isinstance(cause, httpx.ConnectError)
        assert cause.request.url.path == "/v1/job/job-1"


class TestUrlRequest:
    """A URL submission sends its parameters as a JSON body with native types."""

    async def test_json_body_keeps_native_types(self) -> None:
        fake = FakeSymbl(accepted)
        params = {"enableSpeakerDiarization": True, "diarizationSpeakerCount": 2,
                  "customVocabulary": ["a"]}  # fmt: skip
        async with fake.client() as client:
            result = await client.submit_url("https://example.com/a.wav", params)
        request = fake.api_requests[0]
        assert (request.method, request.url.path) == ("POST", "/v1/process/audio/url")
        assert request.headers["content-type"] == "application/json"
        assert json.loads(fake.bodies[0]) == {"url": "https://example.com/a.wav", **params}
        assert (result.sha256, result.size) == (None, None)

    async def test_append_goes_to_the_conversation_path(self) -> None:
        fake = FakeSymbl(accepted)
        async with fake.client() as client:
            await client.submit_url("https://example.com/b.mp3", {}, conversation_id="42")
        assert fake.api_requests[0].method == "PUT"
        assert fake.api_requests[0].url.path == "/v1/process/audio/url/42"


class TestPathSegments:
    """An id sent in a path stays one segment: it cannot add segments, a query or a fragment."""

    async def test_ids_are_escaped(self, wav: Path) -> None:
        fake = FakeSymbl(accepted)
        hostile = "1/../../v1/job/x?y=1#z"
        async with fake.client() as client:
            await client.submit_url("https://example.com/b.mp3", {}, conversation_id=hostile)
            await client.submit_file(wav, {}, conversation_id=hostile)
        escaped = "1%2F..%2F..%2Fv1%2Fjob%2Fx%3Fy%3D1%23z"
        raw = [request.url.raw_path.decode() for request in fake.api_requests]
        assert raw[0] == f"/v1/process/audio/url/{escaped}"
        assert raw[1].split("?")[0] == f"/v1/process/audio/{escaped}"

    async def test_a_checked_descriptor_is_read_by_position(self, wav: Path) -> None:
        fake = FakeSymbl(accepted)
        fd = os.open(wav, os.O_RDONLY)
        try:
            os.lseek(fd, 100, os.SEEK_SET)  # where the caller left it does not matter
            await asyncio.to_thread(wav.unlink)  # nor what the path names now
            async with fake.client() as client:
                result = await client.submit_descriptor(fd, {})
        finally:
            os.close(fd)
        assert fake.bodies[0] == WAV_BYTES
        assert result.sha256 == hashlib.sha256(WAV_BYTES).hexdigest()


class TestTokens:
    """Tokens are generated once, shared, renewed ahead of expiry and replaced after a 401."""

    async def test_token_request_body(self) -> None:
        fake = FakeSymbl(answer(200, {"id": "j", "status": "scheduled"}))
        async with fake.client() as client:
            assert await client.job_status("j") == "scheduled"
        request = fake.token_requests[0]
        assert "authorization" not in request.headers
        assert json.loads(request.content) == {
            "type": "application",
            "appId": "app-id",
            "appSecret": SECRET,
        }

    async def test_concurrent_callers_share_one_token_request(self) -> None:
        fake = FakeSymbl(answer(200, {"id": "j", "status": "completed"}))
        async with fake.client() as client:
            await asyncio.gather(*(client.job_status("j") for _ in range(20)))
            assert client.stats.token_refreshes == 1
        assert len(fake.token_requests) == 1

    async def test_renewed_when_a_fifth_of_a_short_lifetime_is_left(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        now = [1000.0]
        monkeypatch.setattr(client_module.time, "monotonic", lambda: now[0])
        fake = FakeSymbl(answer(200, {"id": "j", "status": "completed"}), expires_in=10.0)
        async with fake.client(token_refresh_margin_seconds=300.0) as client:
            await client.job_status("j")
            now[0] += 7.9
            await client.job_status("j")
            assert len(fake.token_requests) == 1
            now[0] += 0.2
            await client.job_status("j")
        assert len(fake.token_requests) == 2
        assert fake.api_requests[-1].headers["authorization"] == f"Bearer {TOKEN}-2"

    async def test_renewed_by_the_configured_margin_for_long_lifetimes(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        now = [1000.0]
        monkeypatch.setattr(client_module.time, "monotonic", lambda: now[0])
        fake = FakeSymbl(answer(200, {"id": "j", "status": "completed"}), expires_in=86400.0)
        async with fake.client(token_refresh_margin_seconds=300.0) as client:
            await client.job_status("j")
            now[0] += 86400.0 - 301.0
            await client.job_status("j")
            assert len(fake.token_requests) == 1
            now[0] += 2.0
            await client.job_status("j")
        assert len(fake.token_requests) == 2

    async def test_a_cached_token_handed_back_is_used_to_its_end(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        now = [1000.0]
        monkeypatch.setattr(client_module.time, "monotonic", lambda: now[0])
        lifetimes = iter([10.0, 2.0])

        async def same_token(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/oauth2/token:generate"):  # under any base path
                return httpx.Response(
                    200, json={"accessToken": TOKEN, "expiresIn": next(lifetimes)}
                )
            return httpx.Response(200, json={"id": "j", "status": "completed"})

        async with SymblClient(
            settings(), transport=httpx.MockTransport(same_token), retry=FAST_RETRY
        ) as client:
            await client.job_status("j")
            now[0] += 8.5
            await client.job_status("j")
            assert client.stats.token_refreshes == 2
            now[0] += 1.8
            await client.job_status("j")
            assert client.stats.token_refreshes == 2

    async def test_401_renews_the_token_and_repeats_once(self, wav: Path) -> None:
        async def reject_first_token(request: httpx.Request) -> httpx.Response:
            if request.headers["authorization"].endswith("-1"):
                return httpx.Response(401, json={"message": "Token validation failed"})
            return await accepted(request)

        fake = FakeSymbl(reject_first_token)
        async with fake.client() as client:
            result = await client.submit_file(wav, {})
        assert [attempt.status for attempt in result.attempts] == [401, 201]
        assert fake.bodies[1] == WAV_BYTES

    async def test_tokens_never_reach_logs_or_errors(self, wav: Path) -> None:
        answers = iter([401, 503, 503, 503, 503])

        async def troubled(request: httpx.Request) -> httpx.Response:
            return httpx.Response(next(answers), json={"message": "trouble"})

        fake = FakeSymbl(troubled)
        async with fake.client() as client:
            with capture_logs() as logs, pytest.raises(TransientError) as caught:
                await client.submit_file(wav, {})
        issued = [f"{TOKEN}-1", f"{TOKEN}-2"]
        assert fake.api_requests[-1].headers["authorization"] == f"Bearer {issued[1]}"
        text = repr(logs) + str(caught.value) + repr(caught.value.attempts)
        assert "symbl_request_retry" in text
        assert all(token not in text for token in issued)
        assert issued[1] not in masker.scrub(f"header {issued[1]}")

    async def test_second_401_is_an_authentication_error(self, wav: Path) -> None:
        fake = FakeSymbl(answer(401, {"message": "Token validation failed"}))
        async with fake.client() as client:
            with pytest.raises(AuthenticationError) as caught:
                await client.submit_file(wav, {})
        assert len(fake.api_requests) == 2
        assert caught.value.status == 401

    @pytest.mark.parametrize("status", [401, 403])
    async def test_refused_credentials_name_the_app_not_the_secret(self, status: int) -> None:
        async def refuse(request: httpx.Request) -> httpx.Response:
            return httpx.Response(status, json={"message": f"bad secret {SECRET}"})

        async with SymblClient(
            settings(), transport=httpx.MockTransport(refuse), retry=FAST_RETRY
        ) as client:
            with capture_logs() as logs, pytest.raises(AuthenticationError) as caught:
                await client.job_status("j")
            assert client.stats.auth_failures == 1
        assert "app-id" in str(caught.value)
        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value.body)
        assert SECRET not in repr(logs)
        assert [entry["event"] for entry in logs] == ["symbl_auth_failed"]


class TestClassification:
    """Each answer becomes the error type the daemon acts on, with the server's message."""

    @pytest.mark.parametrize(
        ("status", "kind"),
        [(400, FinalError), (404, NotFoundError), (413, FinalError), (409, FinalError)],
    )
    async def test_final_errors_are_not_retried(
        self, wav: Path, status: int, kind: type[FinalError]
    ) -> None:
        fake = FakeSymbl(answer(status, {"message": "the server says no"}))
        async with fake.client() as client:
            with pytest.raises(kind) as caught:
                await client.submit_file(wav, {}, conversation_id="9")
        assert type(caught.value) is kind
        assert caught.value.status == status
        assert caught.value.body == {"message": "the server says no"}
        assert "the server says no" in str(caught.value)
        assert len(fake.api_requests) == 1
        assert [attempt.status for attempt in caught.value.attempts] == [status]

    async def test_429_on_a_submission_is_raised_at_once(self, wav: Path) -> None:
        fake = FakeSymbl(answer(429, {"statusCode": 429, "message": "maximum of 2 jobs"}))
        async with fake.client() as client:
            with pytest.raises(RateLimitedError, match="maximum of 2 jobs"):
                await client.submit_file(wav, {})
        assert len(fake.api_requests) == 1

    async def test_429_on_a_read_is_retried(self) -> None:
        answers = iter([answer(429), answer(200, {"id": "j", "status": "in_progress"})])

        async def limited_then_fine(request: httpx.Request) -> httpx.Response:
            return await next(answers)(request)

        fake = FakeSymbl(limited_then_fine)
        async with fake.client() as client:
            assert await client.job_status("j") == "in_progress"
            assert client.stats.retries == 1

    async def test_5xx_is_retried_then_raised_with_every_attempt(self, wav: Path) -> None:
        fake = FakeSymbl(answer(503, {"message": "busy"}))
        async with fake.client() as client:
            with capture_logs() as logs, pytest.raises(TransientError) as caught:
                await client.submit_file(wav, {})
            assert client.stats.responses[503] == 3
        assert type(caught.value) is TransientError
        assert [attempt.status for attempt in caught.value.attempts] == [503, 503, 503]
        assert [entry["event"] for entry in logs].count("symbl_request_retry") == 2
        assert fake.bodies == [WAV_BYTES] * 3

    async def test_connection_errors_are_transient(self) -> None:
        async with SymblClient(
            settings(), transport=httpx.MockTransport(unreachable), retry=FAST_RETRY
        ) as client:
            with pytest.raises(TransientError) as caught:
                await client.conversation("1", "messages")
        assert [attempt.error for attempt in caught.value.attempts] == [
            "ConnectError: connection refused"
        ] * 3

    async def test_407_from_a_forwarding_proxy_is_transient(self, wav: Path) -> None:
        fake = FakeSymbl(answer(407, {"message": "Proxy Authentication Required"}))
        async with fake.client() as client:
            with pytest.raises(TransientError) as caught:
                await client.submit_file(wav, {})
        assert type(caught.value) is TransientError
        assert "the proxy asks for credentials (HTTP 407)" in caught.value.message
        assert [attempt.status for attempt in caught.value.attempts] == [407] * 3

    async def test_an_unreachable_token_endpoint_at_start_is_transient(self) -> None:
        async with SymblClient(
            settings(), transport=httpx.MockTransport(unreachable), retry=FAST_RETRY
        ) as client:
            with pytest.raises(TransientError) as caught:
                await client.authenticate()
        assert caught.value.message == (
            "POST /oauth2/token:generate: ConnectError: connection refused"
        )

    async def test_unknown_conversation_part_is_refused_locally(self) -> None:
        fake = FakeSymbl(accepted)
        async with fake.client() as client:
            with pytest.raises(ValueError, match="unknown conversation part"):
                await client.conversation("1", "sentiments")
        assert fake.api_requests == []

    async def test_verbose_messages_ask_for_words(self) -> None:
        fake = FakeSymbl(answer(200, {"messages": []}))
        async with fake.client() as client:
            assert await client.conversation("1", "messages", verbose=True) == {"messages": []}
        assert fake.api_requests[0].url.path == "/v1/conversations/1/messages"
        assert fake.api_requests[0].url.query == b"verbose=true"


class TestFileChanges:
    """A file whose size changes during the upload is reported, never sent as if whole."""

    @pytest.mark.parametrize("change", ["grow", "shrink"])
    async def test_size_change_during_upload(self, tmp_path: Path, change: str) -> None:
        path = tmp_path / "growing.wav"
        write_large_wav(path, 3 * 1024 * 1024)

        def touch_file(sent: int) -> None:
            if sent == 1024 * 1024:
                with open(path, "r+b") as handle:
                    if change == "grow":
                        handle.seek(0, 2)
                        handle.write(b"\0" * 10)
                    else:
                        handle.truncate(2 * 1024 * 1024)

        fake = FakeSymbl(accepted)
        async with fake.client() as client:
            with pytest.raises(FileChangedError, match="changed during the upload"):
                await client.submit_file(path, {}, progress=touch_file)
        assert fake.api_requests == []


class TestCancellation:
    """Cancelling a call (shutdown) interrupts its retry wait at once."""

    async def test_cancel_during_backoff(self) -> None:
        first_answer = asyncio.Event()

        async def busy(request: httpx.Request) -> httpx.Response:
            first_answer.set()
            return httpx.Response(503, json={"message": "busy"})

        slow = RetryPolicy(attempts=5, initial=60.0, maximum=60.0)
        async with SymblClient(
            settings(), transport=httpx.MockTransport(FakeSymbl(busy)), retry=slow
        ) as client:
            task = asyncio.create_task(client.job_status("j"))
            await asyncio.wait_for(first_answer.wait(), 5)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=1.0)
        assert done == {task}
        assert task.cancelled()


class TestFormattedTranscript:
    """The transcript request carries Symbl's flags where its documentation puts them."""

    OPTIONS: ClassVar[dict[str, bool]] = {
        "createParagraphs": True,
        "showSpeakerSeparation": True,
        "highlightOnlyInsightKeyPhrases": False,
        "highlightAllKeyPhrases": True,
    }

    async def test_markdown_sends_every_flag_highlights_inside_phrases(self) -> None:
        body = {"transcript": {"payload": "Speaker 1: hi", "contentType": "text/markdown"}}
        fake = FakeSymbl(answer(200, body))
        async with fake.client() as client:
            text = await client.formatted_transcript("7", "text/markdown", self.OPTIONS)
        assert text == "Speaker 1: hi"
        request = fake.api_requests[0]
        assert (request.method, request.url.path) == ("POST", "/v1/conversations/7/transcript")
        assert json.loads(fake.bodies[0]) == {
            "contentType": "text/markdown",
            "createParagraphs": True,
            "showSpeakerSeparation": True,
            "phrases": {"highlightOnlyInsightKeyPhrases": False, "highlightAllKeyPhrases": True},
        }

    async def test_srt_sends_speaker_separation_only_and_reads_a_nested_payload(self) -> None:
        srt_text = "1\n0:0:0,000 --> 0:0:1,000\nhi\n"
        body = {"transcript": {"payload": {"content": srt_text, "contentType": "text/srt"}}}
        fake = FakeSymbl(answer(200, body))
        async with fake.client() as client:
            assert await client.formatted_transcript("7", "text/srt", self.OPTIONS) == srt_text
        assert json.loads(fake.bodies[0]) == {
            "contentType": "text/srt",
            "showSpeakerSeparation": True,
        }

    async def test_an_answer_without_payload_is_a_final_error(self) -> None:
        fake = FakeSymbl(answer(200, {"transcript": {}}))
        async with fake.client() as client:
            with pytest.raises(FinalError, match="no transcript payload"):
                await client.formatted_transcript("7", "text/srt", {})
