"""The proxy, CA and transcript keys through the real ``check-config``: lines, masks, warnings."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import trustme
from config_harness import VALID, Outcome

# The shared valid file, split where the lines under ``symbl:`` end.
HEAD, TAIL = VALID[: VALID.index("state_dir")], VALID[VALID.index("state_dir") :]

Check = Callable[..., Outcome]


def problems(outcome: Outcome, folder: Path) -> list[str]:
    """stderr lines with the config file's folder left out."""
    return [line.replace(f"{folder}/", "") for line in outcome.errors]


Write = Callable[[str], Path]


class TestProxyKeys:
    """symbl.proxy and its password file: checked, and the password never printed."""

    def test_a_password_file_is_read_and_masked(
        self, folder: Path, write_config: Write, check_config: Check
    ) -> None:
        (folder / "pw").write_text("hunter2-proxy\n")
        path = write_config(
            HEAD + "  proxy: http://bob@proxy.example.com:3128\n  proxy_password_file: pw\n" + TAIL
        )
        outcome = check_config(path)
        assert outcome.code == 0, outcome.errors
        assert "proxy: http://bob@proxy.example.com:3128" in outcome.out
        assert "proxy_password: '***'" in outcome.out
        assert "hunter2-proxy" not in outcome.out + "".join(outcome.errors)

    def test_a_password_in_the_url_is_masked(
        self, write_config: Write, check_config: Check
    ) -> None:
        path = write_config(HEAD + "  proxy: http://bob:inl1ne-pw@proxy:3128\n" + TAIL)
        outcome = check_config(path)
        assert outcome.code == 0, outcome.errors
        assert "inl1ne-pw" not in outcome.out
        assert "proxy: http://bob@proxy:3128" in outcome.out

    @pytest.mark.parametrize(
        ("lines", "expected"),
        [
            (
                "  proxy: socks5://proxy:1080\n",
                "config.yaml:4: symbl.proxy: must be a proxy URL such as "
                "http://proxy.example.com:3128",
            ),
            (
                "  proxy: http://proxy:99999\n",
                "config.yaml:4: symbl.proxy: has a port that is not a number 1-65535",
            ),
            (
                "  proxy_password_file: pw\n",
                "config.yaml:4: symbl.proxy_password_file: needs symbl.proxy",
            ),
            ("  ca_mode: replace\n", "config.yaml:4: symbl.ca_mode: replace needs symbl.ca_file"),
        ],
    )
    def test_bad_values_are_named_at_their_line(
        self, lines: str, expected: str, folder: Path, write_config: Write, check_config: Check
    ) -> None:
        outcome = check_config(write_config(HEAD + lines + TAIL))
        assert outcome.code == 2
        assert problems(outcome, folder) == [expected]

    def test_an_unusable_proxy_variable_is_a_configuration_error(
        self,
        folder: Path,
        write_config: Write,
        check_config: Check,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("ALL_PROXY", "socks5://proxy:1080")
        outcome = check_config(write_config(HEAD + TAIL))
        assert outcome.code == 2
        assert problems(outcome, folder)[0].startswith(
            "config.yaml:1: symbl: the environment's all_proxy is 'socks5://proxy:1080'"
        )


class TestCaFile:
    """symbl.ca_file must hold a CA certificate; it is found relative to the file."""

    def test_a_real_bundle_loads(
        self, folder: Path, write_config: Write, check_config: Check
    ) -> None:
        trustme.CA().cert_pem.write_to_path(str(folder / "ca.pem"))
        outcome = check_config(write_config(HEAD + "  ca_file: ca.pem\n" + TAIL))
        assert outcome.code == 0, outcome.errors
        assert f"ca_file: {folder / 'ca.pem'}" in outcome.out

    def test_a_file_without_certificates_is_refused(
        self, folder: Path, write_config: Write, check_config: Check
    ) -> None:
        (folder / "ca.pem").write_text("-----BEGIN NOTHING-----\n")
        outcome = check_config(write_config(HEAD + "  ca_file: ca.pem\n" + TAIL))
        assert outcome.code == 2
        assert outcome.errors == [
            f"{folder}/config.yaml:4: symbl.ca_file: {folder / 'ca.pem'} holds no PEM certificate"
        ]


class TestTranscriptOptions:
    """Formatting flags are Symbl's booleans, inherited flag by flag; summary needs its flag."""

    def test_inherited_flag_by_flag(self, write_config: Write, check_config: Check) -> None:
        text = HEAD + TAIL.replace(
            "      languageCode: en-US\n",
            "      languageCode: en-US\n"
            "    transcript_options: {createParagraphs: true, showSpeakerSeparation: true}\n"
            "  child:\n"
            "    extends: default\n"
            "    export: [markdown]\n"
            "    transcript_options: {showSpeakerSeparation: false}\n",
        )
        outcome = check_config(write_config(text), "--json")
        assert outcome.code == 0, outcome.errors
        assert '"createParagraphs": true,\n        "showSpeakerSeparation": false' in outcome.out

    def test_unknown_flags_are_named(
        self, folder: Path, write_config: Write, check_config: Check
    ) -> None:
        text = HEAD + TAIL.replace(
            "      languageCode: en-US\n",
            "      languageCode: en-US\n    transcript_options: {createParagraph: true}\n",
        )
        outcome = check_config(write_config(text))
        assert outcome.code == 2
        assert problems(outcome, folder) == [
            "config.yaml:9: profiles.default.transcript_options.createParagraph: unknown key; "
            "did you mean 'createParagraphs'?"
        ]

    def test_summary_without_enable_summary_is_a_warning(
        self, folder: Path, write_config: Write, check_config: Check
    ) -> None:
        text = HEAD + TAIL.replace(
            "      languageCode: en-US\n", "      languageCode: en-US\n    export: [summary]\n"
        )
        outcome = check_config(write_config(text))
        assert outcome.code == 0
        assert problems(outcome, folder) == [
            "warning: config.yaml:9: profiles.default.export: exports summary, but "
            "params.enableSummary is not true: Symbl will have none"
        ]
