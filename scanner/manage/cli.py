"""``passqr-scanner passes ...``, ``templates ...`` and ``validate``: PassQR from the command line.

Every command takes ``--config FILE`` and finds the base URL and the API key exactly
as ``run`` does (``PASSQR_API_KEY``, ``api.key_file``, the systemd credential). Output
is a plain table for people, or ``--json`` for scripts with stable shapes: a list is
a JSON array of objects; ``get``, ``create``, ``update`` and ``revoke`` print one
object; ``validate`` prints ``{"result", "message", "pass", "template"}``.

Every failure is one line on standard error and a non-zero exit status, never a
traceback, never the API key:

====  =====================================================================
0     done (``validate``: the pass was valid and has been used)
1     PassQR refused or failed, a pass or template was not found, a CSV row failed
2     a bad command line or value
3     ``validate``: the pass was refused (used, expired, revoked, unknown)
78    the configuration or the API key cannot be used (as ``run``)
130   interrupted (Ctrl+C); an import resumes where it stopped
====  =====================================================================
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from scanner.manage.parsers import add_manage_parsers
from scanner.manage.session import EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m scanner.manage", description="Manage PassQR passes and templates."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_manage_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
