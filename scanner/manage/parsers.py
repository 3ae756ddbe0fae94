"""The manage commands' command line: argument types and the ``passes``, ``templates``
and ``validate`` parsers."""

from __future__ import annotations

import argparse
import json
from typing import Any

from scanner.manage.importing import passes_import
from scanner.manage.passes import (
    passes_create,
    passes_get,
    passes_list,
    passes_qr,
    passes_revoke,
    passes_update,
    validate,
)
from scanner.manage.session import SETTABLE_STATUSES, STATUSES, guarded
from scanner.manage.templates import (
    templates_create,
    templates_delete,
    templates_get,
    templates_list,
    templates_update,
)
from scanner.remote import PAGE_LIMIT

# -- argument types ------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _page_size(text: str) -> int:
    value = _positive(text)
    if value > PAGE_LIMIT:
        raise argparse.ArgumentTypeError(f"at most {PAGE_LIMIT} per page")
    return value


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object ({...})")
    return value


def _json_list(text: str) -> list[Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None
    if not isinstance(value, list):
        raise argparse.ArgumentTypeError("must be a JSON list ([...])")
    return value


# -- the parsers ---------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, *, json_help: str = "JSON for scripts") -> None:
    parser.add_argument(
        "--config", required=True, metavar="FILE", help="the TOML config (API URL and key)"
    )
    parser.add_argument("--json", action="store_true", help=json_help)


def _paging(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--all", action="store_true", help="every page, within the GET budget")
    parser.add_argument("--page", type=_positive, default=1, metavar="N", help="first page (1)")
    parser.add_argument(
        "--limit",
        type=_page_size,
        default=None,
        metavar="N",
        help=f"per page, at most {PAGE_LIMIT} (default 20; {PAGE_LIMIT} with --all)",
    )


def add_manage_parsers(subparsers: Any) -> None:
    """Register ``passes``, ``templates`` and ``validate`` on a subparsers object."""
    passes = subparsers.add_parser(
        "passes", help="list, show, create, change, revoke, import and print passes"
    )
    psub = passes.add_subparsers(dest="passes_command", required=True, metavar="ACTION")
    _add_pass_reads(psub)
    _add_pass_writes(psub)
    _add_pass_import(psub)
    _add_pass_qr(psub)
    _add_templates(subparsers)
    _add_validate(subparsers)


def _add_pass_reads(psub: Any) -> None:
    p = psub.add_parser("list", help="list passes (a table, or --json)")
    _common(p, json_help="a JSON array of pass objects")
    _paging(p)
    p.add_argument("--template", metavar="ID", help="only this template's passes")
    p.add_argument("--status", choices=STATUSES, help="only passes in this state")
    p.set_defaults(func=guarded(passes_list), what="passes")

    p = psub.add_parser("get", help="show one pass, by id or by code")
    _common(p)
    p.add_argument("ref", metavar="ID|CODE")
    p.set_defaults(func=guarded(passes_get), what="pass")


def _add_pass_writes(psub: Any) -> None:
    p = psub.add_parser("create", help="create one pass")
    _common(p)
    p.add_argument("--template", required=True, metavar="ID")
    p.add_argument("--name", metavar="TEXT", help="the holder's name")
    p.add_argument("--email", metavar="ADDRESS", help="the holder's e-mail")
    p.add_argument("--max-uses", type=_positive, metavar="N", help="default: unlimited")
    p.add_argument("--expires", metavar="ISO", help="2025-12-31 or 2025-12-31T23:00:00Z")
    p.add_argument(
        "--data", type=_key_value, action="append", metavar="KEY=VALUE", help="repeatable"
    )
    p.set_defaults(func=guarded(passes_create), what="template")

    p = psub.add_parser("update", help="change a pass (by id or code)")
    _common(p)
    p.add_argument("ref", metavar="ID|CODE")
    p.add_argument("--name", metavar="TEXT", help='the holder\'s name ("" clears it)')
    p.add_argument("--email", metavar="ADDRESS", help='the holder\'s e-mail ("" clears it)')
    p.add_argument("--status", choices=SETTABLE_STATUSES)
    p.add_argument(
        "--data",
        type=_key_value,
        action="append",
        metavar="KEY=VALUE",
        help="set one data field, keeping the others (repeatable)",
    )
    p.add_argument("--clear-data", action="store_true", help="drop the data fields not given")
    p.set_defaults(func=guarded(passes_update), what="pass")

    p = psub.add_parser("revoke", help="revoke a pass (by id or code): it stops validating")
    _common(p)
    p.add_argument("ref", metavar="ID|CODE")
    p.set_defaults(func=guarded(passes_revoke), what="pass")


def _add_pass_import(psub: Any) -> None:
    p = psub.add_parser(
        "import",
        help="create passes from a CSV guest list (resumable)",
        description=(
            "Columns: holder_name, holder_email, max_uses, expires_at; data.KEY columns "
            "and any other column go into the pass's data. Each created pass is recorded "
            "in the results file at once; running the same command again skips those "
            "guests, wherever they moved in the file (--key COLUMN: what tells them apart)."
        ),
    )
    _common(p, json_help="a JSON summary on stdout")
    p.add_argument("file", metavar="FILE.csv")
    p.add_argument("--template", required=True, metavar="ID")
    p.add_argument("--results", metavar="FILE", help="default: FILE.results.csv beside FILE")
    p.add_argument(
        "--per-min",
        type=_positive,
        metavar="N",
        help="creates per minute (default: api.write_per_min, PassQR's limit is 60)",
    )
    p.add_argument("--max", type=_positive, metavar="N", help="create at most N passes this run")
    p.add_argument(
        "--key",
        metavar="COLUMN",
        help="the column that tells guests apart (default: holder_email, else the whole row)",
    )
    p.add_argument(
        "--update",
        action="store_true",
        help="apply rows changed since their pass was made (name, e-mail, data)",
    )
    p.add_argument("--dry-run", action="store_true", help="check the file, send nothing")
    p.set_defaults(func=guarded(passes_import), what="template")


def _add_pass_qr(psub: Any) -> None:
    p = psub.add_parser("qr", help="write printable QR codes (PNG or SVG) of passes")
    _common(p, json_help="a JSON array of {code, holder_name, file}")
    p.add_argument("codes", nargs="*", metavar="CODE")
    p.add_argument("--out", required=True, metavar="DIR", help="where <CODE>.png|svg go")
    p.add_argument("--format", choices=("png", "svg"), default="png")
    p.add_argument("--template", metavar="ID", help="every pass of this template (or: only)")
    p.add_argument(
        "--scale", type=_positive, default=10, metavar="PX", help="pixels per module (10)"
    )
    p.set_defaults(func=guarded(passes_qr), what="passes")


def _add_templates(subparsers: Any) -> None:
    templates = subparsers.add_parser("templates", help="list, show, create, change, delete")
    tsub = templates.add_subparsers(dest="templates_command", required=True, metavar="ACTION")

    t = tsub.add_parser("list", help="list templates")
    _common(t, json_help="a JSON array of template objects")
    _paging(t)
    t.set_defaults(func=guarded(templates_list), what="templates")

    t = tsub.add_parser("get", help="show one template")
    _common(t)
    t.add_argument("ref", metavar="ID")
    t.set_defaults(func=guarded(templates_get), what="template")

    for action in ("create", "update"):
        t = tsub.add_parser(action, help=f"{action} a template")
        _common(t)
        if action == "update":
            t.add_argument("ref", metavar="ID")
        t.add_argument("--name", required=action == "create", metavar="TEXT")
        t.add_argument("--type", metavar="TEXT", help="event, membership... (generic)")
        t.add_argument("--description", metavar="TEXT")
        t.add_argument("--color", metavar="#RRGGBB")
        t.add_argument("--logo-url", metavar="URL")
        t.add_argument("--fields", type=_json_list, metavar="JSON", help='[{"key": ...}, ...]')
        t.add_argument("--settings", type=_json_object, metavar="JSON", help="{...}")
        command = templates_create if action == "create" else templates_update
        t.set_defaults(func=guarded(command), what="template")

    t = tsub.add_parser("delete", help="delete a template that no pass uses")
    _common(t)
    t.add_argument("ref", metavar="ID")
    t.set_defaults(func=guarded(templates_delete), what="template")


def _add_validate(subparsers: Any) -> None:
    v = subparsers.add_parser(
        "validate", help="validate a code as a gate would (a valid pass is used)"
    )
    _common(v, json_help='{"result", "message", "pass", "template"}')
    v.add_argument("code", metavar="CODE", help="PASS-XXXXXXXX or a PassQR URL")
    v.set_defaults(func=guarded(validate), what="pass")
