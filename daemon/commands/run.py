"""``symbl-inbox run``: load the configuration, set up logging, run the daemon until stopped."""

from __future__ import annotations

import argparse
import asyncio
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default="auto",
        help="log as JSON lines or readable lines (default: JSON unless stdout is a terminal)",
    )


def main(args: argparse.Namespace) -> int:
    from daemon.config import ConfigError, load_config
    from daemon.logs import configure_logging

    try:
        config = load_config(args.config_path, prepare_folders=False)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    json_logs = {"auto": None, "json": True, "console": False}[args.log_format]
    configure_logging(config.log_level, json=json_logs)
    from daemon.service import Daemon

    return asyncio.run(Daemon(config).run())
