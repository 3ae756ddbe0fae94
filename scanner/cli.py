"""The ``passqr-scanner`` command.

Every failure a user can cause (a bad config, no API key, an unwritable
journal) ends with one clear line on standard error and a non-zero status,
never a traceback. The API key is never taken from the command line.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from scanner import __version__, exitcodes
from scanner.config import Config, load_api_key, load_config
from scanner.errors import ScannerError
from scanner.logs import setup_logging

_log = logging.getLogger(__name__)

EXIT_USAGE = exitcodes.USAGE
EXIT_CONFIG = exitcodes.CONFIG


def _fail(message: str, status: int = 1) -> int:
    print(f"passqr-scanner: {message}", file=sys.stderr)
    return status


def _log_file(config: Config) -> Path:
    return config.journal.path.parent / "passqr-scanner.log"


def _run_ui(config: Config, api_key: str, *, demo_codes: dict[str, str] | None = None) -> int:
    from scanner.runtime import Kiosk
    from scanner.ui.app import KioskApp

    kiosk = Kiosk(config, api_key=api_key)
    app = KioskApp(kiosk, demo_codes=demo_codes)
    app.run()
    return app.return_code or 0


def cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(Path(args.config))
        api_key = load_api_key(config)
    except ScannerError as err:
        return _fail(str(err), EXIT_CONFIG)
    if args.headless:
        from scanner.headless import run_headless

        setup_logging(level=args.log_level)
        try:
            return asyncio.run(run_headless(config, api_key=api_key))
        except ScannerError as err:
            return _fail(str(err), EXIT_CONFIG)
    setup_logging(level=args.log_level, file=_log_file(config), headless=False)
    try:
        return _run_ui(config, api_key)
    except ScannerError as err:
        return _fail(str(err), EXIT_CONFIG)


def cmd_demo(args: argparse.Namespace) -> int:
    from scanner.demo import demo_environment

    with demo_environment(
        interval_s=args.interval, loop=not args.headless, keyboard=not args.headless
    ) as env:
        if args.headless:
            from scanner.headless import run_headless

            setup_logging(level=args.log_level)
            return asyncio.run(run_headless(env.config, api_key=env.api_key))
        setup_logging(level=args.log_level, file=_log_file(env.config), headless=False)
        return _run_ui(env.config, env.api_key, demo_codes=env.codes)


def cmd_journal_export(args: argparse.Namespace) -> int:
    from scanner.journal import Journal

    try:
        config = load_config(Path(args.config))
    except ScannerError as err:
        return _fail(str(err), EXIT_CONFIG)
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            return _fail(f"--since {args.since!r} is not an ISO date or time", EXIT_USAGE)
        if since.tzinfo is None:
            since = since.astimezone()
    if not config.journal.path.exists():
        return _fail(f"journal.path {config.journal.path}: no journal there yet", 1)
    journal = Journal(config.journal.path)
    try:
        journal.open_sync()
    except ScannerError as err:
        journal.close_sync()
        return _fail(str(err), 1)
    try:
        for chunk in journal.export_sync(args.format, since=since):
            sys.stdout.write(chunk)
        sys.stdout.flush()
    except BrokenPipeError:
        return 0
    finally:
        journal.close_sync()
    return 0


def _relay_config(args: argparse.Namespace) -> Config | int:
    try:
        return load_config(Path(args.config))
    except ScannerError as err:
        return _fail(str(err), EXIT_CONFIG)


def cmd_relay_off(args: argparse.Namespace) -> int:
    from scanner.relay.check import relay_off

    config = _relay_config(args)
    if isinstance(config, int):
        return config
    setup_logging(level=args.log_level)
    try:
        return relay_off(config.relay, print)
    except ScannerError as err:  # relay.type = "gpio" without gpiozero
        return _fail(str(err), EXIT_CONFIG)


def cmd_relay_test(args: argparse.Namespace) -> int:
    from scanner.relay.check import relay_test

    config = _relay_config(args)
    if isinstance(config, int):
        return config
    setup_logging(level=args.log_level)

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        return asyncio.run(relay_test(config.relay, say, args.pulse_ms))
    except ScannerError as err:  # relay.type = "gpio" without gpiozero
        return _fail(str(err), EXIT_CONFIG)


def build_parser() -> argparse.ArgumentParser:
    from scanner.decode.cli import add_decode_parser
    from scanner.doctor import add_doctor_parser
    from scanner.hub.cli import add_hub_parser
    from scanner.manage.parsers import add_manage_parsers
    from scanner.server.cli import add_server_parser

    parser = argparse.ArgumentParser(
        prog="passqr-scanner",
        description="Scan PassQR passes at a door or gate, and run a local PassQR server.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=lambda s: logging.getLevelName(s.upper()),
        help="DEBUG, INFO, WARNING or ERROR (default INFO)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_kiosk_parsers(sub)
    _add_device_parsers(sub)
    add_server_parser(sub)
    add_hub_parser(sub)
    add_manage_parsers(sub)
    add_doctor_parser(sub)
    add_decode_parser(sub)
    return parser


def _add_kiosk_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``run``, ``demo`` and ``journal export``."""
    run = sub.add_parser("run", help="run the kiosk (full screen, or --headless)")
    run.add_argument("--config", required=True, metavar="FILE", help="the TOML config file")
    run.add_argument(
        "--headless",
        action="store_true",
        help="no UI: one JSON line per decision on stdout, logs on stderr",
    )
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser("demo", help="the kiosk against a local demo server; no hardware")
    demo.add_argument(
        "--headless",
        action="store_true",
        help="play the demo script once without a UI, as JSON lines",
    )
    demo.add_argument(
        "--interval",
        type=float,
        default=4.0,
        metavar="S",
        help="seconds between simulated scans (default 4)",
    )
    demo.set_defaults(func=cmd_demo)

    journal = sub.add_parser("journal", help="the local scan journal")
    jsub = journal.add_subparsers(dest="journal_command", required=True, metavar="ACTION")
    export = jsub.add_parser("export", help="print the journal as CSV or JSON lines")
    export.add_argument("--config", required=True, metavar="FILE")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--since", metavar="ISO", help="only scans from this moment on")
    export.set_defaults(func=cmd_journal_export)


def _add_device_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``relay off`` and ``relay test``."""
    relay = sub.add_parser("relay", help="drive the door relay on its own")
    rsub = relay.add_subparsers(dest="relay_command", required=True, metavar="ACTION")
    off = rsub.add_parser("off", help="switch the relay OFF now (for ExecStopPost=)")
    off.add_argument("--config", required=True, metavar="FILE")
    off.set_defaults(func=cmd_relay_off)
    test = rsub.add_parser("test", help="one pulse; says what was sent and what came back")
    test.add_argument("--config", required=True, metavar="FILE")
    test.add_argument(
        "--pulse-ms",
        type=int,
        default=None,
        metavar="MS",
        help="pulse length (default: relay.pulse_ms)",
    )
    test.set_defaults(func=cmd_relay_test)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except KeyboardInterrupt:
        return exitcodes.INTERRUPTED
    return int(status)


if __name__ == "__main__":
    raise SystemExit(main())
