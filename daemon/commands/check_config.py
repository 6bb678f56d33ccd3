"""``symbl-inbox check-config``: validate the configuration and print it as the daemon sees it.

Exit 0 with the effective configuration (inheritance resolved, ``${VAR}`` expanded, secrets
shown as ``***``) on stdout and any warnings on stderr; exit 2 with one line per problem.
With ``journal.url`` it connects to the database and says on stderr whether the daemon can use
it (exit 1 if not: unreachable, refused, missing, or a schema newer than this code).
``--connect`` then asks the API for a token the way the daemon would (proxy, CA bundle) and
says on stderr how it went; exit 1 if it could not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from typing import Any

import yaml

from daemon.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from daemon.config.errors import ConfigError
from daemon.config.loader import load_config
from daemon.config.model import Config, Hook, Inbox, Profile
from daemon.logs import MASK, masker


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json", action="store_true", help="print the effective configuration as JSON"
    )
    parser.add_argument(
        "--connect",
        action="store_true",
        help="also get a token from the API, through the configured proxy and CA bundle",
    )


def main(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config_path)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(render(config, as_json=bool(getattr(args, "json", False))))
    code = EXIT_OK
    if config.journal is not None:
        code = asyncio.run(check_journal(config))
    if getattr(args, "connect", False):
        code = max(code, asyncio.run(connect(config)))
    return code


async def check_journal(config: Config) -> int:
    """Connect to the shared journal and say, on stderr, whether the daemon can use it."""
    from daemon.journal.pgcheck import check_journal as check  # imports psycopg

    assert config.journal is not None
    checked = await check(config.journal)
    print(f"journal: {masker.scrub(checked.message)}", file=sys.stderr)
    return EXIT_OK if checked.usable else EXIT_FAILURE


async def connect(config: Config) -> int:
    """Get a token as the daemon would; one line on stderr says the route and the outcome."""
    # Imported here: plain check-config needs no HTTP stack.
    from daemon.symbl.client import RetryPolicy, SymblClient, SymblError

    async with SymblClient(config.symbl, retry=RetryPolicy(attempts=1)) as client:
        where = f"{config.symbl.base_url} {client.route.describe()}"
        try:
            await client.authenticate()
        except SymblError as exc:
            problem = exc.message.removeprefix("POST /oauth2/token:generate: ")
        else:
            print(f"connect: got a token from {where}", file=sys.stderr)
            return EXIT_OK
    print(f"connect: cannot get a token from {where}: {masker.scrub(problem)}", file=sys.stderr)
    return EXIT_FAILURE


def render(config: Config, *, as_json: bool = False) -> str:
    """The effective configuration as YAML (or JSON) text, with every secret masked."""
    effective = effective_config(config)
    if as_json:
        text = json.dumps(effective, indent=2, ensure_ascii=False) + "\n"
    else:
        header = f"# effective configuration of {config.source} (secrets shown as {MASK})\n"
        text = header + yaml.safe_dump(effective, sort_keys=False, allow_unicode=True)
    # Belt and braces: a secret that also turns up inside another value is masked there too.
    masker.register(config.secrets())
    scrubbed: str = masker.scrub(text)
    return scrubbed


def effective_config(config: Config) -> dict[str, Any]:
    """Plain data for the whole configuration; secrets replaced by ``***``."""
    symbl = asdict(config.symbl) | {"app_secret": MASK}
    symbl["proxy_password"] = MASK if config.symbl.proxy_password else None
    symbl["ca_file"] = str(config.symbl.ca_file) if config.symbl.ca_file else None
    effective: dict[str, Any] = {
        "symbl": symbl,
        "state_dir": str(config.state_dir),
        "log_level": config.log_level,
        "shutdown_timeout_seconds": config.shutdown_timeout_seconds,
        "tracking": asdict(config.tracking),
    }
    if config.journal is not None:
        effective["journal"] = {
            "url": config.journal.url,
            "password": MASK if config.journal.password else None,
            "connect_timeout_seconds": config.journal.connect_timeout_seconds,
        }
    effective["cluster"] = asdict(config.cluster)
    if config.http is not None:
        http = asdict(config.http)
        http["webhook_secret"] = MASK if config.http.webhook_secret else None
        effective["http"] = http
    effective["profiles"] = {name: _profile(p) for name, p in config.profiles.items()}
    effective["inboxes"] = [_inbox(inbox) for inbox in config.inboxes]
    effective["hooks"] = [_hook(hook) for hook in config.hooks]
    return effective


def _hook(hook: Hook) -> dict[str, Any]:
    """A hook with its URLs cut to the scheme: they carry passwords and tokens."""
    shown: dict[str, Any] = {"where": hook.where}
    if hook.notify:
        shown |= {"on": list(hook.events), "notify": [_scheme_only(u) for u in hook.notify]}
        shown["group_seconds"] = hook.group_seconds
    elif hook.command:
        shown |= {"on": list(hook.events), "command": list(hook.command)}
        shown["timeout_seconds"] = hook.timeout_seconds
    elif hook.ping:
        shown |= {"ping": _scheme_only(hook.ping), "interval_seconds": hook.interval_seconds}
    shown["retries"] = hook.retries
    return shown


def _scheme_only(url: str) -> str:
    return url.split("://", 1)[0] + "://" + MASK


def _profile(profile: Profile) -> dict[str, Any]:
    pattern = profile.continuation_pattern
    return {
        "params": dict(profile.params),
        "continuation_pattern": pattern.pattern if pattern is not None else None,
        "continuation_wait_seconds": profile.continuation_wait_seconds,
        "export": list(profile.export),
        "hooks": [_hook(hook) for hook in profile.hooks],
        "stereo": profile.stereo,
        "convert": profile.convert,
        "transcript_options": dict(profile.transcript_options),
    }


def _inbox(inbox: Inbox) -> dict[str, Any]:
    return {
        "id": inbox.key,
        "path": str(inbox.path),
        "profile": inbox.profile,
        "done": str(inbox.done),
        "failed": str(inbox.failed),
        "watch": inbox.watch,
        "recursive": inbox.recursive,
        "settle_seconds": inbox.settle_seconds,
        "rescan_seconds": inbox.rescan_seconds,
        "poll_interval_seconds": inbox.poll_interval_seconds,
        "on_duplicate": inbox.on_duplicate,
        "exclude": list(inbox.exclude),
    }
