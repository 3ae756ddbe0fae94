"""The `server` subcommand: run the local PassQR server, create keys, seed demo data.

`create-key` prints the key alone on stdout (scripts capture it); every
other message goes to stderr. Failures print one line, never a traceback,
and return a non-zero exit code.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from scanner.server.auth import DEFAULT_PASS_QUOTAS, PLANS
from scanner.server.errors import ListenError, StoreOpenError
from scanner.server.store import DEFAULT_BUSINESS, create_key, seed_demo

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8787


def _fail(message: str) -> int:
    print(f"passqr-scanner server: error: {message}", file=sys.stderr)
    return 1


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the expected failures into one line on stderr and exit code 1."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except (StoreOpenError, ListenError, ValueError) as err:
            return _fail(str(err))
        except KeyboardInterrupt:
            return 130

    run.__name__ = command.__name__
    run.__doc__ = command.__doc__
    return run


def _run(args: argparse.Namespace) -> int:
    """Serve the API in the foreground until SIGINT/SIGTERM."""
    from scanner.server.runner import serve_forever  # Starlette and uvicorn: only when serving

    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return serve_forever(
        args.db,
        host=args.host,
        port=args.port,
        rate_limit=not args.no_rate_limit,
        access_log=args.access_log,
        forwarded_allow_ips=args.forwarded_allow_ips,
        pass_quotas=dict(args.pass_quota or ()),
    )


def _create_key(args: argparse.Namespace) -> int:
    """Print a new API key (alone on stdout); only its hash is stored."""
    key = create_key(args.db, name=args.name, plan=args.plan, business=args.business)
    print(key)
    print(
        f"Created a {args.plan} key {args.name!r} for business {args.business!r}; "
        "it is stored hashed and cannot be shown again.",
        file=sys.stderr,
    )
    return 0


def _seed_demo(args: argparse.Namespace) -> int:
    """Create the demo template and passes; print `label code` lines."""
    for label, code in seed_demo(args.db, business=args.business).items():
        print(f"{label} {code}")
    return 0


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0 to 65535: {value}")
    return value


def _quota(text: str) -> tuple[str, int | None]:
    """`PLAN=N` or `PLAN=unlimited`, for `--pass-quota`."""
    plan, sep, value = text.partition("=")
    if not sep or plan not in PLANS:
        raise argparse.ArgumentTypeError(
            f"expected PLAN=N or PLAN=unlimited with PLAN one of {', '.join(PLANS)}: {text!r}"
        )
    if value == "unlimited":
        return plan, None
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"a quota is a whole number or 'unlimited': {text!r}")
    return plan, int(value)


def _defaults() -> str:
    return ", ".join(
        f"{plan}={'unlimited' if quota is None else quota}"
        for plan, quota in DEFAULT_PASS_QUOTAS.items()
    )


def add_server_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `server run | create-key | seed-demo`, each with `func=` set."""
    server = subparsers.add_parser(
        "server",
        help="the local PassQR-compatible server",
        description="Run a local, strict implementation of the PassQR API on SQLite.",
    )
    commands = server.add_subparsers(dest="server_command", metavar="COMMAND", required=True)

    def db_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--db", type=Path, required=True, metavar="PATH", help="SQLite database file"
        )

    run = commands.add_parser("run", help="serve the API in the foreground")
    db_option(run)
    run.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (%(default)s)")
    run.add_argument("--port", type=_port, default=DEFAULT_PORT, help="port (%(default)s)")
    run.add_argument("--no-rate-limit", action="store_true", help="turn the rate limits off")
    run.add_argument("--access-log", action="store_true", help="log every request")
    run.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        help="trust X-Forwarded-For from these proxy IPs (comma-separated), so rate limits "
        "count the real client",
    )
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    run.add_argument(
        "--pass-quota",
        type=_quota,
        action="append",
        metavar="PLAN=N",
        help="most passes a business on PLAN may hold (N or 'unlimited'; past it "
        f"POST /passes answers 402 plan_limit_reached); repeatable; defaults: {_defaults()}",
    )
    run.set_defaults(func=_guarded(_run))

    key = commands.add_parser("create-key", help="create an API key and print it")
    db_option(key)
    key.add_argument("--name", default="default", help="a label for the key (%(default)s)")
    key.add_argument("--plan", choices=PLANS, default="pro", help="the key's plan (%(default)s)")
    key.add_argument(
        "--business",
        default=DEFAULT_BUSINESS,
        metavar="NAME",
        help="the business whose templates and passes the key sees and changes (%(default)s)",
    )
    key.set_defaults(func=_guarded(_create_key))

    seed = commands.add_parser("seed-demo", help="create demo passes and print their codes")
    db_option(seed)
    seed.add_argument(
        "--business", default=DEFAULT_BUSINESS, metavar="NAME", help="seed it (%(default)s)"
    )
    seed.set_defaults(func=_guarded(_seed_demo))
