"""What goes up for a dropped recording: the file as it is, a mono mix of it, or a conversion.

A pure decision from what the inspector found, the file's name and its profile's ``stereo`` and
``convert`` settings; ``daemon.files.convert`` carries it out at upload time.

- Mono WAV or MP3: sent as it is.
- More than one channel: ``stereo: reject`` (the default) fails it as ``stereo_audio``;
  ``per_channel`` sends it as it is with ``enableSeparateRecognitionPerChannel=true``;
  ``downmix`` sends a mono WAV mixed from it.
- Audio in another container (``.m4a``, ``.flac``...): ``unsupported_format`` unless the profile
  says ``convert: true``; then a mono WAV made from it is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from daemon.config.model import Profile
from daemon.files.audio import AudioInfo, AudioProblem
from daemon.files.intake import OTHER_AUDIO_SUFFIXES

Action = Literal["as_is", "downmix", "convert"]
PER_CHANNEL = "enableSeparateRecognitionPerChannel"
EXTRA_HINT = "the optional 'convert' extra (pip install 'symbl-inbox[convert]')"


@dataclass(frozen=True)
class Plan:
    action: Action
    # Whether the file goes up with per-channel recognition (only ever a file of 2+ channels).
    per_channel: bool = False
    # The Content-Type of the file sent as it is; produced files are WAV.
    content_type: str = "audio/wav"

    def as_data(self) -> dict[str, Any]:
        return {"action": self.action, "per_channel": self.per_channel}


def plan_upload(
    inspected: AudioInfo | AudioProblem,
    *,
    name: str,
    profile: Profile,
    params: Mapping[str, Any],
    can_convert: bool,
) -> Plan:
    """The plan for one file, or an ``AudioProblem`` saying why it cannot go and what to set."""
    if isinstance(inspected, AudioProblem):
        suffix = PurePosixPath(name).suffix.lower()
        if inspected.reason != "not_audio" or suffix not in OTHER_AUDIO_SUFFIXES:
            raise inspected
        return _foreign(suffix, profile, can_convert)
    info = inspected
    content_type = info.format.content_type
    if info.channels == 1:
        return Plan("as_is", content_type=content_type)
    if params.get(PER_CHANNEL) is True:
        return Plan("as_is", per_channel=True, content_type=content_type)
    what = f"the {info.format.value.upper()} has {info.channels} channels"
    if profile.stereo == "downmix":
        if can_mix_natively(info) or can_convert:
            return Plan("downmix")
        raise AudioProblem(
            "stereo_audio",
            f"{what}; profile {profile.name!r} says stereo: downmix, but mixing down "
            f"{info.codec or info.format.value} audio needs {EXTRA_HINT}, which is not installed",
        )
    raise AudioProblem(
        "stereo_audio",
        f"{what}; Symbl takes mono audio. Set stereo: downmix (send a mono mix) or "
        f"stereo: per_channel (a transcript per channel, billed per channel) in profile "
        f"{profile.name!r}",
    )


def _foreign(suffix: str, profile: Profile, can_convert: bool) -> Plan:
    if not profile.convert:
        raise AudioProblem(
            "unsupported_format",
            f"{suffix} audio is not sent as it is (the API takes WAV and MP3); set convert: true "
            f"in profile {profile.name!r} to send a mono WAV made from it",
        )
    if not can_convert:
        raise AudioProblem(
            "unsupported_format",
            f"profile {profile.name!r} says convert: true, but converting {suffix} audio needs "
            f"{EXTRA_HINT}, which is not installed",
        )
    return Plan("convert")


def can_mix_natively(info: AudioInfo) -> bool:
    """Whether a WAV is mixed down with plain arithmetic (PCM 8 to 32 bit, 32/64-bit float,
    µ-law, A-law); everything else is decoded with the ``convert`` extra."""
    if info.format.value != "wav" or not info.channels:
        return False
    width = info.block_align // info.channels
    if info.codec in ("mulaw", "alaw"):
        return width == 1
    if info.codec == "float":
        return width in (4, 8)
    return info.codec == "pcm" and width in (1, 2, 3, 4)


def params_to_send(plan: Plan, params: Mapping[str, Any]) -> dict[str, Any]:
    """Per-channel recognition (and its ``channelMetadata``) only for the files that have
    channels to recognise: mono files of a ``per_channel`` profile go up without it."""
    sent = dict(params)
    if not plan.per_channel:
        sent.pop(PER_CHANNEL, None)
        sent.pop("channelMetadata", None)
    return sent


def params_as_planned(send: Mapping[str, Any] | None, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params_to_send`` for a plan kept in the journal (``Plan.as_data``), e.g. when a reload
    gives a file that was already planned its profile's new parameters."""
    if send is None:
        return dict(params)
    plan = Plan(send["action"], per_channel=bool(send.get("per_channel")))
    return params_to_send(plan, params)


def describe(info: AudioInfo, size: int) -> dict[str, Any]:
    """What the record says about a recording: the same keys for the dropped and the sent."""
    return {
        "format": info.format.value,
        "codec": info.codec,
        "channels": info.channels,
        "sample_rate": info.sample_rate,
        "duration_seconds": _rounded(info.duration_seconds),
        "bytes": size,
    }


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def as_dropped(inspected: AudioInfo | AudioProblem, size: int) -> dict[str, Any]:
    """What the record says of a file refused for what it is (its channels, its length)."""
    if isinstance(inspected, AudioProblem):
        return {}
    dropped = describe(inspected, size)
    return {"audio": {"dropped": dropped}, "duration_seconds": dropped["duration_seconds"]}


def planned(
    plan: Plan, inspected: AudioInfo | AudioProblem, size: int, params: Mapping[str, Any]
) -> dict[str, Any]:
    """What the journal keeps of a plan: what to do, the parameters to send, and what the
    record will say about the dropped file (and, for a file sent as it is, what was sent)."""
    data: dict[str, Any] = {"send": plan.as_data(), "params": params_to_send(plan, params)}
    if isinstance(inspected, AudioProblem):
        return data | {"audio": {"dropped": {"bytes": size}}}
    dropped = describe(inspected, size)
    audio: dict[str, Any] = {"dropped": dropped}
    if plan.action == "as_is":
        data["content_type"] = plan.content_type
        audio["sent"] = dropped | {
            "converted": False,
            "downmixed": False,
            "per_channel": plan.per_channel,
        }
    return data | {"audio": audio, "duration_seconds": dropped["duration_seconds"]}
