"""The `hub` subcommand: `hub run` serves the venue hub, `hub gate-key` makes a key.

`gate-key` prints the key alone on stdout (scripts capture it), in PassQR's own key
format, so a kiosk takes it unchanged; it works before the first `hub run`, creating
the database. Failures print one line, never a traceback: exit 78 for a config or
key problem (systemd does not restart into it), 1 for anything else.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scanner import exitcodes
from scanner.errors import ConfigError
from scanner.hub.config import HubConfig, load_hub_config, load_upstream_key
from scanner.hub.tables import ROLES
from scanner.server.errors import ListenError, StoreOpenError

if TYPE_CHECKING:
    from scanner.hub.tls import TlsFiles

logger = logging.getLogger(__name__)
_NAME_MAX = 64


def _fail(message: str, status: int) -> int:
    print(f"passqr-scanner hub: {message}", file=sys.stderr)
    return status


def _guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except ConfigError as err:
            return _fail(str(err), exitcodes.CONFIG)
        except (StoreOpenError, ListenError, OSError) as err:
            return _fail(str(err), exitcodes.FAILED)
        except KeyboardInterrupt:
            return exitcodes.INTERRUPTED

    return run


def _gate_name(text: str) -> str:
    name = text.strip()
    if not name or len(name) > _NAME_MAX or not name.isprintable():
        raise argparse.ArgumentTypeError(
            f"a gate name is 1 to {_NAME_MAX} printable characters, e.g. north-1"
        )
    return name


def _gate_key(args: argparse.Namespace) -> int:
    """Print a new hub key (alone on stdout); only its hash is stored."""
    from scanner.hub.tables import create_hub_key

    config = load_hub_config(args.config)
    key = create_hub_key(config.hub.db, name=args.name, role=args.role)
    print(key)
    rights = "validates and reads" if args.role == "gate" else "validates, reads and writes"
    print(
        f"Created {args.role} key {args.name!r} in {config.hub.db} ({rights}); "
        "it is stored hashed and cannot be shown again.",
        file=sys.stderr,
    )
    return exitcodes.OK


def _keys(args: argparse.Namespace) -> int:
    """List the hub's keys (never the keys themselves: only their first characters)."""
    from scanner.hub.tables import hub_keys

    config = load_hub_config(args.config)
    for key in hub_keys(config.hub.db):
        print(f"{key['name']}\t{key['role']}\t{key['prefix']}...\t{key['created_at']}")
    return exitcodes.OK


def _revoke_key(args: argparse.Namespace) -> int:
    """Delete every key of a gate (a stolen or retired kiosk)."""
    from scanner.hub.tables import revoke_hub_keys

    config = load_hub_config(args.config)
    count = revoke_hub_keys(config.hub.db, args.name)
    if count == 0:
        return _fail(f"no key named {args.name!r} in {config.hub.db}", exitcodes.FAILED)
    print(
        f"Revoked {count} key(s) named {args.name!r}; a running hub refuses them within 5 s.",
        file=sys.stderr,
    )
    return exitcodes.OK


def _run(args: argparse.Namespace) -> int:
    """Serve the hub in the foreground until SIGINT/SIGTERM."""
    from scanner.logs import setup_logging

    config = load_hub_config(args.config)
    key = load_upstream_key(config)
    setup_logging(level=args.log_level)
    return serve(config, key)


def tls_files(config: HubConfig) -> TlsFiles | None:
    """The certificate and key the hub serves HTTPS with (made on first run), or None.

    Raises:
        ConfigError: the configured pair, or the hub's own, cannot be used or made.
    """
    from scanner.hub import tls

    if not config.uses_tls:
        return None
    hub = config.hub
    try:
        if hub.tls_cert is not None and hub.tls_key is not None:
            files = tls.TlsFiles(cert=hub.tls_cert, key=hub.tls_key)
            tls.check_files(files)
        else:
            names = [*tls.default_names(config.host), *hub.tls_names]
            files = tls.ensure_certificate(hub.db.parent, names)
        print_ = tls.fingerprint(files.cert)
    except tls.TlsError as err:
        raise ConfigError(f"hub TLS: {err}") from err
    logger.info(
        "HTTPS certificate %s (SHA-256 %s): kiosks trust it with [api] ca_file",
        files.cert,
        print_,
    )
    return files


def serve(config: HubConfig, key: str) -> int:
    from scanner.hub.app import create_hub_app
    from scanner.journal_files import lock_exclusively
    from scanner.server.runner import serve_forever
    from scanner.server.store import Store

    db = config.hub.db
    Store.open(db).close()  # its directory, made private, for the lock beside it
    try:
        lock = lock_exclusively(
            db, f"hub.db {db}: in use by another running hub (one hub per database)"
        )
    except ConfigError as err:
        return _fail(str(err), exitcodes.FAILED)
    files = tls_files(config)
    try:
        return serve_forever(
            config.hub.db,
            host=config.host,
            port=config.port,
            app=create_hub_app(config, key),
            ssl_certfile=files.cert if files else None,
            ssl_keyfile=files.key if files else None,
            name="PassQR venue hub",
        )
    finally:
        os.close(lock)


def add_hub_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    hub = subparsers.add_parser(
        "hub", help="the venue hub: many gates behind one IP and one PassQR budget"
    )
    commands = hub.add_subparsers(dest="hub_command", required=True, metavar="ACTION")

    def command(
        name: str, help_text: str, func: Callable[[argparse.Namespace], int]
    ) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("--config", required=True, type=Path, metavar="FILE", help="hub.toml")
        parser.set_defaults(func=_guarded(func))
        return parser

    command("run", "serve the hub in the foreground", _run)
    key = command("gate-key", "make a key for a gate (or staff) and print it", _gate_key)
    key.add_argument("--name", required=True, type=_gate_name, help="the gate's name")
    key.add_argument(
        "--role",
        choices=ROLES,
        default="gate",
        help="gate: validates and reads (default); staff or admin: may also write",
    )
    command("keys", "list the hub's keys: name, role, first characters", _keys)
    revoke = command("revoke-key", "delete every key of a gate", _revoke_key)
    revoke.add_argument("--name", required=True, type=_gate_name, help="the gate's name")
