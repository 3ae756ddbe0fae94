"""Validating a scanned code: the decision, the counted use, the scan log.

`validate` runs inside the write transaction of `Store.execute` (`BEGIN
IMMEDIATE`), so two servers sharing a database file (two processes, two
connections) still serialise their validations: the use-counting `UPDATE` is
guarded by its `WHERE` clause and its row count is checked, which is what
makes "exactly one `valid` for a `max_uses = 1` pass" hold whoever races.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from scanner.server.fields import RESULTS
from scanner.server.store.passes import pass_row
from scanner.server.store.rows import PASS_COLUMNS, Json, pass_json
from scanner.server.validation import now_timestamp

Row = tuple[Any, ...]

#: The pass of a code, and its template's summary after `PASS_COLUMNS` (row[12:16]).
_SCANNED = (
    f"SELECT {PASS_COLUMNS}, t.id, t.name, t.type, t.color"
    " FROM passes p LEFT JOIN templates t ON t.id = p.template_id"
    " WHERE p.code = ? AND p.business = ?"
)

#: Count one use, only while the pass is still usable; `?` = now, id, now.
_COUNT_USE = (
    "UPDATE passes SET uses_count = uses_count + 1,"
    " status = CASE WHEN max_uses IS NOT NULL AND uses_count + 1 >= max_uses"
    " THEN 'used' ELSE status END, updated_at = ?"
    " WHERE id = ? AND status = 'active'"
    " AND (max_uses IS NULL OR uses_count < max_uses)"
    " AND (expires_at IS NULL OR expires_at > ?)"
    " RETURNING uses_count, status, updated_at"
)


def validate(
    conn: sqlite3.Connection, code: str | None, given: str, api_key_id: str | None, business: str
) -> Json:
    """Decide on a scanned code and count a use when it is valid.

    Must run inside a write transaction (see `Store.execute`). `code` is the
    normalised code, or None when `given` cannot be a pass code. Another
    business's code is `not_found`, and nothing of its pass is read or counted.
    Checks run in the order not_found, revoked, expired, used, valid.
    """
    now = now_timestamp()
    row: Row | None = None
    if code is not None:
        row = conn.execute(_SCANNED, (code, business)).fetchone()
    if row is None:
        result = "not_found"
    else:
        row, result = _use(conn, row, now, business)
    conn.execute(
        "INSERT INTO scans (pass_id, code, result, at, api_key_id) VALUES (?, ?, ?, ?, ?)",
        (row[0] if row is not None else None, given, result, now, api_key_id),
    )
    return _answer(result, row, now)


def decide(row: Row, now: str) -> str:
    """revoked, expired, used or valid, in that order, from a row of `PASS_COLUMNS`."""
    status, uses_count, max_uses, expires_at = row[5], row[6], row[7], row[8]
    if status == "revoked":
        return "revoked"
    if status == "expired" or (expires_at is not None and expires_at <= now):
        return "expired"
    if status == "used" or (max_uses is not None and uses_count >= max_uses):
        return "used"
    return "valid"


def _use(conn: sqlite3.Connection, row: Row, now: str, business: str) -> tuple[Row, str]:
    """Decide on the scanned pass; count the use when valid. Returns (row as stored, result)."""
    result = decide(row, now)
    if result != "valid":
        return row, result
    updated = conn.execute(_COUNT_USE, (now, row[0], now)).fetchall()
    if len(updated) == 1:
        uses_count, status, updated_at = updated[0]
        return (*row[:5], status, uses_count, *row[7:10], updated_at, *row[11:]), result
    # Unreachable under BEGIN IMMEDIATE; decide again from the stored state.
    fresh = pass_row(conn, row[0], business)
    row = (*fresh, *row[12:]) if fresh is not None else row
    result = decide(row, now)
    return row, "used" if result == "valid" else result


def _answer(result: str, row: Row | None, now: str) -> Json:
    """The `/validate` answer: the result, its message, the pass and its template's summary."""
    if row is None:
        return {
            "data": {
                "result": result,
                "message": RESULTS[result],
                "pass": None,
                "template": None,
            }
        }
    template = (
        None
        if row[12] is None
        else {"id": row[12], "name": row[13], "type": row[14], "color": row[15]}
    )
    return {
        "data": {
            "result": result,
            "message": RESULTS[result],
            "pass": pass_json(row, now),
            "template": template,
        }
    }


def count_scans(conn: sqlite3.Connection) -> int:
    count: int = conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0]
    return count
