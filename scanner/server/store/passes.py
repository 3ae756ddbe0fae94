"""Passes: listing, creating (under a freshly drawn code), changing and revoking them.

Pass codes stay unique across businesses, so a code names at most one pass anywhere.
"""

from __future__ import annotations

import secrets
import sqlite3
import string
import uuid
from collections.abc import Mapping
from typing import Any

from scanner.server.errors import (
    ConflictError,
    NotFoundError,
    QuotaError,
    StoreError,
    UnknownTemplateError,
)
from scanner.server.fields import ABSENT
from scanner.server.store.connection import snapshot
from scanner.server.store.rows import PASS_COLUMNS, Json, pass_json, text
from scanner.server.store.templates import template_row
from scanner.server.validation import Page, now_timestamp

_CODE_ALPHABET = string.ascii_uppercase + string.digits

#: SQL for the `status` filter, in terms of the stored status and `expires_at` (`?` = now).
_STATUS_FILTERS: dict[str, tuple[str, int]] = {
    "active": ("p.status = 'active' AND (p.expires_at IS NULL OR p.expires_at > ?)", 1),
    "used": ("p.status = 'used' AND (p.expires_at IS NULL OR p.expires_at > ?)", 1),
    "expired": (
        "p.status != 'revoked' AND (p.status = 'expired'"
        " OR (p.expires_at IS NOT NULL AND p.expires_at <= ?))",
        1,
    ),
    "revoked": ("p.status = 'revoked'", 0),
}


def list_passes(
    conn: sqlite3.Connection,
    page: Page,
    business: str,
    *,
    template_id: str | None,
    status: str | None,
) -> Json:
    now = now_timestamp()
    clauses: list[str] = ["p.business = ?"]
    params: list[Any] = [business]
    if template_id is not None:
        clauses.append("p.template_id = ?")
        params.append(template_id)
    if status is not None:
        clause, uses_now = _STATUS_FILTERS[status]
        clauses.append(clause)
        params.extend([now] * uses_now)
    where = f" WHERE {' AND '.join(clauses)}"
    with snapshot(conn):
        total = conn.execute(f"SELECT COUNT(*) FROM passes p{where}", params).fetchone()[0]
        rows = conn.execute(
            f"SELECT {PASS_COLUMNS} FROM passes p{where} ORDER BY p.rowid DESC LIMIT ? OFFSET ?",
            (*params, page.limit, page.offset),
        ).fetchall()
    return {
        "data": [pass_json(row, now) for row in rows],
        "meta": {"page": page.page, "limit": page.limit, "total": total},
    }


def count_passes(conn: sqlite3.Connection, business: str) -> int:
    """Every pass the business has, revoked ones included (what a plan's quota counts)."""
    count: int = conn.execute(
        "SELECT COUNT(*) FROM passes WHERE business = ?", (business,)
    ).fetchone()[0]
    return count


def pass_row(conn: sqlite3.Connection, pass_id: str, business: str) -> tuple[Any, ...] | None:
    """The business's pass as a row of `PASS_COLUMNS`, or None."""
    row: tuple[Any, ...] | None = conn.execute(
        f"SELECT {PASS_COLUMNS} FROM passes p WHERE p.id = ? AND p.business = ?",
        (pass_id, business),
    ).fetchone()
    return row


def get_pass(conn: sqlite3.Connection, pass_id: str, business: str) -> Json:
    row = pass_row(conn, pass_id, business)
    if row is None:
        raise NotFoundError("Pass not found")
    return pass_json(row, now_timestamp())


def create_pass(
    conn: sqlite3.Connection,
    *,
    business: str,
    template_id: str,
    holder_name: str | None,
    holder_email: str | None,
    expires_at: str | None,
    data: Mapping[str, Any],
    max_uses: int | None = ABSENT,
    status: str = "active",
    uses_count: int = 0,
    quota: tuple[str, int] | None = None,
) -> Json:
    """Create a pass in one of the business's templates.

    `max_uses` left out (ABSENT) is the template's default; None is unlimited.
    `quota` is (plan, most passes the business may hold), counted in this
    transaction, so creates racing past it cannot both succeed.

    Raises:
        UnknownTemplateError: the business has no such template (checked first).
        QuotaError: the business already holds `quota` passes.
    """
    template = template_row(conn, template_id, business)
    if template is None:
        raise UnknownTemplateError(f"No template with id {template_id}")
    if quota is not None and count_passes(conn, business) >= quota[1]:
        raise QuotaError(
            f"The {quota[0]} plan allows {quota[1]} passes and this business has "
            "reached it; revoked passes count too"
        )
    if max_uses is ABSENT:
        max_uses = template[9]
    row = (template_id, holder_name, holder_email, text(data), status, uses_count, max_uses)
    return _insert_pass(conn, business, row, expires_at)


def _insert_pass(
    conn: sqlite3.Connection, business: str, row: tuple[Any, ...], expires_at: str | None
) -> Json:
    """Insert under a freshly drawn code; `row` is template_id .. max_uses."""
    now = now_timestamp()
    pass_id = str(uuid.uuid4())
    for _ in range(20):
        code = "PASS-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
        try:
            conn.execute(
                "INSERT INTO passes (id, code, template_id, holder_name, holder_email, data,"
                " status, uses_count, max_uses, expires_at, created_at, updated_at, business)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pass_id, code, *row, expires_at, now, now, business),
            )
        except sqlite3.IntegrityError:
            # A code collision (36^8 codes): draw again.
            continue
        return get_pass(conn, pass_id, business)
    raise StoreError("could not draw a unique pass code")


def update_pass(
    conn: sqlite3.Connection, pass_id: str, changes: Mapping[str, Any], business: str
) -> Json:
    row = pass_row(conn, pass_id, business)
    if row is None:
        raise NotFoundError("Pass not found")
    uses_count, max_uses = row[6], row[7]
    if changes.get("status") == "active" and max_uses is not None and uses_count >= max_uses:
        raise ConflictError(
            "Pass has no uses left (uses_count has reached max_uses); it cannot be active"
        )
    values = {name: text(value) if name == "data" else value for name, value in changes.items()}
    values["updated_at"] = now_timestamp()
    assignments = ", ".join(f"{name} = ?" for name in values)
    conn.execute(f"UPDATE passes SET {assignments} WHERE id = ?", (*values.values(), pass_id))
    return get_pass(conn, pass_id, business)


def revoke_pass(conn: sqlite3.Connection, pass_id: str, business: str) -> Json:
    row = pass_row(conn, pass_id, business)
    if row is None:
        raise NotFoundError("Pass not found")
    if row[5] == "revoked":
        return {"data": pass_json(row, now_timestamp()), "message": "Pass was already revoked"}
    conn.execute(
        "UPDATE passes SET status = 'revoked', updated_at = ? WHERE id = ?",
        (now_timestamp(), pass_id),
    )
    return {"data": get_pass(conn, pass_id, business), "message": "Pass revoked"}
