"""The ``stereo`` and ``convert`` profile keys: defaults, inheritance, conflicts, extras."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from config_harness import Outcome

from daemon.config import ConfigError, load_config
from daemon.config.profiles import extras_warnings

BASE = """\
symbl:
  app_id: test-app
  app_secret: s3cret-value-for-tests
state_dir: state
profiles:
{profiles}
inboxes:
  - path: inbox
    profile: calls
"""


def config_with(profiles: str) -> str:
    return BASE.format(profiles=profiles)


class TestStereoSetting:
    """The default is reject; per_channel turns per-channel recognition on for the profile."""

    def test_default_is_reject(self, write_config: Callable[[str], Path]) -> None:
        config = load_config(write_config(config_with("  calls: {}")))
        assert (config.profiles["calls"].stereo, config.profiles["calls"].convert) == (
            "reject",
            False,
        )

    def test_per_channel_allows_channel_metadata(self, write_config: Callable[[str], Path]) -> None:
        profiles = (
            "  base:\n    stereo: per_channel\n    convert: true\n"
            "  calls:\n    extends: base\n    params:\n      channelMetadata:\n"
            "        - channel: 1\n          speaker: {name: Agent}\n"
        )
        calls = load_config(write_config(config_with(profiles))).profiles["calls"]
        assert (calls.stereo, calls.convert) == ("per_channel", True)
        assert calls.params["enableSeparateRecognitionPerChannel"] is True

    def test_the_old_parameter_implies_per_channel(
        self, write_config: Callable[[str], Path]
    ) -> None:
        profiles = "  calls:\n    params:\n      enableSeparateRecognitionPerChannel: true\n"
        assert load_config(write_config(config_with(profiles))).profiles["calls"].stereo == (
            "per_channel"
        )

    def test_downmix_with_per_channel_parameter_is_an_error(
        self, write_config: Callable[[str], Path]
    ) -> None:
        profiles = (
            "  calls:\n    stereo: downmix\n    params:\n"
            "      enableSeparateRecognitionPerChannel: true\n"
        )
        with pytest.raises(ConfigError) as caught:
            load_config(write_config(config_with(profiles)))
        assert any("profiles.calls.stereo" in str(p) for p in caught.value.problems)

    def test_unknown_value_is_an_error(
        self, write_config: Callable[[str], Path], check_config: Callable[[Path], Outcome]
    ) -> None:
        outcome = check_config(write_config(config_with("  calls:\n    stereo: mono\n")))
        assert outcome.code == 2
        assert any("profiles.calls.stereo" in line for line in outcome.errors)

    def test_check_config_shows_them(
        self, write_config: Callable[[str], Path], check_config: Callable[[Path], Outcome]
    ) -> None:
        outcome = check_config(write_config(config_with("  calls:\n    stereo: downmix\n")))
        assert outcome.code == 0
        assert "stereo: downmix" in outcome.out and "convert: false" in outcome.out


class TestExtras:
    """check-config says when a profile asks for what the installed extras cannot do."""

    def test_without_the_extra_each_asking_profile_is_named(self) -> None:
        profiles = {"a": {"convert": True}, "b": {"stereo": "downmix"}, "c": {"stereo": "reject"}}
        found = extras_warnings(profiles, installed=False)
        assert [problem.loc for problem in found] == [
            ("profiles", "a", "convert"),
            ("profiles", "b", "stereo"),
        ]
        assert all("symbl-inbox[convert]" in problem.message for problem in found)

    def test_with_the_extra_nothing_to_say(self) -> None:
        assert extras_warnings({"a": {"convert": True}}, installed=True) == []
