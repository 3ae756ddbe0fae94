"""``templates list|get|create|update|delete``."""

from __future__ import annotations

import argparse
import uuid
from typing import Any

from scanner.budget import Bucket
from scanner.manage import output
from scanner.manage.passes import footer, list_all
from scanner.manage.session import EXIT_OK, Session, UsageError, emit_json
from scanner.models import Page, TemplateInfo
from scanner.remote import PAGE_LIMIT


def _show_template(s: Session, args: argparse.Namespace, info: TemplateInfo) -> None:
    if args.json:
        emit_json(s.out, info.to_json())
    else:
        s.out.say(output.key_values(output.template_fields(info)))


async def templates_list(s: Session, args: argparse.Namespace) -> int:
    """List templates: one page, or every page with --all."""
    client = s.client

    async def fetch(page: int, limit: int) -> Page[TemplateInfo]:
        return await client.list_templates(page=page, limit=limit)

    if args.all:
        items, _ = await list_all(
            s, fetch, start=args.page, limit=args.limit or PAGE_LIMIT, label="Reading templates"
        )
    else:
        limit = args.limit or 20
        result = await s.remote.call(Bucket.READ, lambda: fetch(args.page, limit))
        items = list(result.items)
        if not args.json:
            footer(s, len(items), result.total, args.page, result.limit or limit, "templates")
    if args.json:
        emit_json(s.out, [t.to_json() for t in items])
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
        emit_json(s.out, {"id": args.ref, "deleted": True})
    else:
        s.out.say(f"deleted template {args.ref}\n")
    return EXIT_OK
