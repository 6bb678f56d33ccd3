"""Symbl's own OpenAPI-generated client (``symbl-rest`` 1.0.14) cannot tell the emulator from Symbl.

The client is driven exactly as user code would drive it: a token, the four submit calls, job
polling to ``completed``, then every result it can deserialize. It authenticates with
``x-api-key`` and types booleans and the speaker count its own way (``True``, ``2.0``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import symbl_rest

from daemon.emulator import EmulatorServer, EmulatorState
from daemon.files.samples import make_mp3, make_wav


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[symbl_rest.ApiClient]:
    """A generated client pointed at the emulator, holding a fresh token."""
    configuration = symbl_rest.Configuration()
    configuration.host = emulator.base_url
    api_client = symbl_rest.ApiClient(configuration)
    grant = symbl_rest.Grant(type="application", app_id="conformance", app_secret="secret-value")
    token = symbl_rest.AuthenticationApi(api_client).generate_token(grant)
    assert token.expires_in == 86400
    configuration.api_key["x-api-key"] = token.access_token
    yield api_client
    api_client.pool.close()


def wait_completed(state: EmulatorState, client: symbl_rest.ApiClient, job_id: str) -> None:
    jobs = symbl_rest.JobsApi(client)

    def completed(_: EmulatorState) -> bool:
        response = jobs.get_job_status(job_id)
        assert response.id == job_id
        return bool(response.status == "completed")

    state.wait_for(completed, 10)


class TestGeneratedClient:
    """The whole user journey with ``symbl-rest`` deserializes without error."""

    def test_submit_append_poll_and_read_results(
        self, emulator: EmulatorServer, client: symbl_rest.ApiClient
    ) -> None:
        async_api = symbl_rest.AsyncApi(client)
        trackers = json.dumps([{"name": "Promotion Mention", "vocabulary": ["discount"]}])
        first = async_api.add_audio(
            make_wav(1.0),
            "audio/wav",
            name="first.wav",
            custom_vocabulary=["alpha", "beta"],
            confidence_threshold=0.6,
            detect_phrases=True,
            trackers=trackers,
            enable_speaker_diarization=True,
            diarization_speaker_count=2.0,
        )
        conversation_id = first.conversation_id
        second = async_api.append_audio(make_mp3(1.0), "audio/mpeg", conversation_id, name="b.mp3")
        url_body: dict[str, Any] = {"url": "https://example.com/audio/third.wav", "name": "third"}
        third = async_api.add_audio_url(
            body=url_body, enable_speaker_diarization=True, diarization_speaker_count=2.0
        )
        fourth = async_api.append_audio_url(
            conversation_id, body={"url": "https://example.com/audio/fourth.wav"}
        )
        assert second.conversation_id == conversation_id == fourth.conversation_id
        assert third.conversation_id != conversation_id
        for job_id in (first.job_id, second.job_id, third.job_id, fourth.job_id):
            wait_completed(emulator.state, client, job_id)

        self.read_every_result(client, conversation_id)
        records = emulator.state.submissions
        assert [(r.method, r.kind) for r in records] == [
            ("POST", "file"),
            ("PUT", "file"),
            ("POST", "url"),
            ("PUT", "url"),
        ]
        assert {record.auth for record in records} == {"x-api-key"}
        assert records[0].params["customVocabulary"] == ["alpha", "beta"]
        assert records[0].params["enableSpeakerDiarization"] is True
        assert records[2].params["diarizationSpeakerCount"] == 2

    def read_every_result(self, client: symbl_rest.ApiClient, conversation_id: str) -> None:
        conversations = symbl_rest.ConversationsApi(client)
        messages = conversations.get_messages_by_conversation_id(conversation_id, verbose=True)
        assert [m.text.split(",")[0] for m in messages.messages] == [
            "Part 1 of this conversation is first.wav",
            "Part 2 of this conversation is b.mp3",
            "Part 3 of this conversation is fourth.wav",
        ]
        assert messages.messages[0].words
        assert messages.messages[0].start_time.year >= 2024
        assert conversations.get_topics_by_conversation_id(conversation_id).topics
        assert conversations.get_questions_by_conversation_id(conversation_id).questions
        assert conversations.get_action_items_by_conversation_id(conversation_id).action_items
        assert conversations.get_follow_ups_by_conversation_id(conversation_id).follow_ups
        assert conversations.get_entities_by_conversation_id(conversation_id).entities == []
        trackers = conversations.get_trackers_by_conversation_id(conversation_id)
        assert trackers[0].name == "Promotion Mention"
        data = conversations.get_conversation_by_conversation_id(conversation_id)
        assert data.id == conversation_id and len(data.members) == 2

    def test_summary_and_formatted_transcript_through_the_generated_client(
        self, emulator: EmulatorServer, client: symbl_rest.ApiClient
    ) -> None:
        """symbl-rest 1.0.14 has no method for either endpoint: they are called through its own
        ``ApiClient.call_api`` (its auth, JSON encoding and decoding), as its users would."""
        assert not hasattr(symbl_rest.ConversationsApi, "get_summary_by_conversation_id")
        async_api = symbl_rest.AsyncApi(client)
        plain = async_api.add_audio(make_wav(1.0), "audio/wav", name="plain.wav")
        # Its add_audio has no enable_summary either; the URL call's JSON body carries it.
        summarised = async_api.add_audio_url(
            body={"url": "https://example.com/summed.wav", "enableSummary": True}
        )
        for job_id in (plain.job_id, summarised.job_id):
            wait_completed(emulator.state, client, job_id)

        def call(path: str, method: str = "GET", **more: Any) -> Any:
            return client.call_api(
                path, method, response_type="object", auth_settings=["bearerAuth"],
                header_params={"Content-Type": "application/json", "Accept": "application/json"},
                _return_http_data_only=True, **more,
            )  # fmt: skip

        summary = call(f"/v1/conversations/{summarised.conversation_id}/summary")
        assert summary["summary"][0]["messageRefs"]
        with pytest.raises(symbl_rest.rest.ApiException) as not_asked:
            call(f"/v1/conversations/{plain.conversation_id}/summary")
        assert not_asked.value.status == 404
        assert "enableSummary" in json.loads(not_asked.value.body)["message"]
        refreshed = call(
            f"/v1/conversations/{plain.conversation_id}/summary", query_params=[("refresh", True)]
        )
        assert refreshed["summary"]

        path = f"/v1/conversations/{plain.conversation_id}/transcript"
        markdown = call(
            path, "POST",
            body={"contentType": "text/markdown", "createParagraphs": True,
                  "phrases": {"highlightAllKeyPhrases": True}},
        )  # fmt: skip
        assert markdown["transcript"]["contentType"] == "text/markdown"
        assert "<mark>plain.wav</mark>" in markdown["transcript"]["payload"]
        subtitles = call(path, "POST", body={"contentType": "text/srt"})["transcript"]
        assert subtitles["contentType"] == "text/srt"
        assert subtitles["payload"].startswith("1\n00:00:00,000 --> 00:00:01,000\n")
        with pytest.raises(symbl_rest.rest.ApiException) as refused:
            call(path, "POST", body={"contentType": "text/html"})
        assert refused.value.status == 400

    def test_errors_surface_as_api_exceptions(
        self, emulator: EmulatorServer, client: symbl_rest.ApiClient
    ) -> None:
        async_api = symbl_rest.AsyncApi(client)
        with pytest.raises(symbl_rest.rest.ApiException) as refused:
            async_api.add_audio(make_wav(0.2), "audio/wav", confidence_threshold=0.1)
        assert refused.value.status == 400
        with pytest.raises(symbl_rest.rest.ApiException) as missing:
            async_api.append_audio(make_wav(0.2), "audio/wav", "999")
        assert missing.value.status == 404
