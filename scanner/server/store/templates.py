"""Templates: a business's kinds of pass, each with its fields and default `max_uses`."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Mapping
from typing import Any

from scanner.server.errors import ConflictError, NotFoundError
from scanner.server.store.connection import snapshot
from scanner.server.store.rows import TEMPLATE_COLUMNS, Json, template_json, text
from scanner.server.validation import Page, now_timestamp


def list_templates(conn: sqlite3.Connection, page: Page, business: str) -> Json:
    with snapshot(conn):
        total = conn.execute(
            "SELECT COUNT(*) FROM templates WHERE business = ?", (business,)
        ).fetchone()[0]
        rows = conn.execute(
            f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE business = ?"
            " ORDER BY rowid DESC LIMIT ? OFFSET ?",
            (business, page.limit, page.offset),
        ).fetchall()
    return {
        "data": [template_json(row) for row in rows],
        "meta": {"page": page.page, "limit": page.limit, "total": total},
    }


def template_row(
    conn: sqlite3.Connection, template_id: str, business: str
) -> tuple[Any, ...] | None:
    """The business's template as a row of `TEMPLATE_COLUMNS`, or None."""
    row: tuple[Any, ...] | None = conn.execute(
        f"SELECT {TEMPLATE_COLUMNS} FROM templates WHERE id = ? AND business = ?",
        (template_id, business),
    ).fetchone()
    return row


def get_template(conn: sqlite3.Connection, template_id: str, business: str) -> Json:
    row = template_row(conn, template_id, business)
    if row is None:
        raise NotFoundError("Template not found")
    return template_json(row)


def create_template(conn: sqlite3.Connection, fields: Mapping[str, Any], business: str) -> Json:
    template_id = str(uuid.uuid4())
    conn.execute(
        f"INSERT INTO templates ({TEMPLATE_COLUMNS}, business)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            template_id,
            fields["name"],
            fields["type"],
            fields["description"],
            fields["color"],
            fields["logo_url"],
            text(fields["fields"]),
            text(fields["settings"]),
            now_timestamp(),
            fields.get("max_uses"),
            business,
        ),
    )
    return get_template(conn, template_id, business)


def update_template(
    conn: sqlite3.Connection, template_id: str, changes: Mapping[str, Any], business: str
) -> Json:
    if template_row(conn, template_id, business) is None:
        raise NotFoundError("Template not found")
    if changes:
        values = {
            name: text(value) if name in ("fields", "settings") else value
            for name, value in changes.items()
        }
        assignments = ", ".join(f"{name} = ?" for name in values)
        conn.execute(
            f"UPDATE templates SET {assignments} WHERE id = ? AND business = ?",
            (*values.values(), template_id, business),
        )
    return get_template(conn, template_id, business)


def delete_template(conn: sqlite3.Connection, template_id: str, business: str) -> Json:
    """Delete a template that no pass uses; one in use is a conflict, never a cascade."""
    template = get_template(conn, template_id, business)
    in_use = conn.execute(
        "SELECT COUNT(*) FROM passes WHERE template_id = ?", (template_id,)
    ).fetchone()[0]
    if in_use:
        raise ConflictError(
            f"Template is used by {in_use} pass(es); revoke them or keep the template"
        )
    conn.execute("DELETE FROM templates WHERE id = ?", (template_id,))
    return template
