"""markdown, srt and vtt exports from a real run, opened by the programs people use on them."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import srt
import webvtt
from e2e_harness import DaemonHarness, wait_until
from markdown_it import MarkdownIt
from sox_audio import sox_wav

PROFILE = {
    "params": {"languageCode": "en-US", "enableSpeakerDiarization": True,
               "diarizationSpeakerCount": 2},
    "export": ["transcript", "markdown", "srt", "vtt"],
    "transcript_options": {"createParagraphs": True, "showSpeakerSeparation": True,
                           "highlightAllKeyPhrases": True},
}  # fmt: skip


def ffprobe_codec(path: Path) -> str:
    """The subtitle codec ffprobe finds in ``path`` (it fails on a file it cannot read)."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_name", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    codec: str = json.loads(result.stdout)["streams"][0]["codec_name"]
    return codec


def ffmpeg_text(path: Path, tmp_path: Path) -> str:
    """The cues as ffmpeg decodes them, converted to SubStation Alpha."""
    out = tmp_path / f"{path.name}.ass"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(path), str(out)], check=True, capture_output=True
    )
    return out.read_text()


def run(harness: DaemonHarness, name: str, seconds: float = 2.0) -> dict[str, object]:
    harness.start()
    sox_wav(harness.inbox / name, seconds)
    harness.wait_filed(1)
    # The record is written first, then the export files, then the audio is moved.
    wait_until(lambda: not (harness.inbox / name).exists(), 10, f"{name} moved to done/")
    return harness.results()


class TestFormattedTranscripts:
    """Each export is a file beside the audio, listed in the record, readable by its consumers."""

    def test_srt_and_vtt_play_and_markdown_renders(
        self, harness_factory: Callable[..., DaemonHarness], tmp_path: Path
    ) -> None:
        harness = harness_factory(profile=PROFILE)
        result = run(harness, "call.wav")["call.wav"]
        assert isinstance(result, dict) and "export_errors" not in result
        exports = result["exports"]
        for name, suffix, media_type in (
            ("markdown", ".md", "text/markdown"),
            ("srt", ".srt", "application/x-subrip"),
            ("vtt", ".vtt", "text/vtt"),
        ):
            path = harness.done / f"call.wav{suffix}"
            assert exports[name] == {
                "suffix": suffix,
                "contentType": media_type,
                "bytes": path.stat().st_size,
                "file": f"call.wav{suffix}",
            }

        markdown = (harness.done / "call.wav.md").read_text()
        html = MarkdownIt("commonmark", {"html": True}).render(markdown)
        assert "Speaker 1: Part 1 of this conversation is <mark>call.wav</mark>" in html

        subtitles = harness.done / "call.wav.srt"
        cues = list(srt.parse(subtitles.read_text()))
        assert len(cues) == 1 and cues[0].start.total_seconds() == 0
        assert abs(cues[0].end.total_seconds() - 2.0) < 0.01
        assert cues[0].content.startswith("Speaker 1: Part 1 of this conversation is call.wav")
        assert ffprobe_codec(subtitles) == "subrip"
        assert "Speaker 1: Part 1 of this conversation" in ffmpeg_text(subtitles, tmp_path)

        captions = webvtt.read(str(harness.done / "call.wav.vtt")).captions
        assert [(c.start, c.end) for c in captions] == [("00:00:00.000", "00:00:02.000")]
        assert captions[0].text == cues[0].content
        assert ffprobe_codec(harness.done / "call.wav.vtt") == "webvtt"
        assert "Speaker 1: Part 1" in ffmpeg_text(harness.done / "call.wav.vtt", tmp_path)

        # The plain transcript keeps its own format.
        transcript = (harness.done / "call.wav.transcript.txt").read_text()
        assert transcript.startswith("[00:00:00] Speaker 1: Part 1 of this conversation")
        asked = [r.path for r in harness.emulator.state.requests if r.method == "POST"]
        assert sum(path.endswith("/transcript") for path in asked) == 2  # markdown, srt for both

    def test_an_export_file_already_in_done_is_never_overwritten(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        harness = harness_factory(profile=PROFILE)
        harness.done.mkdir(parents=True, exist_ok=True)
        (harness.done / "call.wav.md").write_text("someone's notes\n")
        results = run(harness, "call.wav")
        assert set(results) == {"call.1.wav"}
        assert (harness.done / "call.wav.md").read_text() == "someone's notes\n"
        assert not (harness.done / "call.wav").exists()
        record = results["call.1.wav"]
        assert isinstance(record, dict)
        assert record["exports"]["vtt"]["file"] == "call.1.wav.vtt"
        for suffix in (".md", ".srt", ".vtt", ".transcript.txt"):
            assert (harness.done / f"call.1.wav{suffix}").exists()

    def test_a_failed_export_is_noted_and_the_audio_still_filed(
        self, harness_factory: Callable[..., DaemonHarness]
    ) -> None:
        # Without diarization or channel metadata the emulator still answers; a summary export
        # of a conversation submitted without enableSummary is what Symbl refuses.
        profile = {**PROFILE, "export": ["srt", "summary"]}
        harness = harness_factory(profile=profile)
        result = run(harness, "call.wav")["call.wav"]
        assert isinstance(result, dict)
        assert "summary" in result["export_errors"]
        assert "enableSummary" in result["export_errors"]["summary"]
        assert (harness.done / "call.wav.srt").exists()
        assert (harness.done / "call.wav").exists()
