"""Stored rows as the API's JSON: the columns read, their JSON shapes, the wire form.

Timestamps are stored as canonical `YYYY-MM-DDTHH:MM:SSZ` text, so string
order is time order and the SQL can compare them. A pass's stored status is
`active`, `used`, `expired` (set by a PATCH) or `revoked`; `expired` is also
derived from `expires_at` on read (`display_status`).
"""

from __future__ import annotations

import json
from typing import Any

Json = dict[str, Any]

#: A pass row as `pass_json` reads it (`p` is the passes table).
PASS_COLUMNS = (
    "p.id, p.code, p.holder_name, p.holder_email, p.data, p.status, p.uses_count, p.max_uses,"
    " p.expires_at, p.created_at, p.updated_at, p.template_id"
)
#: A template row as `template_json` reads it.
TEMPLATE_COLUMNS = (
    "id, name, type, description, color, logo_url, fields, settings, created_at, max_uses"
)


def dumps(payload: Any) -> bytes:
    """The wire form of every JSON answer."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def text(value: Any) -> str:
    """A JSON column's stored text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def display_status(stored: str, expires_at: str | None, now: str) -> str:
    """Revoked wins, then expiry (stored or by `expires_at`), then the stored `active`/`used`."""
    if stored == "revoked":
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return stored


def pass_json(row: tuple[Any, ...], now: str) -> Json:
    """A row of `PASS_COLUMNS` (and anything after them) as the API's pass."""
    return {
        "id": row[0],
        "code": row[1],
        "holder_name": row[2],
        "holder_email": row[3],
        "data": json.loads(row[4]),
        "status": display_status(row[5], row[8], now),
        "uses_count": row[6],
        "max_uses": row[7],
        "expires_at": row[8],
        "created_at": row[9],
        "updated_at": row[10],
        "template_id": row[11],
    }


def template_json(row: tuple[Any, ...]) -> Json:
    """A row of `TEMPLATE_COLUMNS` as the API's template."""
    return {
        "id": row[0],
        "name": row[1],
        "type": row[2],
        "description": row[3],
        "color": row[4],
        "logo_url": row[5],
        "fields": json.loads(row[6]),
        "settings": json.loads(row[7]),
        "max_uses": row[9],
        "created_at": row[8],
    }
