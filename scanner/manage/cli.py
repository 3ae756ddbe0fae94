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
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from scanner import exitcodes
from scanner.api import PassQRClient
from scanner.api_protocol import PassQRApi
from scanner.budget import Bucket, Budget
from scanner.config import Config, load_api_key, load_config
from scanner.errors import ConfigError, NotFoundError, ScannerError, TransportError
from scanner.manage import output
from scanner.manage.remote import PAGE_LIMIT, Remote, as_code, describe
from scanner.models import Page, PassInfo, TemplateInfo

PROG = "passqr-scanner"

T = TypeVar("T")

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


# -- running a command ---------------------------------------------------------------------


def _guarded(command: Command) -> Callable[[argparse.Namespace], int]:
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
            out.warn(describe(err, _what(args)))
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


def _emit_json(out: output.Out, value: object) -> None:
    out.say(output.dumps(value))


# -- passes ---------------------------------------------------------------------------------


async def _resolve_pass(s: Session, ref: str) -> PassInfo:
    """A pass by its id, or by its code (found by paging the list: there is no GET by code).

    Raises:
        NotFoundError: no such pass.
    """
    code = as_code(ref)
    if code is None:
        client = s.client
        return await s.remote.call(Bucket.READ, lambda: client.get_pass(ref))
    with s.out.progress(f"Looking for {code}", None) as bar:
        found = await s.remote.find_codes([code], on_page=lambda n, t: bar.update(n, total=t))
    if code not in found:
        raise NotFoundError(f"no pass has the code {code}")
    return found[code]


async def _list_all(
    s: Session,
    fetch: Callable[[int, int], Awaitable[Page[Any]]],
    *,
    start: int,
    limit: int,
    label: str,
) -> tuple[list[Any], int]:
    """Every page from ``start``, de-duplicated by id (the list may shift while read)."""
    items: list[Any] = []
    seen: set[object] = set()
    total = 0
    bar: output.Progress | None = None
    with contextlib.ExitStack() as stack:
        async with contextlib.aclosing(s.remote.pages(fetch, start=start, limit=limit)) as pages:
            async for page in pages:
                total = page.total
                for item in page.items:
                    key = item.id or id(item)
                    if key not in seen:
                        seen.add(key)
                        items.append(item)
                if bar is None and page.page * max(page.limit, 1) < page.total:
                    # Only a listing of several pages gets a bar (on a terminal).
                    bar = stack.enter_context(s.out.progress(label, page.total))
                if bar is not None:
                    bar.update(len(items), total=page.total)
    return items, total


def _footer(s: Session, shown: int, total: int, page: int, limit: int, noun: str) -> None:
    if shown < total:
        pages = -(-total // limit)
        s.out.warn(f"{shown} of {total} {noun} (page {page} of {pages}); --all lists every one")


async def passes_list(s: Session, args: argparse.Namespace) -> int:
    """List passes: one page, or every page with --all."""
    client = s.client

    async def fetch(page: int, limit: int) -> Page[PassInfo]:
        return await client.list_passes(
            page=page, limit=limit, template_id=args.template, status=args.status
        )

    if args.all:
        items, total = await _list_all(
            s, fetch, start=args.page, limit=args.limit or PAGE_LIMIT, label="Reading passes"
        )
    else:
        limit = args.limit or 20
        result = await s.remote.call(Bucket.READ, lambda: fetch(args.page, limit))
        items, total = list(result.items), result.total
        if not args.json:
            _footer(s, len(items), total, args.page, result.limit or limit, "passes")
    if args.json:
        _emit_json(s.out, [p.to_json() for p in items])
    else:
        s.out.say(output.table(output.PASS_HEADERS, [output.pass_row(p) for p in items]))
    return EXIT_OK


async def passes_get(s: Session, args: argparse.Namespace) -> int:
    """Show one pass, by id or by code."""
    info = await _resolve_pass(s, args.ref)
    _show_pass(s, args, info)
    return EXIT_OK


def _show_pass(s: Session, args: argparse.Namespace, info: PassInfo) -> None:
    if args.json:
        _emit_json(s.out, info.to_json())
    else:
        s.out.say(output.key_values(output.pass_fields(info)))


def _checked(check: Callable[[str], T], text: str) -> T:
    """A command-line value checked as the importer checks a CSV cell."""
    try:
        return check(text)
    except ValueError as err:
        raise UsageError(str(err)) from None


async def passes_create(s: Session, args: argparse.Namespace) -> int:
    """Create one pass."""
    from scanner.manage.importer import email_value, name_value, parse_expiry

    values: dict[str, Any] = {
        "holder_name": _checked(name_value, args.name or ""),
        "holder_email": _checked(email_value, args.email or ""),
        "max_uses": args.max_uses,
        "expires_at": _checked(parse_expiry, args.expires) if args.expires else None,
    }
    data = dict(args.data or [])
    key = str(uuid.uuid4())  # the same on every try of this one create
    client = s.client
    info = await s.remote.call(
        Bucket.WRITE,
        lambda: client.create_pass(
            template_id=args.template, data=data or None, idempotency_key=key, **values
        ),
    )
    _show_pass(s, args, info)
    return EXIT_OK


async def passes_update(s: Session, args: argparse.Namespace) -> int:
    """Change a pass's holder, e-mail, data or status."""
    from scanner.manage.importer import email_value, name_value

    changes: dict[str, Any] = {}
    if args.name is not None:
        changes["holder_name"] = _checked(name_value, args.name)
    if args.email is not None:
        changes["holder_email"] = _checked(email_value, args.email)
    if args.status is not None:
        changes["status"] = args.status
    if not changes and args.data is None and not args.clear_data:
        raise UsageError(
            "nothing to change: give --name, --email, --status, --data or --clear-data"
        )
    info = await _resolve_pass(s, args.ref) if as_code(args.ref) or args.data else None
    pass_id = info.id if info is not None and info.id else args.ref
    if args.data is not None or args.clear_data:
        data = {} if args.clear_data or info is None else dict(info.data)
        data.update(dict(args.data or []))
        changes["data"] = data
    client = s.client
    updated = await s.remote.call(Bucket.WRITE, lambda: client.update_pass(pass_id, **changes))
    _show_pass(s, args, updated)
    return EXIT_OK


async def passes_revoke(s: Session, args: argparse.Namespace) -> int:
    """Revoke a pass: it stops validating (PassQR keeps it)."""
    info = await _resolve_pass(s, args.ref) if as_code(args.ref) else None
    pass_id = info.id if info is not None and info.id else args.ref
    client = s.client
    revoked = await s.remote.call(Bucket.WRITE, lambda: client.revoke_pass(pass_id))
    _show_pass(s, args, revoked)
    return EXIT_OK


async def passes_import(s: Session, args: argparse.Namespace) -> int:
    """Create passes from a CSV guest list, within the write budget; resumable."""
    from scanner.manage import importer

    source = Path(args.file)
    results_path = Path(args.results) if args.results else importer.default_results_path(source)
    try:
        content, recorded = await asyncio.to_thread(_read_import, source, results_path)
    except importer.CsvFileError as err:
        s.out.warn(str(err))
        return EXIT_FAILED
    for warning in content.warnings:
        s.out.warn(f"{source.name}: {warning}")
    for error in content.errors:
        s.out.warn(f"{source.name}: {error}")
    results = importer.ResultsFile(results_path)
    report = importer.ImportReport()
    if args.dry_run:
        done = sum(1 for row in content.rows if row.line in recorded)
        s.out.warn(
            f"{len(content.rows)} good rows ({done} already created, "
            f"{len(content.rows) - done} to create), {len(content.errors)} bad; nothing sent"
        )
        if args.json:
            report.rows, report.skipped = len(content.rows), done
            _emit_json(s.out, report.to_json(results_path, content.errors))
        return EXIT_FAILED if content.errors else EXIT_OK

    client = s.client
    template_id = args.template
    try:
        await s.remote.call(Bucket.READ, lambda: client.get_template(template_id))
    except NotFoundError:
        s.out.warn(f"template {template_id} not found: nothing imported")
        return EXIT_FAILED
    try:
        results.open()
    except OSError as err:
        s.out.warn(f"{results_path}: cannot write the results file ({err.strerror or err})")
        return EXIT_FAILED
    per_min = s.budget.limits.write_per_min

    bar = s.out.progress("Importing", None, plain_every_s=30.0)

    def progress(report: importer.ImportReport, left: int) -> None:
        done = len(report.created) + len(report.failed)
        eta = importer.eta_s(left, sent_at=report.sent_at, now=time.monotonic(), per_min=per_min)
        failed = f"{len(report.failed)} failed" if report.failed else ""
        bar.update(done, total=done + left, note=failed, eta_s=eta)

    def row_failed(error: importer.RowError) -> None:
        s.out.warn(f"{source.name}: {error}")

    interrupted = False
    try:
        with bar:
            await importer.import_rows(
                s.remote,
                content.rows,
                template_id=template_id,
                source=source,
                results=results,
                recorded=recorded,
                report=report,
                on_progress=progress,
                on_error=row_failed,
                stop_after=args.max,
            )
    except asyncio.CancelledError:
        interrupted = True
        raise
    finally:
        results.close()
        _import_summary(s, args, report, content.errors, results_path, interrupted=interrupted)
    if report.stopped:
        s.out.warn(f"stopped at {report.stopped}")
    failed = bool(content.errors or report.failed or report.stopped)
    return EXIT_FAILED if failed else EXIT_OK


def _read_import(source: Path, results_path: Path) -> tuple[Any, Any]:
    """The checked CSV and what earlier runs created (blocking file reads).

    Raises:
        UsageError: the results file would overwrite the input.
        CsvFileError: either file cannot be read.
    """
    from scanner.manage import importer

    if os.path.realpath(results_path) == os.path.realpath(source):
        raise UsageError("--results must not be the file being imported")
    return importer.read_csv(source), importer.ResultsFile(results_path).load()


def _import_summary(
    s: Session,
    args: argparse.Namespace,
    report: Any,
    bad_rows: Sequence[Any],
    results_path: Path,
    *,
    interrupted: bool,
) -> None:
    created = len(report.created)
    minutes = report.elapsed_s / 60
    rate = f", {created / minutes:.0f}/min" if created and minutes > 0 else ""
    parts = [f"created {created} passes in {output.duration_text(report.elapsed_s)}{rate}"]
    if report.skipped:
        parts.append(f"{report.skipped} created by an earlier run")
    failed = [*bad_rows, *report.failed]
    if failed:
        lines = ", ".join(str(e.line) for e in failed[:20]) + (", ..." if len(failed) > 20 else "")
        parts.append(f"{len(failed)} rows failed (lines {lines})")
    if report.held_back:
        parts.append(f"{report.held_back} left for the next run (--max)")
    s.out.warn("; ".join(parts) + f"; results in {results_path}")
    if interrupted or report.stopped or report.held_back:
        s.out.warn("run the same command again to continue: rows already created are skipped")
    if interrupted:
        return
    if args.json:
        _emit_json(s.out, report.to_json(results_path, bad_rows))
    elif report.created:
        s.out.say(
            output.table(
                ("LINE", "CODE", "HOLDER", "EMAIL", "ID"),
                [
                    [str(line), p.code or "", p.holder_name or "", p.holder_email or "", p.id or ""]
                    for line, p in report.created
                ],
            )
        )


async def passes_qr(s: Session, args: argparse.Namespace) -> int:
    """Write printable QR codes of passes, the holder's name under each."""
    from scanner.manage.qr import QrError, write_qr

    if not args.codes and not args.template:
        raise UsageError("name the passes: CODE... or --template ID for all of a template's")
    status = EXIT_OK
    wanted: list[str] = []
    for text in args.codes:
        code = as_code(text)
        if code is None:
            s.out.warn(f"{output.clean(text)}: not a pass code")
            status = EXIT_FAILED
        elif code not in wanted:
            wanted.append(code)
    client = s.client
    if wanted:
        with s.out.progress("Looking up passes", None) as bar:
            found = await s.remote.find_codes(
                wanted, template_id=args.template, on_page=lambda n, t: bar.update(n, total=t)
            )
        passes = []
        for code in wanted:
            if code in found:
                passes.append(found[code])
            else:
                s.out.warn(f"{code}: no such pass" + (" in that template" if args.template else ""))
                status = EXIT_FAILED
    elif args.codes:
        passes = []
    else:

        async def fetch(page: int, limit: int) -> Page[PassInfo]:
            return await client.list_passes(page=page, limit=limit, template_id=args.template)

        passes, _ = await _list_all(s, fetch, start=1, limit=PAGE_LIMIT, label="Reading passes")
    out_dir = Path(args.out)
    written: list[dict[str, Any]] = []
    for info in passes:
        try:
            path, warning = await asyncio.to_thread(
                write_qr, info, out_dir, args.format, scale=args.scale
            )
        except QrError as err:
            s.out.warn(str(err))
            status = EXIT_FAILED
            continue
        if warning:
            s.out.warn(f"{info.code}: {warning}")
        written.append({"code": info.code, "holder_name": info.holder_name, "file": str(path)})
    if args.json:
        _emit_json(s.out, written)
    else:
        s.out.say("".join(f"{w['file']}\n" for w in written))
    return status


# -- templates ------------------------------------------------------------------------------


def _show_template(s: Session, args: argparse.Namespace, info: TemplateInfo) -> None:
    if args.json:
        _emit_json(s.out, info.to_json())
    else:
        s.out.say(output.key_values(output.template_fields(info)))


async def templates_list(s: Session, args: argparse.Namespace) -> int:
    """List templates: one page, or every page with --all."""
    client = s.client

    async def fetch(page: int, limit: int) -> Page[TemplateInfo]:
        return await client.list_templates(page=page, limit=limit)

    if args.all:
        items, _ = await _list_all(
            s, fetch, start=args.page, limit=args.limit or PAGE_LIMIT, label="Reading templates"
        )
    else:
        limit = args.limit or 20
        result = await s.remote.call(Bucket.READ, lambda: fetch(args.page, limit))
        items = list(result.items)
        if not args.json:
            _footer(s, len(items), result.total, args.page, result.limit or limit, "templates")
    if args.json:
        _emit_json(s.out, [t.to_json() for t in items])
    else:
        s.out.say(output.table(output.TEMPLATE_HEADERS, [output.template_row(t) for t in items]))
    return EXIT_OK


async def templates_get(s: Session, args: argparse.Namespace) -> int:
    """Show one template."""
    client = s.client
    info = await s.remote.call(Bucket.READ, lambda: client.get_template(args.ref))
    _show_template(s, args, info)
    return EXIT_OK


def _template_fields(args: argparse.Namespace) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for option, key in (
        ("type", "type"),
        ("description", "description"),
        ("color", "color"),
        ("logo_url", "logo_url"),
        ("fields", "fields"),
        ("settings", "settings"),
    ):
        value = getattr(args, option)
        if value is not None:
            fields[key] = value
    return fields


async def templates_create(s: Session, args: argparse.Namespace) -> int:
    """Create a template."""
    fields = _template_fields(args)
    key = str(uuid.uuid4())
    client = s.client
    info = await s.remote.call(
        Bucket.WRITE,
        lambda: client.create_template(name=args.name, idempotency_key=key, **fields),
    )
    _show_template(s, args, info)
    return EXIT_OK


async def templates_update(s: Session, args: argparse.Namespace) -> int:
    """Change a template."""
    fields = _template_fields(args)
    if args.name is not None:
        fields["name"] = args.name
    if not fields:
        raise UsageError("nothing to change: give --name, --type, --description, --color, ...")
    client = s.client
    info = await s.remote.call(Bucket.WRITE, lambda: client.update_template(args.ref, **fields))
    _show_template(s, args, info)
    return EXIT_OK


async def templates_delete(s: Session, args: argparse.Namespace) -> int:
    """Delete a template no pass uses (PassQR refuses to delete one in use)."""
    client = s.client
    await s.remote.call(Bucket.WRITE, lambda: client.delete_template(args.ref))
    if args.json:
        _emit_json(s.out, {"id": args.ref, "deleted": True})
    else:
        s.out.say(f"deleted template {args.ref}\n")
    return EXIT_OK


# -- validate -------------------------------------------------------------------------------


async def validate(s: Session, args: argparse.Namespace) -> int:
    """Validate a code as a gate would: a valid pass is used (one use counted)."""
    code = as_code(args.code)
    if code is None:
        raise UsageError(
            f"{output.clean(args.code)!r} is not a pass code (PASS-XXXXXXXX or a PassQR URL)"
        )
    key = str(uuid.uuid4())
    client = s.client
    try:
        result = await s.remote.call(
            Bucket.VALIDATE, lambda: client.validate(code, idempotency_key=key), retries=0
        )
    except TransportError as err:
        if err.maybe_delivered:
            raise TransportError(
                f"{err.message}; the pass may have been used: check with `passes get {code}`"
            ) from err
        raise
    if args.json:
        _emit_json(s.out, output.validation_json(result))
    else:
        s.out.say(output.validation_text(result))
    return EXIT_OK if result.admitted else EXIT_DENIED


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

    p = psub.add_parser("list", help="list passes (a table, or --json)")
    _common(p, json_help="a JSON array of pass objects")
    _paging(p)
    p.add_argument("--template", metavar="ID", help="only this template's passes")
    p.add_argument("--status", choices=STATUSES, help="only passes in this state")
    p.set_defaults(func=_guarded(passes_list), what="passes")

    p = psub.add_parser("get", help="show one pass, by id or by code")
    _common(p)
    p.add_argument("ref", metavar="ID|CODE")
    p.set_defaults(func=_guarded(passes_get), what="pass")

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
    p.set_defaults(func=_guarded(passes_create), what="template")

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
    p.set_defaults(func=_guarded(passes_update), what="pass")

    p = psub.add_parser("revoke", help="revoke a pass (by id or code): it stops validating")
    _common(p)
    p.add_argument("ref", metavar="ID|CODE")
    p.set_defaults(func=_guarded(passes_revoke), what="pass")

    p = psub.add_parser(
        "import",
        help="create passes from a CSV guest list (resumable)",
        description=(
            "Columns: holder_name, holder_email, max_uses, expires_at; data.KEY columns "
            "and any other column go into the pass's data. Each created pass is recorded "
            "in the results file at once; running the same command again skips those rows."
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
    p.add_argument("--dry-run", action="store_true", help="check the file, send nothing")
    p.set_defaults(func=_guarded(passes_import), what="template")

    p = psub.add_parser("qr", help="write printable QR codes (PNG or SVG) of passes")
    _common(p, json_help="a JSON array of {code, holder_name, file}")
    p.add_argument("codes", nargs="*", metavar="CODE")
    p.add_argument("--out", required=True, metavar="DIR", help="where <CODE>.png|svg go")
    p.add_argument("--format", choices=("png", "svg"), default="png")
    p.add_argument("--template", metavar="ID", help="every pass of this template (or: only)")
    p.add_argument(
        "--scale", type=_positive, default=10, metavar="PX", help="pixels per module (10)"
    )
    p.set_defaults(func=_guarded(passes_qr), what="passes")

    templates = subparsers.add_parser("templates", help="list, show, create, change, delete")
    tsub = templates.add_subparsers(dest="templates_command", required=True, metavar="ACTION")

    t = tsub.add_parser("list", help="list templates")
    _common(t, json_help="a JSON array of template objects")
    _paging(t)
    t.set_defaults(func=_guarded(templates_list), what="templates")

    t = tsub.add_parser("get", help="show one template")
    _common(t)
    t.add_argument("ref", metavar="ID")
    t.set_defaults(func=_guarded(templates_get), what="template")

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
        t.set_defaults(func=_guarded(command), what="template")

    t = tsub.add_parser("delete", help="delete a template that no pass uses")
    _common(t)
    t.add_argument("ref", metavar="ID")
    t.set_defaults(func=_guarded(templates_delete), what="template")

    v = subparsers.add_parser(
        "validate", help="validate a code as a gate would (a valid pass is used)"
    )
    _common(v, json_help='{"result", "message", "pass", "template"}')
    v.add_argument("code", metavar="CODE", help="PASS-XXXXXXXX or a PassQR URL")
    v.set_defaults(func=_guarded(validate), what="pass")


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
