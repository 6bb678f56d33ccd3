"""``symbl-inbox config-schema``: the configuration's JSON Schema, for editors and CI checks.

The schema is the pydantic models' own (``schema.py``), with the README's configuration
reference as the description of every key and a few example values. It ships as
``daemon/config/config.schema.json``; ``config.example.yaml`` points editors at it with a
``# yaml-language-server: $schema=...`` line. After a change to the keys or the reference,
regenerate it (a test fails until the shipped file matches)::

    python -m daemon.config.jsonschema README.md > daemon/config/config.schema.json
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from daemon.config.schema import ConfigFile

SCHEMA_FILE = Path(__file__).with_name("config.schema.json")
SCHEMA_ID = "https://symbl-inbox.invalid/config.schema.json"
_START, _END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
_ROW = re.compile(r"^\| `([^`]+)` \|[^|]*\|[^|]*\| (.*) \|$", re.MULTILINE)

EXAMPLES: dict[str, list[Any]] = {
    "symbl.base_url": ["https://api.symbl.ai"],
    "symbl.app_id": ["${SYMBL_APP_ID}"],
    "symbl.app_secret_file": ["${CREDENTIALS_DIRECTORY}/symbl-app-secret"],
    "state_dir": ["/var/lib/symbl-inbox"],
    "http.listen": ["127.0.0.1:8787"],
    "http.public_url": ["https://inbox.example.com"],
    "inboxes[].path": ["/srv/audio/sales/inbox"],
    "inboxes[].exclude": [["tmp/*", "*.part"]],
    "profiles.<name>.continuation_pattern": [r"^(?P<conversation>.+)-part(?P<part>\d+)\.wav$"],
    "hooks[].on": [["failed", "stalled", "recovered"]],
    "hooks[].notify": [["mailtos://user:password@mail.example.com?to=ops@example.com"]],
    "hooks[].command": [["/usr/local/bin/copy-transcript", "--to", "/srv/share"]],
    "hooks[].ping": ["https://hc-ping.com/your-check-uuid"],
}


def readme_descriptions(readme: str) -> dict[str, str]:
    """The "Meaning" column of the README's configuration reference, by key."""
    region = readme[readme.index(_START) : readme.index(_END)]
    return {key: meaning.strip() for key, meaning in _ROW.findall(region)}


def build_schema(descriptions: Mapping[str, str]) -> dict[str, Any]:
    """The models' JSON Schema with ``descriptions`` and ``EXAMPLES`` on every key."""
    schema = ConfigFile.model_json_schema()
    defs: dict[str, Any] = schema.get("$defs", {})
    chosen: dict[int, int] = {}  # node id -> depth of the key that described it

    def describe(node: dict[str, Any], key: str) -> None:
        depth = key.count(".") + key.count("[]")
        if key in descriptions and chosen.get(id(node), 99) > depth:
            # A section shared by two places (hooks) takes the shorter key's words.
            node["description"] = descriptions[key]
            chosen[id(node)] = depth
            if key in EXAMPLES:
                node["examples"] = EXAMPLES[key]
        walk(node, key)

    def walk(node: dict[str, Any], key: str) -> None:
        ref = node.get("$ref")
        if isinstance(ref, str):
            walk(defs[ref.rsplit("/", 1)[-1]], key)
        for option in node.get("anyOf", []):
            walk(option, key)
        for name, prop in node.get("properties", {}).items():
            describe(prop, f"{key}.{name}" if key else name)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{key}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{key}.<name>")

    walk(schema, "")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    schema["title"] = "symbl-inbox configuration"
    schema["description"] = "The YAML configuration of symbl-inbox (see its README)."
    return dict(sorted(schema.items(), key=lambda item: not item[0].startswith("$")))


def render(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``config-schema`` takes no arguments."""


def main(args: argparse.Namespace) -> int:
    sys.stdout.write(SCHEMA_FILE.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.stdout.write(render(build_schema(readme_descriptions(Path(sys.argv[1]).read_text()))))
