"""What goes up for a recording: the plan from its channels, its name and its profile."""

from __future__ import annotations

from typing import Any

import pytest

from daemon.config.model import Profile, StereoPolicy
from daemon.files.audio import AudioFormat, AudioInfo, AudioProblem
from daemon.files.recordings import Plan, params_as_planned, params_to_send, plan_upload, planned

MONO_WAV = AudioInfo(AudioFormat.WAV, 1, 16000, 2.0, codec="pcm", block_align=2, data_size=64000)
STEREO_WAV = AudioInfo(AudioFormat.WAV, 2, 16000, 2.0, codec="pcm", block_align=4)
STEREO_ADPCM = AudioInfo(AudioFormat.WAV, 2, 16000, 2.0, codec="adpcm_ms", block_align=2048)
STEREO_MP3 = AudioInfo(AudioFormat.MP3, 2, 44100, 2.0, codec="mp3")
NOT_AUDIO = AudioProblem("not_audio", "neither")
PER_CHANNEL = {"enableSeparateRecognitionPerChannel": True}


def profile(stereo: StereoPolicy = "reject", convert: bool = False) -> Profile:
    return Profile("calls", {}, stereo=stereo, convert=convert)


def plan(
    inspected: AudioInfo | AudioProblem,
    name: str = "x.wav",
    *,
    stereo: StereoPolicy = "reject",
    convert: bool = False,
    params: dict[str, Any] | None = None,
    can_convert: bool = True,
) -> Plan:
    return plan_upload(
        inspected,
        name=name,
        profile=profile(stereo, convert),
        params=params or {},
        can_convert=can_convert,
    )


class TestStereo:
    """The same policy for WAV and MP3; the message names the setting to change."""

    @pytest.mark.parametrize("info", [STEREO_WAV, STEREO_MP3])
    def test_reject_names_the_setting(self, info: AudioInfo) -> None:
        with pytest.raises(AudioProblem) as caught:
            plan(info)
        assert caught.value.reason == "stereo_audio"
        assert "stereo: downmix" in caught.value.message
        assert "profile 'calls'" in caught.value.message

    @pytest.mark.parametrize("info", [STEREO_WAV, STEREO_MP3])
    def test_per_channel_sends_it_as_it_is(self, info: AudioInfo) -> None:
        chosen = plan(info, stereo="per_channel", params=PER_CHANNEL)
        assert (chosen.action, chosen.per_channel) == ("as_is", True)
        assert chosen.content_type == info.format.content_type

    def test_mono_files_of_a_per_channel_profile_go_without_it(self) -> None:
        chosen = plan(MONO_WAV, stereo="per_channel", params=PER_CHANNEL)
        params = {**PER_CHANNEL, "channelMetadata": [{"channel": 1}], "languageCode": "en-US"}
        assert params_to_send(chosen, params) == {"languageCode": "en-US"}

    def test_pcm_wavs_mix_down_without_the_extra(self) -> None:
        assert plan(STEREO_WAV, stereo="downmix", can_convert=False).action == "downmix"

    @pytest.mark.parametrize("info", [STEREO_ADPCM, STEREO_MP3])
    def test_coded_audio_mixes_down_with_the_extra_only(self, info: AudioInfo) -> None:
        assert plan(info, stereo="downmix").action == "downmix"
        with pytest.raises(AudioProblem) as caught:
            plan(info, stereo="downmix", can_convert=False)
        assert "'convert' extra" in caught.value.message


class TestOtherFormats:
    """Other containers are named by their suffix; content that is WAV or MP3 wins."""

    def test_unsupported_by_default_naming_the_setting(self) -> None:
        with pytest.raises(AudioProblem) as caught:
            plan(NOT_AUDIO, "call.M4A")
        assert caught.value.reason == "unsupported_format"
        assert "convert: true" in caught.value.message and ".m4a" in caught.value.message

    def test_converted_when_the_profile_says_so(self) -> None:
        assert plan(NOT_AUDIO, "call.flac", convert=True).action == "convert"

    def test_without_the_extra_the_message_says_what_to_install(self) -> None:
        with pytest.raises(AudioProblem) as caught:
            plan(NOT_AUDIO, "call.ogg", convert=True, can_convert=False)
        assert "symbl-inbox[convert]" in caught.value.message

    def test_text_named_wav_stays_not_audio(self) -> None:
        with pytest.raises(AudioProblem) as caught:
            plan(NOT_AUDIO, "notes.wav", convert=True)
        assert caught.value.reason == "not_audio"

    def test_a_wav_named_m4a_goes_as_the_wav_it_is(self) -> None:
        assert plan(MONO_WAV, "call.m4a").action == "as_is"


class TestRecorded:
    """The journal keeps what was dropped and, for files sent as they are, what was sent."""

    def test_as_is(self) -> None:
        chosen = plan(MONO_WAV)
        data = planned(chosen, MONO_WAV, 64044, {"languageCode": "en-US"})
        assert data["content_type"] == "audio/wav"
        assert data["duration_seconds"] == 2.0
        assert data["audio"]["sent"] == data["audio"]["dropped"] | {
            "converted": False,
            "downmixed": False,
            "per_channel": False,
        }
        assert data["audio"]["dropped"]["bytes"] == 64044

    def test_a_reload_keeps_mono_files_without_per_channel(self) -> None:
        params = {**PER_CHANNEL, "channelMetadata": [{"channel": 1}], "languageCode": "fr-FR"}
        mono = plan(MONO_WAV, stereo="per_channel", params=PER_CHANNEL).as_data()
        stereo = plan(STEREO_WAV, stereo="per_channel", params=PER_CHANNEL).as_data()
        assert params_as_planned(mono, params) == {"languageCode": "fr-FR"}
        assert params_as_planned(stereo, params) == params
        assert params_as_planned(None, params) == params
