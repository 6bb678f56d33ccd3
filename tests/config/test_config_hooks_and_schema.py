"""The ``hooks`` keys are checked like every other key; ``config-schema`` describes them all."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from config_harness import VALID, Outcome

from daemon.config import load_config
from daemon.config.jsonschema import SCHEMA_FILE, build_schema, readme_descriptions
from daemon.config.schema import schema_keys
from daemon.config.yamlsource import load_yaml_document

ROOT = Path(__file__).resolve().parents[2]
WriteConfig = Callable[[str], Path]
CheckConfig = Callable[[Path], Outcome]


class TestHookKeys:
    """A hook is exactly one of notify, command or ping; mistakes name file, line and key."""

    def test_the_issue_example_loads(self, write_config: WriteConfig) -> None:
        path = write_config(
            VALID + "hooks:\n"
            "  - on: [failed, stalled, recovered]\n"
            '    notify: ["mailtos://ops:pw@mail.example.com?to=a@example.com", '
            '"json://127.0.0.1:8080/alerts"]\n'
            "  - on: [done]\n"
            "    command: [/usr/local/bin/copy-transcript, --to, /srv/share]\n"
            "    timeout_seconds: 60\n"
            "  - ping: https://hc.example.com/ping/UUID\n"
            "    interval_seconds: 300\n"
        )
        config = load_config(path)
        notify, command, ping = config.hooks
        assert notify.events == ("failed", "stalled", "recovered") and len(notify.notify) == 2
        assert command.command[0] == "/usr/local/bin/copy-transcript"
        assert ping.ping == "https://hc.example.com/ping/UUID" and ping.interval_seconds == 300
        assert "pw" not in repr(config)

    def test_profile_hooks_are_inherited(self, write_config: WriteConfig) -> None:
        path = write_config(
            VALID.replace(
                "profiles:\n",
                "profiles:\n  base:\n    hooks:\n      - on: [done]\n        command: [/bin/true]\n"
                "  child:\n    extends: base\n",
            )
        )
        profiles = load_config(path).profiles
        assert profiles["child"].hooks == profiles["base"].hooks
        assert profiles["child"].hooks[0].where == "profiles.base.hooks[0]"
        assert profiles["default"].hooks == ()

    @pytest.mark.parametrize(
        ("hook", "expected"),
        [
            (
                "  - on: [done]\n    command: [/bin/true]\n    ping: https://x.example/p\n",
                "config.yaml:15: hooks[0].ping: a hook has exactly one of notify, command or ping",
            ),
            (
                "  - command: [/bin/true]\n",
                "config.yaml:13: hooks[0].on: needs the events to act on: done, failed, "
                "stalled, recovered",
            ),
            (
                "  - on: [finished]\n    command: [/bin/true]\n",
                "config.yaml:13: hooks[0].on[0]: must be one of 'done', 'failed', 'stalled' or "
                "'recovered'",
            ),
            (
                "  - on: [failed]\n    notify: ['nosuchscheme://x']\n",
                "config.yaml:14: hooks[0].notify[0]: not a notification URL Apprise understands "
                "(scheme 'nosuchscheme')",
            ),
        ],
    )
    def test_mistakes(
        self, write_config: WriteConfig, check_config: CheckConfig, hook: str, expected: str
    ) -> None:
        outcome = check_config(write_config(VALID + "hooks:\n" + hook))
        assert outcome.code == 2
        assert any(line.endswith(expected) for line in outcome.errors), outcome.errors


class TestJsonSchema:
    """The shipped schema is the models' schema with the README's words on every key."""

    def test_shipped_file_is_current(self) -> None:
        built = build_schema(readme_descriptions((ROOT / "README.md").read_text()))
        assert json.loads(SCHEMA_FILE.read_text()) == built, (
            "regenerate: python -m daemon.config.jsonschema README.md "
            "> daemon/config/config.schema.json"
        )

    def test_every_key_has_a_description(self) -> None:
        descriptions = readme_descriptions((ROOT / "README.md").read_text())
        assert sorted(set(schema_keys()) - set(descriptions)) == []
        text = SCHEMA_FILE.read_text()
        for key in ("hooks[].timeout_seconds", "inboxes[].settle_seconds", "symbl.app_id"):
            assert json.dumps(descriptions[key])[1:-1] in text

    def test_command_prints_it(self) -> None:
        printed = subprocess.run(
            [sys.executable, "-m", "daemon", "config-schema"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        schema = json.loads(printed)
        assert schema["$schema"].endswith("2020-12/schema")
        assert "examples" in schema["$defs"]["HookSection"]["properties"]["command"]

    def test_example_config_is_valid_and_points_at_it(self) -> None:
        example = (ROOT / "config.example.yaml").read_text()
        first = example.splitlines()[0]
        assert first == "# yaml-language-server: $schema=daemon/config/config.schema.json"
        assert (ROOT / first.split("$schema=")[1]).resolve() == SCHEMA_FILE
        # The project's own YAML reading: PyYAML's safe_load would make the key `on` a boolean
        # (YAML 1.1); editors read YAML 1.2, where it is the string it looks like.
        data = load_yaml_document(example, "config.example.yaml").data
        jsonschema.validate(data, json.loads(SCHEMA_FILE.read_text()))

    def test_schema_rejects_what_the_loader_rejects(self) -> None:
        bad = load_yaml_document(
            VALID + "hooks:\n  - on: [done]\n    commmand: [/bin/true]\n", "config.yaml"
        ).data
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, json.loads(SCHEMA_FILE.read_text()))


class TestCheckConfigShowsHooks:
    """check-config lists the hooks without the passwords and tokens in their URLs."""

    def test_urls_are_masked(self, write_config: WriteConfig, check_config: CheckConfig) -> None:
        path = write_config(
            VALID + "hooks:\n"
            "  - on: [failed]\n"
            '    notify: ["mailtos://ops:pa55-w0rd-x@mail.example.com?to=a@example.com"]\n'
            "  - ping: https://hc.example.com/ping/5ecret-uuid-1234\n"
        )
        outcome = check_config(path)
        assert outcome.code == 0, outcome.errors
        assert "pa55-w0rd-x" not in outcome.out and "5ecret-uuid-1234" not in outcome.out
        assert "mailtos://***" in outcome.out and "https://***" in outcome.out
