"""``passqr-scanner doctor``: the checks in the order a person would fix things, and the command.

The exit status is 0 when nothing FAILed (the gate can decide scans), 1 otherwise,
so scripts and provisioning tools can use it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from scanner.doctor.api import check_api
from scanner.doctor.devices import CLICK_MS, check_inventory, check_relay, check_sources
from scanner.doctor.gpio import gpio_input_checks
from scanner.doctor.host import check_modemmanager, check_user
from scanner.doctor.report import Check, Status, format_json, format_text, ready
from scanner.doctor.settings import DEFAULT_CREDENTIAL_FILE, check_config, check_key
from scanner.doctor.storage import check_journal, check_logs

__all__ = ["DEFAULT_CONFIG", "add_doctor_parser", "cmd_doctor", "diagnose", "main"]

DEFAULT_CONFIG = Path("/etc/passqr-scanner/scanner.toml")


async def diagnose(
    config_path: Path,
    *,
    relay_click: bool = False,
    environ: Mapping[str, str] | None = None,
    credential_file: Path = DEFAULT_CREDENTIAL_FILE,
) -> list[Check]:
    """Run every check, in the order a person would fix things.

    Args:
        config_path: the kiosk's TOML file.
        relay_click: pulse the relay once (``CLICK_MS``), which may open the door.
        environ: where ``PASSQR_API_KEY`` and ``CREDENTIALS_DIRECTORY`` are read.
        credential_file: the key file the units load, tried when nothing else has a key.
    """
    env = os.environ if environ is None else environ
    config_check, config = check_config(config_path)
    checks = [config_check, *check_inventory(config)]
    if config is None:
        return checks
    key_check, key = check_key(config, env, credential_file)
    checks.append(key_check)
    if key is None:
        checks.append(Check(name="api server", status=Status.SKIP, detail="no usable API key"))
    else:
        checks += await check_api(config, key)
    checks += await check_sources(config)
    checks += await gpio_input_checks(config)  # issue 16: /dev/gpiochip*, each [[inputs]]
    checks += await check_relay(config, click=relay_click)
    checks.append(await check_journal(config))
    checks.append(check_logs(config))
    checks.append(check_user(config))
    modem = check_modemmanager(config)
    if modem is not None:
        checks.append(modem)
    return checks


def cmd_doctor(args: argparse.Namespace) -> int:
    """``doctor``: 0 when the gate is ready (no FAIL), 1 otherwise."""
    config_path = Path(args.config)
    checks = asyncio.run(diagnose(config_path, relay_click=args.relay_click))
    if args.json:
        report = format_json(checks, config_path)
    else:
        width = min(shutil.get_terminal_size((100, 24)).columns, 120)
        report = format_text(checks, config_path, width=max(width, 60))
    sys.stdout.write(report)
    sys.stdout.flush()
    return 0 if ready(checks) else 1


def add_doctor_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``doctor [--config FILE] [--relay-click] [--json]`` with ``func=cmd_doctor``."""
    doctor = subparsers.add_parser(
        "doctor",
        help="check that this gate is ready: config, key, server, devices, journal",
        description="Check the gate and say how to fix what is wrong. "
        "Exit status 0 when nothing failed, 1 otherwise.",
    )
    doctor.add_argument(
        "--config",
        default=str(DEFAULT_CONFIG),
        metavar="FILE",
        help="the TOML config file (default %(default)s)",
    )
    doctor.add_argument(
        "--relay-click",
        action="store_true",
        help=f"pulse the relay once ({CLICK_MS} ms): the door may open",
    )
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.set_defaults(func=cmd_doctor)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m scanner.doctor``: the same command on its own."""
    parser = argparse.ArgumentParser(prog="passqr-scanner")
    add_doctor_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["doctor", *(sys.argv[1:] if argv is None else argv)])
    return int(args.func(args))
