"""The emulator's formatted transcripts and summary, as Symbl documents them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import srt
from emulator_http import api_client
from markdown_it import MarkdownIt

from daemon.emulator import EmulatorServer, EmulatorState
from daemon.files.samples import make_wav

WAV = {"Content-Type": "audio/wav"}


def completed_conversation(
    client: httpx.Client, state: EmulatorState, seconds: float = 1.5, **params: object
) -> str:
    response = client.post(
        "/v1/process/audio", content=make_wav(seconds), headers=WAV, params=params
    )
    assert response.status_code == 201, response.text
    ids = response.json()
    state.wait_for(lambda s: s.job_status(ids["jobId"]) == "completed", 5)
    conversation_id: str = ids["conversationId"]
    return conversation_id


class TestFormattedTranscript:
    """POST /v1/conversations/{id}/transcript answers {"transcript": {payload, contentType}}."""

    def test_srt_is_what_players_read(self, emulator: EmulatorServer, tmp_path: Path) -> None:
        with api_client(emulator) as client:
            conversation = completed_conversation(
                client, emulator.state, name="standup.wav", enableSpeakerDiarization="true"
            )
            response = client.post(
                f"/v1/conversations/{conversation}/transcript",
                json={"contentType": "text/srt", "showSpeakerSeparation": True},
            )
        assert response.status_code == 200
        transcript = response.json()["transcript"]
        assert transcript["contentType"] == "text/srt"
        cues = list(srt.parse(transcript["payload"]))
        assert [
            (cue.index, cue.start.total_seconds(), cue.end.total_seconds()) for cue in cues
        ] == [(1, 0.0, 1.5)]
        assert cues[0].content.startswith("Speaker 1: Part 1 of this conversation is standup.wav")
        path = tmp_path / "raw.srt"
        path.write_text(transcript["payload"])
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json",
             str(path)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert json.loads(probe.stdout)["streams"][0]["codec_name"] == "subrip"

    def test_markdown_flags_change_the_document(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            first = completed_conversation(client, emulator.state, name="a.wav")
            path = f"/v1/conversations/{first}/transcript"
            second = client.put(
                f"/v1/process/audio/{first}", content=make_wav(1.0), headers=WAV,
                params={"name": "b.wav"},
            ).json()  # fmt: skip
            emulator.state.wait_for(lambda s: s.job_status(second["jobId"]) == "completed", 5)
            plain = client.post(path, json={"contentType": "text/markdown"}).json()
            rich = client.post(
                path,
                json={"contentType": "text/markdown", "createParagraphs": True,
                      "showSpeakerSeparation": True,
                      "phrases": {"highlightOnlyInsightKeyPhrases": True}},
            ).json()  # fmt: skip
        plain_text = plain["transcript"]["payload"]
        rich_text = rich["transcript"]["payload"]
        assert "<br/>" not in plain_text and "<mark>" not in plain_text
        html = MarkdownIt("commonmark", {"html": True}).render(rich_text)
        assert "Speaker 1: Part 1 of this conversation is <mark>a.wav</mark>" in html
        assert "<br/><br/>Speaker 1: Part 2 of this conversation is <mark>b.wav</mark>" in html

    def test_bad_requests_are_refused_like_symbl(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            conversation = completed_conversation(client, emulator.state)
            path = f"/v1/conversations/{conversation}/transcript"
            cases = {
                "contentType": {"contentType": "text/html"},
                "unknown fields: highlightAllKeyPhrases": {
                    "contentType": "text/markdown", "highlightAllKeyPhrases": True
                },
                "createParagraphs: must be a boolean": {
                    "contentType": "text/markdown", "createParagraphs": "yes"
                },
            }  # fmt: skip
            for expected, body in cases.items():
                response = client.post(path, json=body)
                assert response.status_code == 400
                assert expected in response.json()["message"]
            missing = client.post("/v1/conversations/404/transcript", json={"contentType": "x"})
            assert missing.status_code == 404
        anonymous = httpx.post(f"{emulator.base_url}{path}", json={"contentType": "text/srt"})
        assert anonymous.status_code == 401


class TestSummary:
    """Symbl summarises only conversations submitted with enableSummary, or on refresh=true."""

    def test_only_when_asked_for(self, emulator: EmulatorServer) -> None:
        with api_client(emulator) as client:
            plain = completed_conversation(client, emulator.state)
            summed = completed_conversation(client, emulator.state, enableSummary="true")
            refused = client.get(f"/v1/conversations/{plain}/summary")
            given = client.get(f"/v1/conversations/{summed}/summary")
            refreshed = client.get(f"/v1/conversations/{plain}/summary?refresh=true")
        assert refused.status_code == 404
        assert "enableSummary" in refused.json()["message"]
        assert given.status_code == 200 and given.json()["summary"][0]["messageRefs"]
        assert refreshed.status_code == 200 and refreshed.json()["summary"]
