"""``symbl-inbox emulator``: serve the Symbl Async Audio API emulator in the foreground."""

from __future__ import annotations

import argparse
import os
import sys

from daemon.emulator.server import LOOPBACK, serve_forever
from daemon.emulator.settings import EmulatorSettings

EXIT_OK, EXIT_USAGE = 0, 2
SECRET_ENV = "SYMBL_EMULATOR_APP_SECRET"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = EmulatorSettings()
    parser.add_argument(
        "--host", default=LOOPBACK, help="address to listen on (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=8080, help="port (default: %(default)s)")
    parser.add_argument(
        "--job-seconds",
        type=float,
        default=defaults.job_seconds,
        metavar="S",
        help="job time once it may start: scheduled, then in_progress (default: %(default)s)",
    )
    parser.add_argument(
        "--job-seconds-per-audio-second",
        type=float,
        default=defaults.job_seconds_per_audio_second,
        metavar="R",
        help="job time added per second of audio (default: %(default)s)",
    )
    parser.add_argument(
        "--job-seconds-spread",
        type=float,
        default=defaults.job_seconds_spread,
        metavar="F",
        help="each job's time varies by up to this share either way, seeded by --seed "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--max-jobs",
        type=int,
        default=defaults.max_jobs,
        metavar="N",
        help="unfinished jobs at which submissions get 429 (default: %(default)s)",
    )
    parser.add_argument(
        "--token-ttl",
        type=float,
        default=defaults.token_ttl,
        metavar="S",
        help="lifetime of an access token in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=defaults.fault_rate,
        metavar="P",
        help="share of API requests answered 500/502/503 or dropped (default: %(default)s)",
    )
    parser.add_argument(
        "--lost-response-rate",
        type=float,
        default=defaults.lost_response_rate,
        metavar="P",
        help="share of submissions whose job is created but whose answer is lost",
    )
    parser.add_argument(
        "--job-failure-rate",
        type=float,
        default=defaults.job_failure_rate,
        metavar="P",
        help="share of jobs that end 'failed' (default: %(default)s)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=defaults.latency_seconds,
        metavar="S",
        help="seconds added to every API response (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="make fault choices and job times repeatable"
    )
    parser.add_argument("--app-id", metavar="ID", help="the only appId that gets a token")
    parser.add_argument(
        "--app-secret",
        metavar="SECRET",
        help=f"its appSecret (or set ${SECRET_ENV}, which stays out of the process list)",
    )


def settings_from(args: argparse.Namespace) -> EmulatorSettings:
    """The settings the arguments ask for; ``ValueError`` names every bad value."""
    secret = args.app_secret or os.environ.get(SECRET_ENV) or None
    return EmulatorSettings(
        job_seconds=args.job_seconds,
        job_seconds_per_audio_second=args.job_seconds_per_audio_second,
        job_seconds_spread=args.job_seconds_spread,
        max_jobs=args.max_jobs,
        token_ttl=args.token_ttl,
        fault_rate=args.fault_rate,
        lost_response_rate=args.lost_response_rate,
        latency_seconds=args.latency,
        job_failure_rate=args.job_failure_rate,
        app_id=args.app_id,
        app_secret=secret if args.app_id else None,
        seed=args.seed,
    )


def main(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValueError as exc:
        print(f"symbl-inbox emulator: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not 0 < args.port < 65536:
        print("symbl-inbox emulator: --port must be between 1 and 65535", file=sys.stderr)
        return EXIT_USAGE
    print(f"Symbl emulator on http://{args.host}:{args.port}", file=sys.stderr, flush=True)
    serve_forever(settings, args.host, args.port)
    return EXIT_OK
