"""What every manage command shares: its exit statuses, its session (config, client,
budget, output), and the guard that turns every failure into one line."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from scanner import exitcodes
from scanner.api import PassQRClient
from scanner.api_protocol import PassQRApi
from scanner.budget import Budget
from scanner.config import Config, load_api_key, load_config
from scanner.errors import ConfigError, ScannerError
from scanner.explain import describe
from scanner.manage import output
from scanner.remote import Remote

EXIT_OK = exitcodes.OK
EXIT_FAILED = exitcodes.FAILED
EXIT_USAGE = exitcodes.USAGE
EXIT_DENIED = exitcodes.DENIED
EXIT_CONFIG = exitcodes.CONFIG
EXIT_INTERRUPTED = exitcodes.INTERRUPTED

STATUSES = ("active", "used", "expired", "revoked")
SETTABLE_STATUSES = ("active", "used", "revoked")


class UsageError(Exception):
    """A value on the command line is wrong (exit status 2)."""


@dataclass
class Session:
    """What one command works with."""

    config: Config
    client: PassQRApi
    budget: Budget
    remote: Remote
    out: output.Out


Command = Callable[[Session, argparse.Namespace], Awaitable[int]]


def guarded(command: Command) -> Callable[[argparse.Namespace], int]:
    """Load the config and the key, run ``command``, and turn every failure into one line."""

    def run(args: argparse.Namespace) -> int:
        out = output.Out()
        try:
            config = load_config(Path(args.config))
            api_key = load_api_key(config)
        except ScannerError as err:
            out.warn(err.message)
            return EXIT_CONFIG
        try:
            return asyncio.run(_session(config, api_key, command, args, out))
        except UsageError as err:
            out.warn(str(err))
            return EXIT_USAGE
        except ConfigError as err:
            out.warn(err.message)
            return EXIT_CONFIG
        except ScannerError as err:
            out.warn(describe(err, _what(args), fix=True))
            return EXIT_FAILED
        except KeyboardInterrupt:
            out.warn("interrupted")
            return EXIT_INTERRUPTED
        except BrokenPipeError:
            # `passes list | head`: the reader has gone; that is not an error.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK

    run.__name__ = command.__name__
    run.__doc__ = command.__doc__
    return run


def _what(args: argparse.Namespace) -> str:
    kind = getattr(args, "what", "")
    ref = getattr(args, "ref", None)
    return f"{kind} {ref}".strip() if ref else kind


async def _session(
    config: Config, api_key: str, command: Command, args: argparse.Namespace, out: output.Out
) -> int:
    # Bulk work: a longer deadline than a gate's, and --per-min may spend more writes.
    api = dataclasses.replace(
        config.api,
        timeout_s=max(config.api.timeout_s, 10.0),
        write_per_min=getattr(args, "per_min", None) or config.api.write_per_min,
    )
    budget = Budget.from_config(api)
    client = PassQRClient.from_config(api, api_key)
    async with client:
        remote = Remote(client, budget, transport_retries=1, on_wait=out.warn)
        return await command(Session(config, client, budget, remote, out), args)


def emit_json(out: output.Out, value: object) -> None:
    out.say(output.dumps(value))
