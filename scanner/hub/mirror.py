"""The hub's copy of the venue's passes and templates, kept from the upstream's answers.

The mirror lives in the server's own `passes` and `templates` tables (business
`default`), so the server's code decides and lists from it unchanged. The upstream
is trusted to be PassQR but not to be well-formed: a record of the wrong shape is a
:class:`MirrorError` (logged, skipped), never a crash or a half-written row.

Uses the upstream has not counted yet: the upstream's `uses_count` of a pass read
at time `t` lacks the hub's admissions still queued, and those sent after `t`. The
upstream's count plus those is never below the true count, so a sync never hands a
used-up pass a second admission; it may be above it (an admission in flight while the
page was read is counted in both). So a full sync's page and the fresh answer to a
forwarded admission (``recount``) set the count to that sum, which brings back down
what an earlier read counted twice; any other record keeps the larger of it and the
mirror's count.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from scanner.hub import tables
from scanner.server.errors import ApiError
from scanner.server.store import DEFAULT_BUSINESS
from scanner.server.validation import now_timestamp, parse_timestamp

logger = logging.getLogger(__name__)

BUSINESS = DEFAULT_BUSINESS
_STATUSES = frozenset({"active", "used", "expired", "revoked"})
_PLACEHOLDER_TYPE = "generic"
#: The name of a template known only by its id so far (its pass came first).
PLACEHOLDER_NAME = "(not synced yet)"


class MirrorError(ValueError):
    """An upstream record the mirror cannot hold; the message says which field."""


def _text(record: Mapping[str, Any], name: str, *, required: bool = True) -> str | None:
    value = record.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 10_000:
        raise MirrorError(f"upstream {name} is not a string: {str(value)[:40]!r}")
    return value


def _str(record: Mapping[str, Any], name: str) -> str:
    value = _text(record, name)
    assert value is not None  # required: _text raised otherwise
    return value


def _int(record: Mapping[str, Any], name: str, low: int, *, nullable: bool) -> int | None:
    value = record.get(name)
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise MirrorError(f"upstream {name} is not a whole number >= {low}: {value!r}")
    return value


def _time(record: Mapping[str, Any], name: str, *, nullable: bool) -> str | None:
    value = _text(record, name, required=not nullable)
    if value is None:
        return None
    try:
        return parse_timestamp(value, name)
    except ApiError as err:
        raise MirrorError(f"upstream {err.message}") from None


def _json_text(value: Any, name: str, kind: type) -> str:
    if not isinstance(value, kind):
        raise MirrorError(f"upstream {name} is not a JSON {kind.__name__}")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def upsert_template(conn: sqlite3.Connection, record: Mapping[str, Any]) -> str:
    """A template as the upstream lists it; returns its id."""
    template_id = _str(record, "id")
    values = (
        template_id,
        _text(record, "name"),
        _text(record, "type"),
        _text(record, "description", required=False),
        _text(record, "color", required=False),
        _text(record, "logo_url", required=False),
        _json_text(record.get("fields", []), "fields", list),
        _json_text(record.get("settings", {}), "settings", dict),
        _time(record, "created_at", nullable=True) or now_timestamp(),
        _int(record, "max_uses", 1, nullable=True),
        BUSINESS,
    )
    conn.execute(
        "INSERT INTO templates (id, name, type, description, color, logo_url, fields, settings,"
        " created_at, max_uses, business) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET name = excluded.name, type = excluded.type,"
        " description = excluded.description, color = excluded.color,"
        " logo_url = excluded.logo_url, fields = excluded.fields, settings = excluded.settings,"
        " max_uses = excluded.max_uses",
        values,
    )
    conn.execute("INSERT OR IGNORE INTO hub_seen (id) VALUES (?)", (template_id,))
    return template_id


def _ensure_template(
    conn: sqlite3.Connection, template_id: str, summary: Mapping[str, Any]
) -> None:
    """A template the mirror has not synced yet, from a validation's summary of it."""
    if conn.execute("SELECT 1 FROM templates WHERE id = ?", (template_id,)).fetchone():
        return
    name = summary.get("name") if isinstance(summary.get("name"), str) else None
    kind = summary.get("type") if isinstance(summary.get("type"), str) else None
    color = summary.get("color") if isinstance(summary.get("color"), str) else None
    conn.execute(
        "INSERT INTO templates (id, name, type, description, color, logo_url, fields, settings,"
        " created_at, max_uses, business) VALUES (?, ?, ?, NULL, ?, NULL, '[]', '{}', ?, NULL, ?)",
        (
            template_id,
            name or PLACEHOLDER_NAME,
            kind or _PLACEHOLDER_TYPE,
            color,
            now_timestamp(),
            BUSINESS,
        ),
    )


_UPSERT_PASS = (
    "INSERT INTO passes (id, code, template_id, holder_name, holder_email, data, status,"
    " uses_count, max_uses, expires_at, created_at, updated_at, business)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET code = excluded.code,"
    " template_id = excluded.template_id, holder_name = excluded.holder_name,"
    " holder_email = excluded.holder_email, data = excluded.data, status = excluded.status,"
    " uses_count = excluded.uses_count, max_uses = excluded.max_uses,"
    " expires_at = excluded.expires_at, created_at = excluded.created_at,"
    " updated_at = excluded.updated_at"
)


def _code_and_status(record: Mapping[str, Any]) -> tuple[str, str]:
    code = _str(record, "code")
    if not code.startswith("PASS-") or len(code) > 64:
        raise MirrorError(f"upstream code is not a pass code: {code[:40]!r}")
    status = _str(record, "status")
    if status not in _STATUSES:
        raise MirrorError(f"upstream status is not one of {sorted(_STATUSES)}: {status!r}")
    return code.upper(), status


def _template_of(
    conn: sqlite3.Connection,
    pass_id: str,
    record: Mapping[str, Any],
    template: Mapping[str, Any] | None,
) -> str:
    """The pass's template id (a validation's answer names it in ``template``), made
    present in the mirror."""
    template_id = record.get("template_id")
    if template_id is None and template is not None:
        template_id = template.get("id")
    if not isinstance(template_id, str) or not template_id:
        existing = conn.execute(
            "SELECT template_id FROM passes WHERE id = ?", (pass_id,)
        ).fetchone()
        if existing is None:
            raise MirrorError("upstream pass has no template_id")
        template_id = str(existing[0])
    _ensure_template(conn, template_id, template or {})
    return template_id


def upsert_pass(
    conn: sqlite3.Connection,
    record: Mapping[str, Any],
    *,
    read_at: float,
    template: Mapping[str, Any] | None = None,
    recount: bool = False,
) -> str:
    """A pass as the upstream answered it at ``read_at`` (wall clock); returns its id.

    A validation's answer holds only part of a pass (no template_id, data, dates):
    the template comes from ``template`` and the missing fields keep what the
    mirror has, or empty values until the next sync.

    Raises:
        MirrorError: the record is not a pass this mirror can hold.
    """
    pass_id = _str(record, "id")
    code, status = _code_and_status(record)
    uses = _int(record, "uses_count", 0, nullable=False) or 0
    max_uses = _int(record, "max_uses", 1, nullable=True)
    template_id = _template_of(conn, pass_id, record, template)
    current = conn.execute(
        "SELECT uses_count, data, created_at FROM passes WHERE id = ?", (pass_id,)
    ).fetchone()
    counted = uses + tables.pending_for(conn, pass_id, read_at)
    if not recount:
        counted = max(current[0] if current else 0, counted)
    if status == "active" and max_uses is not None and counted >= max_uses:
        status = "used"
    partial = "data" not in record
    data = current[1] if partial and current else _json_text(record.get("data", {}), "data", dict)
    now = now_timestamp()
    created = _time(record, "created_at", nullable=True) or (current[2] if current else now)
    values = (
        pass_id,
        code,
        template_id,
        _text(record, "holder_name", required=False),
        _text(record, "holder_email", required=False),
        data,
        status,
        counted,
        max_uses,
        _time(record, "expires_at", nullable=True),
        created,
        _time(record, "updated_at", nullable=True) or now,
        BUSINESS,
    )
    conn.execute("DELETE FROM passes WHERE code = ? AND id != ?", (code, pass_id))
    conn.execute(_UPSERT_PASS, values)
    conn.execute("INSERT OR IGNORE INTO hub_seen (id) VALUES (?)", (pass_id,))
    return pass_id


def knows_code(conn: sqlite3.Connection, code: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM passes WHERE code = ? AND business = ?", (code, BUSINESS)
    ).fetchone()
    return row is not None


def begin_sync(conn: sqlite3.Connection) -> None:
    conn.execute("DELETE FROM hub_seen")


def end_sync(conn: sqlite3.Connection, finished_at: str) -> int:
    """After a full sync: drop what the upstream no longer has; returns the passes mirrored.

    A pass with an admission still queued stays until the upstream has heard of it.
    """
    conn.execute(
        "DELETE FROM passes WHERE id NOT IN (SELECT id FROM hub_seen) AND id NOT IN"
        " (SELECT pass_id FROM hub_outbox WHERE state = 'queued' AND pass_id IS NOT NULL)"
    )
    conn.execute(
        "DELETE FROM templates WHERE id NOT IN (SELECT id FROM hub_seen)"
        " AND id NOT IN (SELECT template_id FROM passes)"
    )
    tables.set_meta(conn, "last_sync", finished_at)
    return passes_mirrored(conn)


def passes_mirrored(conn: sqlite3.Connection) -> int:
    count: int = conn.execute("SELECT COUNT(*) FROM passes").fetchone()[0]
    return count


def apply_pass(conn: sqlite3.Connection, payload: Any, read_at: float | None = None) -> None:
    """PassQR's answer holding one pass (``{"data": pass}``) into the mirror."""
    record = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(record, dict):
        upsert_pass(conn, record, read_at=time.time() if read_at is None else read_at)


def apply_passes(
    conn: sqlite3.Connection, payload: Any, read_at: float, *, recount: bool = False
) -> None:
    """A page of PassQR's passes (``{"data": [...]}``) into the mirror; a bad one skipped.

    ``recount``: a full sync's page (see `upsert_pass`)."""
    records = payload.get("data") if isinstance(payload, dict) else None
    for record in records if isinstance(records, list) else []:
        try:
            record = record if isinstance(record, dict) else {}
            upsert_pass(conn, record, read_at=read_at, recount=recount)
        except MirrorError as err:
            logger.warning("Pass skipped: %s", err)


def apply_template(conn: sqlite3.Connection, payload: Any) -> None:
    """PassQR's answer holding one template into the mirror."""
    record = payload.get("data") if isinstance(payload, dict) else None
    if isinstance(record, dict):
        upsert_template(conn, record)


def apply_templates(conn: sqlite3.Connection, payload: Any) -> None:
    """A page of PassQR's templates into the mirror; a bad one skipped."""
    records = payload.get("data") if isinstance(payload, dict) else None
    for record in records if isinstance(records, list) else []:
        try:
            upsert_template(conn, record if isinstance(record, dict) else {})
        except MirrorError as err:
            logger.warning("Template skipped: %s", err)


def drop_template(conn: sqlite3.Connection, template_id: str) -> None:
    """A template PassQR deleted, unless a mirrored pass still names it."""
    conn.execute(
        "DELETE FROM templates WHERE id = ? AND id NOT IN (SELECT template_id FROM passes)",
        (template_id,),
    )


def placeholder_templates(conn: sqlite3.Connection, limit: int = 5) -> list[str]:
    """Templates known only by id (their pass came first): to be fetched from PassQR."""
    rows = conn.execute(
        "SELECT id FROM templates WHERE name = ? LIMIT ?", (PLACEHOLDER_NAME, limit)
    ).fetchall()
    return [str(row[0]) for row in rows]


def apply_validation(
    conn: sqlite3.Connection, data: Mapping[str, Any], code: str, *, recount: bool = False
) -> None:
    """What PassQR's answer to a validation (its ``data``) says of the pass (revoked, used
    up...) into the mirror; the answer holds only part of a pass (see `upsert_pass`).

    ``recount``: a fresh answer to a forwarded admission, whose count is PassQR's now.
    """
    record, template = data.get("pass"), data.get("template")
    if not isinstance(record, dict):
        return
    try:
        upsert_pass(
            conn,
            record,
            read_at=math.inf,
            template=template if isinstance(template, dict) else None,
            recount=recount,
        )
    except MirrorError as err:
        logger.warning("PassQR's pass for %s not mirrored: %s", code, err)
