"""``symbl-inbox [--config PATH] COMMAND``: one entry point, one module per command.

Each command module offers ``add_arguments(parser)`` and ``main(args) -> int``. Exit codes:
0 fine, 1 runtime failure, 2 bad configuration or usage.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from daemon import __version__

DEFAULT_CONFIG = Path("/etc/symbl-inbox/config.yaml")
CONFIG_ENV = "SYMBL_INBOX_CONFIG"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("run", "daemon.commands.run", "watch the inboxes and process files until stopped"),
    Command(
        "check-config", "daemon.commands.check_config", "validate the configuration and print it"
    ),
    Command("config-schema", "daemon.config.jsonschema", "print the configuration's JSON Schema"),
    Command(
        "emulator", "daemon.commands.emulator", "serve a local emulator of the Symbl async API"
    ),
    Command(
        "demo",
        "daemon.commands.demo",
        "run the daemon on a demo inbox against the built-in emulator",
    ),
    Command(
        "status", "daemon.commands.status", "show per-inbox counts, jobs in flight and failures"
    ),
    Command(
        "conversations",
        "daemon.commands.status",
        "show conversation keys and their conversationIds",
    ),
    Command(
        "retry", "daemon.commands.retry", "move failed files back into their inbox to process again"
    ),
    Command(
        "submit", "daemon.commands.submit", "upload one file with a profile's parameters, once"
    ),
    Command(
        "migrate",
        "daemon.commands.migrate",
        "bring the shared PostgreSQL journal's schema up to date",
    ),
)


def resolve_config_path(given: str | None) -> Path:
    """``--config``, else ``$SYMBL_INBOX_CONFIG``, else ``/etc/symbl-inbox/config.yaml``."""
    if given:
        return Path(given)
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else DEFAULT_CONFIG


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the chosen command's module is imported (start-up time is a feature)."""
    parser = argparse.ArgumentParser(
        prog="symbl-inbox",
        description="Watch inbox folders and send their audio to the Symbl.ai Async Audio API.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--config",
        metavar="PATH",
        help=f"configuration file (default: ${CONFIG_ENV}, then {DEFAULT_CONFIG})",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = chosen_command(sys.argv[1:] if argv is None else argv)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.help)
        if command.name == chosen:
            module = importlib.import_module(command.module)
            module.add_arguments(sub)
            sub.set_defaults(handler=module.main)
    return parser


def chosen_command(argv: Sequence[str]) -> str | None:
    """The command named in ``argv``: the first word that is not an option or its value."""
    names = {command.name for command in COMMANDS}
    words = iter(argv)
    for word in words:
        if word == "--config":
            next(words, None)
        elif word in names:
            return word
        elif not word.startswith("-"):
            return None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    args.config_path = resolve_config_path(args.config)
    try:
        code: int = args.handler(args)
    except KeyboardInterrupt:
        return EXIT_FAILURE
    return code


if __name__ == "__main__":
    sys.exit(main())
