"""``symbl-inbox migrate``: bring the shared PostgreSQL journal's schema up to date, and say how.

The daemon does the same at start; this command lets an operator do it first (say, before
starting the upgraded daemons of a cluster) and see what was applied. Safe beside running
daemons and other ``migrate`` runs: migrations take turns under an advisory lock. Exit 0 done
(or nothing to do), 1 the database cannot be reached or is newer than this code, 2 a bad
configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from daemon.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from daemon.commands.status import load_operator_config
from daemon.config.model import Config
from daemon.logs import masker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``migrate`` takes no arguments: the configuration names the database."""


def main(args: argparse.Namespace) -> int:
    config = load_operator_config(args.config_path)
    if config is None:
        return EXIT_USAGE
    if config.journal is None:
        print(
            f"the journal is SQLite in {config.state_dir}: nothing to migrate (the daemon "
            "makes its tables at start); migrate is for a shared journal (journal.url)"
        )
        return EXIT_OK
    return asyncio.run(migrate(config))


async def migrate(config: Config) -> int:
    from daemon.journal import migrations  # imports psycopg
    from daemon.journal.pgconnect import Unavailable, connect

    assert config.journal is not None
    where = config.journal.location
    try:
        async with await connect(config.journal, role="symbl-inbox migrate") as connection:
            applied = await migrations.migrate(connection, config.cluster.host_id)
            state = await migrations.schema_state(connection)
    except (Unavailable, migrations.SchemaTooNew) as exc:
        print(f"cannot migrate {where}: {masker.scrub(str(exc))}", file=sys.stderr)
        return EXIT_FAILURE
    if not applied:
        print(f"{where}: schema at version {state.version}, up to date; nothing to do")
        return EXIT_OK
    for migration in applied:
        print(f"{where}: applied {migration}")
    print(f"{where}: schema now at version {state.version}")
    return EXIT_OK
