"""Symbl's SRT made standard, and WebVTT made from it, read back by real subtitle parsers."""

from __future__ import annotations

import html
import io

import srt
import webvtt

from daemon.symbl.exports import name_export_files, parse_srt, render_vtt

# Symbl's documented SRT answer writes times without padding.
SYMBL_SRT = (
    "1\n00:00:00,000 --> 0:0:4,100\nOkay, so you're talking about that file.\n\n"
    "2\n0:0:6,800 --> 0:0:20,600\nSpeaker 2: a <b> & c --> d\n\n"
    "3\n0:1:2,500 --> 1:0:0,000\nBye.\n"
)


class TestSrt:
    """What Symbl sends is rewritten as the SRT players expect."""

    def test_unpadded_times_are_written_padded(self) -> None:
        text = srt.compose(parse_srt(SYMBL_SRT))
        assert "00:00:00,000 --> 00:00:04,100" in text
        assert "00:01:02,500 --> 01:00:00,000" in text
        cues = list(srt.parse(text))
        assert [cue.index for cue in cues] == [1, 2, 3]

    def test_garbage_is_a_value_error(self) -> None:
        try:
            parse_srt("this is not srt at all")
        except ValueError:
            return
        raise AssertionError("garbage parsed as SRT")


class TestVtt:
    """WebVTT from the cues parses with webvtt-py and keeps times and text."""

    def test_webvtt_reads_it_back(self) -> None:
        text = render_vtt(parse_srt(SYMBL_SRT))
        assert text.startswith("WEBVTT\n\n")
        captions = webvtt.from_buffer(io.StringIO(text)).captions
        assert [(c.start, c.end) for c in captions] == [
            ("00:00:00.000", "00:00:04.100"),
            ("00:00:06.800", "00:00:20.600"),
            ("00:01:02.500", "01:00:00.000"),
        ]
        # webvtt-py hands the cue text over raw; a player decodes the entities.
        assert html.unescape(captions[1].text) == "Speaker 2: a <b> & c --> d"

    def test_markup_in_the_text_is_escaped(self) -> None:
        text = render_vtt(parse_srt(SYMBL_SRT))
        assert "a &lt;b&gt; &amp; c --&gt; d" in text


class TestRecordNames:
    """The record names each file export by the name the audio was filed under."""

    def test_names_follow_a_renamed_audio(self) -> None:
        record = {"exports": {"srt": {"suffix": ".srt"}, "topics": [{"text": "x"}]}}
        name_export_files(record, "team/call.1.wav")
        assert record["exports"]["srt"] == {"suffix": ".srt", "file": "call.1.wav.srt"}
