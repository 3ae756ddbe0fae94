"""``passes list|get|create|update|revoke|qr`` and ``validate``: one pass at a time, or a page."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from scanner.budget import Bucket
from scanner.errors import NotFoundError, TransportError
from scanner.manage import output
from scanner.manage.session import (
    EXIT_DENIED,
    EXIT_FAILED,
    EXIT_OK,
    Session,
    UsageError,
    emit_json,
)
from scanner.models import Page, PassInfo
from scanner.remote import PAGE_LIMIT, as_code

T = TypeVar("T")


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


async def list_all(
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


def footer(s: Session, shown: int, total: int, page: int, limit: int, noun: str) -> None:
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
        items, total = await list_all(
            s, fetch, start=args.page, limit=args.limit or PAGE_LIMIT, label="Reading passes"
        )
    else:
        limit = args.limit or 20
        result = await s.remote.call(Bucket.READ, lambda: fetch(args.page, limit))
        items, total = list(result.items), result.total
        if not args.json:
            footer(s, len(items), total, args.page, result.limit or limit, "passes")
    if args.json:
        emit_json(s.out, [p.to_json() for p in items])
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
        emit_json(s.out, info.to_json())
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
    from scanner.manage.guestlist import email_value, name_value, parse_expiry

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
    from scanner.manage.guestlist import email_value, name_value

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

        passes, _ = await list_all(s, fetch, start=1, limit=PAGE_LIMIT, label="Reading passes")
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
        emit_json(s.out, written)
    else:
        s.out.say("".join(f"{w['file']}\n" for w in written))
    return status


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
        emit_json(s.out, output.validation_json(result))
    else:
        s.out.say(output.validation_text(result))
    return EXIT_OK if result.admitted else EXIT_DENIED
