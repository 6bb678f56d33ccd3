"""The emulator's documented behaviour, driven over real loopback HTTP with httpx."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import httpx
import pytest
from emulator_http import CREDENTIALS, api_client, get_token

from daemon.emulator import EmulatorServer, EmulatorSettings, EmulatorState
from daemon.emulator.app import LIMIT_MESSAGE, TOKEN_MESSAGE
from daemon.files.samples import make_mp3, make_wav

WAV = {"Content-Type": "audio/wav"}


def submit_wav(client: httpx.Client, seconds: float = 1.0, **params: object) -> dict[str, str]:
    response = client.post(
        "/v1/process/audio", content=make_wav(seconds), headers=WAV, params=params
    )
    assert response.status_code == 201, response.text
    body: dict[str, str] = response.json()
    return body


def job_done(job_id: str) -> Callable[[EmulatorState], bool]:
    return lambda state: state.job_status(job_id) in ("completed", "failed")


class TestAuthentication:
    """Tokens are issued, cached and checked in both header styles."""

    def test_token_carries_the_default_lifetime(self, emulator: EmulatorServer) -> None:
        response = httpx.post(f"{emulator.base_url}/oauth2/token:generate", json=CREDENTIALS)
        assert response.status_code == 200
        body = response.json()
        assert body["expiresIn"] == 86400
        assert body["accessToken"].count(".") == 2

    def test_cached_token_reports_its_remaining_lifetime(
        self, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        server = emulator_factory(token_ttl=30.0)
        with httpx.Client(base_url=server.base_url) as client:
            first = client.post("/oauth2/token:generate", json=CREDENTIALS).json()
            second = client.post("/oauth2/token:generate", json=CREDENTIALS).json()
        assert second["accessToken"] == first["accessToken"]
        assert 0 < second["expiresIn"] < 30

    def test_bearer_and_x_api_key_are_both_accepted(self, emulator: EmulatorServer) -> None:
        for bearer in (True, False):
            with api_client(emulator, bearer=bearer) as client:
                submit_wav(client)
        assert [record.auth for record in emulator.state.submissions] == ["bearer", "x-api-key"]

    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer not-a-token"}, {"x-api-key": "not-a-token"}],
        ids=["none", "bad-bearer", "bad-api-key"],
    )
    def test_missing_or_unknown_token_is_401(
        self, emulator: EmulatorServer, headers: dict[str, str]
    ) -> None:
        response = httpx.get(f"{emulator.base_url}/v1/job/some-job", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": TOKEN_MESSAGE}

    def test_expired_tokens_are_401_and_a_new_one_works(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            job_id = submit_wav(client)["jobId"]
            emulator.state.expire_all_tokens()
            assert client.get(f"/v1/job/{job_id}").status_code == 401
            client.headers["Authorization"] = f"Bearer {get_token(client)}"
            assert client.get(f"/v1/job/{job_id}").status_code == 200

    def test_token_lifetime_runs_out(self, emulator_factory: Callable[..., EmulatorServer]) -> None:
        server = emulator_factory(token_ttl=0.2)
        with api_client(server) as client:
            job_id = submit_wav(client)["jobId"]
            server.state.wait_for(
                lambda state: client.get(f"/v1/job/{job_id}").status_code == 401, 5
            )

    def test_configured_credentials_are_enforced(
        self, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        server = emulator_factory(app_id="the-id", app_secret="the-secret")
        url = f"{server.base_url}/oauth2/token:generate"
        wrong = {**CREDENTIALS, "appId": "the-id", "appSecret": "guess"}
        right = {**CREDENTIALS, "appId": "the-id", "appSecret": "the-secret"}
        refused = httpx.post(url, json=wrong)
        assert refused.status_code == 401
        assert "the-secret" not in refused.text and "guess" not in refused.text
        assert httpx.post(url, json=right).status_code == 200

    def test_malformed_grant_is_400(self, emulator: EmulatorServer) -> None:
        url = f"{emulator.base_url}/oauth2/token:generate"
        assert httpx.post(url, json={"appId": "a", "appSecret": "b"}).status_code == 400
        assert httpx.post(url, content=b"not json").status_code == 400


class TestSubmissions:
    """The four submit calls answer 201 and are recorded exactly as received."""

    def test_file_post_records_hash_size_and_typed_params(self, emulator: EmulatorServer) -> None:
        audio = make_wav(1.0)
        query = [
            ("name", "call.wav"),
            ("customVocabulary", "alpha"),
            ("customVocabulary", "beta"),
            ("confidenceThreshold", "0.7"),
            ("detectEntities", "true"),
            ("trackers", json.dumps([{"name": "Promo", "vocabulary": ["discount"]}])),
        ]
        with api_client(emulator) as client:
            response = client.post("/v1/process/audio", content=audio, headers=WAV, params=query)
        assert response.status_code == 201
        ids = response.json()
        assert ids["conversationId"].isdigit()
        record = emulator.state.submissions[0]
        assert (record.order, record.method, record.kind) == (1, "POST", "file")
        assert (record.conversation_id, record.job_id) == (ids["conversationId"], ids["jobId"])
        assert record.sha256 == hashlib.sha256(audio).hexdigest()
        assert record.size == len(audio)
        assert record.content_type == "audio/wav"
        assert record.params == {
            "name": "call.wav",
            "customVocabulary": ["alpha", "beta"],
            "confidenceThreshold": 0.7,
            "detectEntities": True,
            "trackers": [{"name": "Promo", "vocabulary": ["discount"]}],
        }
        assert record.raw_query == tuple(query)
        assert not record.lost_response

    def test_file_append_joins_the_conversation(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            first = submit_wav(client)
            response = client.put(
                f"/v1/process/audio/{first['conversationId']}",
                content=make_mp3(1.0),
                headers={"Content-Type": "audio/mpeg"},
            )
        assert response.status_code == 201
        assert response.json()["conversationId"] == first["conversationId"]
        assert response.json()["jobId"] != first["jobId"]
        assert emulator.state.submissions[1].method == "PUT"

    def test_empty_content_type_is_accepted_as_the_official_sdk_sends_it(
        self, emulator: EmulatorServer
    ) -> None:
        with api_client(emulator) as client:
            response = client.post(
                "/v1/process/audio", content=make_mp3(0.5), headers={"Content-Type": ""}
            )
        assert response.status_code == 201

    def test_url_post_and_put_take_params_from_body_and_query(
        self, emulator: EmulatorServer
    ) -> None:
        body = {"url": "https://example.com/audio/meeting.wav", "confidenceThreshold": 0.6}
        with api_client(emulator) as client:
            first = client.post(
                "/v1/process/audio/url",
                json=body,
                params={"enableSpeakerDiarization": "true", "diarizationSpeakerCount": "2"},
            )
            assert first.status_code == 201
            conversation_id = first.json()["conversationId"]
            second = client.put(
                f"/v1/process/audio/url/{conversation_id}",
                json={"url": "https://example.com/audio/part2.mp3", "diarizationSpeakerCount": 2.0},
            )
        assert second.status_code == 201
        assert second.json()["conversationId"] == conversation_id
        first_record, second_record = emulator.state.submissions
        assert first_record.kind == "url" and first_record.sha256 is None
        assert first_record.url == body["url"]
        assert first_record.params == {
            "confidenceThreshold": 0.6,
            "enableSpeakerDiarization": True,
            "diarizationSpeakerCount": 2,
        }
        assert (second_record.method, second_record.url) == (
            "PUT",
            "https://example.com/audio/part2.mp3",
        )


class TestErrors:
    """Every documented error answers its status with a ``{"message": ...}`` body."""

    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({"confidenceThreshold": "0.2"}, "confidenceThreshold: must be between 0.5 and 1.0"),
            ({"languageCode": "en-XX"}, "languageCode: unsupported language"),
            ({"mode": "radio"}, "mode: must be one of"),
            ({"detectPhrases": "maybe"}, "detectPhrases: must be true or false"),
            ({"confidenseThreshold": "0.7"}, "confidenseThreshold: unknown key"),
        ],
    )
    def test_bad_parameters_are_400(
        self, emulator: EmulatorServer, params: dict[str, str], expected: str
    ) -> None:
        with api_client(emulator) as client:
            response = client.post(
                "/v1/process/audio", content=make_wav(0.2), headers=WAV, params=params
            )
        assert response.status_code == 400
        assert expected in response.json()["message"]
        assert emulator.state.submissions == []

    def test_body_that_is_not_audio_is_400(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            response = client.post("/v1/process/audio", content=b"%PDF-1.4" * 100)
        assert response.status_code == 400
        assert "neither WAV nor MP3" in response.json()["message"]

    def test_stereo_wav_needs_per_channel_recognition(self, emulator: EmulatorServer) -> None:
        stereo = make_wav(0.5, channels=2)
        with api_client(emulator) as client:
            refused = client.post("/v1/process/audio", content=stereo, headers=WAV)
            accepted = client.post(
                "/v1/process/audio",
                content=stereo,
                headers=WAV,
                params={"enableSeparateRecognitionPerChannel": "true"},
            )
        assert refused.status_code == 400
        assert "enableSeparateRecognitionPerChannel" in refused.json()["message"]
        assert accepted.status_code == 201

    def test_unsupported_content_type_is_400(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            response = client.post(
                "/v1/process/audio", content=make_wav(0.2), headers={"Content-Type": "audio/flac"}
            )
        assert response.status_code == 400
        assert "audio/flac" in response.json()["message"]

    def test_url_calls_need_json_and_a_url(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            no_url = client.post("/v1/process/audio/url", json={"name": "x"})
            not_json = client.post(
                "/v1/process/audio/url",
                content=b"url=https://example.com/a.wav",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            bad_url = client.post("/v1/process/audio/url", json={"url": "ftp://example.com/a"})
        assert (no_url.status_code, no_url.json()) == (400, {"message": "url: is required"})
        assert not_json.status_code == 400
        assert bad_url.status_code == 400

    def test_unknown_conversation_is_404_for_appends_and_results(
        self, emulator: EmulatorServer
    ) -> None:
        with api_client(emulator) as client:
            file_put = client.put("/v1/process/audio/123", content=make_wav(0.2), headers=WAV)
            url_put = client.put("/v1/process/audio/url/123", json={"url": "https://e.com/a.wav"})
            messages = client.get("/v1/conversations/123/messages")
        for response in (file_put, url_put, messages):
            assert response.status_code == 404
            assert "could not be found" in response.json()["message"]

    def test_unknown_job_is_404(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            response = client.get("/v1/job/00000000-0000-4000-8000-000000000000")
        assert response.status_code == 404
        assert "message" in response.json()

    def test_wrong_method_is_405_with_a_message(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            response = client.delete("/v1/process/audio")
        assert response.status_code == 405
        assert response.json() == {"message": "Method Not Allowed"}

    def test_limit_of_unfinished_jobs_is_429_with_the_documented_body(
        self, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        server = emulator_factory(max_jobs=2, job_seconds=0.5)
        with api_client(server) as client:
            first = submit_wav(client)
            submit_wav(client)
            refused = client.post("/v1/process/audio", content=make_wav(0.2), headers=WAV)
            assert refused.status_code == 429
            assert refused.json() == {"statusCode": 429, "message": LIMIT_MESSAGE.format(limit=2)}
            server.state.wait_for(job_done(first["jobId"]), 5)
            submit_wav(client)
        assert len(server.state.submissions) == 3


class TestJobs:
    """Jobs move scheduled, in_progress, completed on the clock, one at a time per conversation."""

    def test_job_passes_through_every_status(self, emulator: EmulatorServer) -> None:
        seen: list[str] = []
        with api_client(emulator) as client:
            job_id = submit_wav(client)["jobId"]

            def record_status(state: EmulatorState) -> bool:
                status = client.get(f"/v1/job/{job_id}").json()["status"]
                if not seen or seen[-1] != status:
                    seen.append(status)
                return status == "completed"

            emulator.state.wait_for(record_status, 5)
        assert seen == ["scheduled", "in_progress", "completed"]

    def test_job_answer_has_id_and_status(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            job_id = submit_wav(client)["jobId"]
            assert client.get(f"/v1/job/{job_id}").json() == {"id": job_id, "status": "scheduled"}

    def test_appends_run_in_order(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            first = submit_wav(client)
            path = f"/v1/process/audio/{first['conversationId']}"
            second = client.put(path, content=make_wav(0.5), headers=WAV).json()
            state = emulator.state
            state.wait_for(lambda s: s.job_status(first["jobId"]) == "in_progress", 5)
            assert state.job_status(second["jobId"]) == "scheduled"
            state.wait_for(job_done(first["jobId"]), 5)
            state.wait_for(job_done(second["jobId"]), 5)

    def test_job_failure_rate_ends_jobs_failed(
        self, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        server = emulator_factory(job_failure_rate=1.0)
        with api_client(server) as client:
            job_id = submit_wav(client)["jobId"]
            server.state.wait_for(job_done(job_id), 5)
            assert client.get(f"/v1/job/{job_id}").json()["status"] == "failed"

    def test_job_time_follows_the_audio_length(
        self, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        server = emulator_factory(job_seconds=0.1, job_seconds_per_audio_second=0.05)
        with api_client(server) as client:
            short, long = submit_wav(client, 1.0)["jobId"], submit_wav(client, 4.0)["jobId"]
            server.state.wait_for(job_done(long), 5)
            jobs = {job["id"]: job for job in client.get("/_emulator/jobs").json()}
        assert jobs[short]["run_seconds"] == pytest.approx(0.15)
        assert jobs[long]["run_seconds"] == pytest.approx(0.3)
        assert jobs[long]["audio_seconds"] == pytest.approx(4.0)
        ended = jobs[long]
        assert ended["status"] == "completed"
        assert ended["finished_at"] == pytest.approx(ended["start_at"] + ended["run_seconds"])
        assert ended["created_at"] <= ended["start_at"]

    def test_job_times_spread_as_asked_and_repeat_with_the_seed(
        self, emulator_factory: Callable[..., EmulatorServer]
    ) -> None:
        runs = []
        for _ in range(2):
            server = emulator_factory(job_seconds=10.0, job_seconds_spread=0.1, seed=3)
            with api_client(server) as client:
                for _ in range(20):
                    submit_wav(client, 0.2)
                runs.append([job["run_seconds"] for job in client.get("/_emulator/jobs").json()])
        assert runs[0] == runs[1]
        assert all(9.0 <= seconds <= 11.0 for seconds in runs[0])
        assert max(runs[0]) - min(runs[0]) > 1.0

    def test_a_spread_of_one_or_more_is_refused(self) -> None:
        with pytest.raises(ValueError, match="job_seconds_spread"):
            EmulatorSettings(job_seconds_spread=1.0)


class TestResults:
    """Conversation results follow from what was submitted, in the documented shapes."""

    def test_one_message_per_part_naming_file_and_duration(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            first = submit_wav(client, 1.0, name="first.wav")
            conversation_id = first["conversationId"]
            second = client.put(
                f"/v1/process/audio/{conversation_id}",
                content=make_wav(2.0),
                headers=WAV,
                params={"name": "second.wav"},
            ).json()
            emulator.state.wait_for(job_done(second["jobId"]), 5)
            messages = client.get(f"/v1/conversations/{conversation_id}/messages").json()
            verbose = client.get(
                f"/v1/conversations/{conversation_id}/messages", params={"verbose": "true"}
            ).json()
            data = client.get(f"/v1/conversations/{conversation_id}").json()
        texts = [message["text"] for message in messages["messages"]]
        assert "first.wav" in texts[0] and "1.0 seconds" in texts[0]
        assert "second.wav" in texts[1] and "2.0 seconds" in texts[1]
        assert all(message["words"] == [] for message in messages["messages"])
        assert all(message["words"] for message in verbose["messages"])
        assert data["id"] == conversation_id and data["name"] == "first.wav"

    def test_every_result_has_its_wrapper(self, emulator: EmulatorServer) -> None:
        wrappers = {
            "topics": "topics",
            "questions": "questions",
            "action-items": "actionItems",
            "follow-ups": "followUps",
            "entities": "entities",
            "summary": "summary",
        }
        with api_client(emulator) as client:
            ids = submit_wav(client, detectEntities="true", enableSummary="true")
            emulator.state.wait_for(job_done(ids["jobId"]), 5)
            base = f"/v1/conversations/{ids['conversationId']}"
            for path, key in wrappers.items():
                body = client.get(f"{base}/{path}").json()
                assert isinstance(body[key], list), path
            assert client.get(f"{base}/trackers").json() == []

    def test_trackers_and_entities_reflect_the_parameters(self, emulator: EmulatorServer) -> None:
        trackers = json.dumps([{"name": "Promotion Mention", "vocabulary": ["discount"]}])
        entities = json.dumps([{"customType": "colour", "text": "blue"}])
        with api_client(emulator) as client:
            ids = submit_wav(client, trackers=trackers, entities=entities, detectEntities="true")
            emulator.state.wait_for(job_done(ids["jobId"]), 5)
            base = f"/v1/conversations/{ids['conversationId']}"
            tracker_list = client.get(f"{base}/trackers").json()
            entity_list = client.get(f"{base}/entities").json()["entities"]
        assert tracker_list[0]["name"] == "Promotion Mention"
        assert tracker_list[0]["matches"][0]["value"] == "discount"
        assert entity_list[0]["customType"] == "colour"

    def test_confidence_threshold_filters_insights(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            ids = submit_wav(client, confidenceThreshold="0.95")
            emulator.state.wait_for(job_done(ids["jobId"]), 5)
            topics = client.get(f"/v1/conversations/{ids['conversationId']}/topics").json()
        assert topics == {"topics": []}

    def test_summary_is_404_while_the_job_runs(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            ids = submit_wav(client, enableSummary="true")
            path = f"/v1/conversations/{ids['conversationId']}/summary"
            assert client.get(path).status_code == 404
            emulator.state.wait_for(job_done(ids["jobId"]), 5)
            assert client.get(path).status_code == 200


class TestInspection:
    """Tests whose daemon runs in a subprocess can inspect and steer the emulator over HTTP."""

    def test_submissions_endpoint_lists_the_records(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            ids = submit_wav(client, name="a.wav")
            listed = client.get("/_emulator/submissions").json()
        assert listed[0]["job_id"] == ids["jobId"]
        assert listed[0]["params"] == {"name": "a.wav"}
        assert listed[0]["order"] == 1

    def test_settings_endpoint_changes_settings_at_runtime(self, emulator: EmulatorServer) -> None:
        url = f"{emulator.base_url}/_emulator/settings"
        changed = httpx.post(url, json={"max_jobs": 7, "latency_seconds": 0.01})
        assert changed.status_code == 200
        assert emulator.state.settings.max_jobs == 7
        assert httpx.post(url, json={"fault_rate": 2}).status_code == 400
        assert httpx.post(url, json={"no_such_knob": 1}).status_code == 400

    def test_requests_are_logged_with_their_status(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            client.get("/v1/job/unknown")
        assert [(r.path, r.status) for r in emulator.state.requests] == [
            ("/oauth2/token:generate", 200),
            ("/v1/job/unknown", 404),
        ]
