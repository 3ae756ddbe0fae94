"""SQLite storage for the local PassQR server: one module per concept.

| module | what it holds |
|---|---|
| `facade.py` | `Store`, the one object callers use; each method hands its connection on |
| `connection.py` | opening a file; the write (`BEGIN IMMEDIATE`) and read transactions |
| `schema.py` | the tables, the schema version and the migration of older databases |
| `rows.py` | the columns read, the JSON shapes of pass and template rows, `dumps` |
| `idempotency.py` | recorded answers of idempotent writes, their replay and purge |
| `keys.py` | API keys and business names |
| `templates.py`, `passes.py` | the resources |
| `scans.py` | `/validate`: the decision, the counted use, the scan log |
| `commands.py` | the CLI's helpers: `create_key`, `seed_demo`, `opened` |

One `Store` wraps one connection and is used from one thread at a time (one
of the server's two database threads, writer or read-only reader, or a CLI
command). Every write runs inside `BEGIN IMMEDIATE`, so two servers sharing a
database file (two processes, two connections) still serialise their writes:
the validation `UPDATE` is guarded by its `WHERE` clause and its row count is
checked, which is what makes "exactly one `valid` for a `max_uses = 1` pass"
hold whoever races.

Timestamps are stored as canonical `YYYY-MM-DDTHH:MM:SSZ` text, so string
order is time order and the SQL can compare them. A pass's stored status is
`active`, `used`, `expired` (set by a PATCH) or `revoked`; `expired` is also
derived from `expires_at` on read.

Every key, template, pass and idempotency record belongs to one business (a
name; `default` unless `create-key --business` says otherwise), and every
query of a request names the business of the request's key: another
business's rows are never read, counted or changed. Pass codes stay unique
across businesses, so a code names at most one pass anywhere.
"""

from __future__ import annotations

from scanner.server.store.commands import create_key, opened, seed_demo
from scanner.server.store.facade import Operation, Store
from scanner.server.store.idempotency import (
    IDEMPOTENCY_TTL,
    Answer,
    IdempotencyMismatchError,
    IdempotencyScope,
)
from scanner.server.store.keys import DEFAULT_BUSINESS, MAX_BUSINESS_LENGTH, check_business
from scanner.server.store.rows import Json, display_status, dumps
from scanner.server.store.schema import SCHEMA_VERSION

__all__ = [
    "DEFAULT_BUSINESS",
    "IDEMPOTENCY_TTL",
    "MAX_BUSINESS_LENGTH",
    "SCHEMA_VERSION",
    "Answer",
    "IdempotencyMismatchError",
    "IdempotencyScope",
    "Json",
    "Operation",
    "Store",
    "check_business",
    "create_key",
    "dumps",
    "display_status",
    "opened",
    "seed_demo",
]
