"""The hub's own tables, beside the server's in one SQLite file.

| table | what it holds |
|---|---|
| `hub_keys` | the role of each key in the server's `api_keys` (gate, staff, admin) |
| `hub_outbox` | every admission to forward upstream: queued, sent, or a conflict |
| `hub_budget` | when each upstream request was sent (the durable rate-limit window) |
| `hub_meta` | small named values: when the mirror was last synced |
| `hub_seen` | the passes a running full sync has seen (the rest are gone upstream) |

An admission's outbox row is written in the transaction that counts the use in the
mirror (`Store.execute`), so a decision the gate was told of is always queued, and
`kill -9` between the two cannot happen. The database runs `synchronous=FULL`: a
committed admission survives a power cut too.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scanner.server.store.connection import immediate
from scanner.server.validation import now_timestamp

ROLES = ("gate", "staff", "admin")
#: Roles that may write (passes, templates) through the hub; a gate only validates and reads.
WRITERS = frozenset({"staff", "admin"})

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS hub_keys (
        key_id TEXT PRIMARY KEY REFERENCES api_keys (id),
        role TEXT NOT NULL CHECK (role IN ('gate', 'staff', 'admin'))
    )""",
    """CREATE TABLE IF NOT EXISTS hub_outbox (
        id INTEGER PRIMARY KEY,
        idem_key TEXT NOT NULL UNIQUE,
        code TEXT NOT NULL,
        pass_id TEXT,
        gate TEXT NOT NULL,
        decided_at TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('queued', 'sent', 'conflict')),
        attempts INTEGER NOT NULL DEFAULT 0,
        done_at REAL,
        upstream_result TEXT,
        message TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS hub_outbox_state ON hub_outbox (state, id)",
    "CREATE INDEX IF NOT EXISTS hub_outbox_pass ON hub_outbox (pass_id, state)",
    """CREATE TABLE IF NOT EXISTS hub_budget (
        id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        at REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS hub_budget_at ON hub_budget (kind, at)",
    "CREATE TABLE IF NOT EXISTS hub_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS hub_seen (id TEXT PRIMARY KEY)",
    # The gates' figures count the server's scan log by time.
    "CREATE INDEX IF NOT EXISTS hub_scans_at ON scans (at)",
)


def create_tables(conn: sqlite3.Connection) -> None:
    """The hub's tables and the durability it needs (idempotent; outside a transaction)."""
    conn.execute("PRAGMA synchronous=FULL")
    with immediate(conn):
        for statement in _SCHEMA:
            conn.execute(statement)


@contextmanager
def _hub_database(db_path: Path) -> Iterator[sqlite3.Connection]:
    """The hub's database for a command (created if needed, with the hub's tables)."""
    from scanner.server.store import opened

    with opened(db_path) as store:
        create_tables(store.connection)
        yield store.connection


def create_hub_key(db_path: Path, *, name: str, role: str) -> str:
    """A new key of the hub (creating the database if needed); returns the plain key.

    Raises:
        StoreOpenError: the database cannot be opened or written.
        ValueError: not a role.
    """
    from scanner.server.auth import hash_key
    from scanner.server.store import Store

    if role not in ROLES:
        raise ValueError(f"a role is one of {', '.join(ROLES)}")
    with _hub_database(db_path) as conn:
        store = Store(conn)
        key = store.create_key(name=name, plan="pro")
        found = store.find_key(hash_key(key))
        assert found is not None
        with immediate(conn):
            set_role(conn, found.id, role)
    return key


def hub_keys(db_path: Path) -> list[dict[str, str]]:
    """Every key of the hub: name, role, the key's first characters, when it was made."""
    with _hub_database(db_path) as conn:
        rows = conn.execute(
            "SELECT k.name, h.role, k.prefix, k.created_at FROM api_keys k"
            " JOIN hub_keys h ON h.key_id = k.id ORDER BY k.name, k.created_at"
        ).fetchall()
    return [dict(zip(("name", "role", "prefix", "created_at"), row, strict=True)) for row in rows]


def revoke_hub_keys(db_path: Path, name: str) -> int:
    """Delete every key of the gate ``name``; returns how many. A running hub refuses them
    within its key cache's few seconds."""
    with _hub_database(db_path) as conn, immediate(conn):
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT k.id FROM api_keys k JOIN hub_keys h ON h.key_id = k.id WHERE k.name = ?",
                (name,),
            )
        ]
        for key_id in ids:
            conn.execute("DELETE FROM hub_keys WHERE key_id = ?", (key_id,))
            conn.execute("DELETE FROM api_keys WHERE id = ?", (key_id,))
    return len(ids)


def set_role(conn: sqlite3.Connection, key_id: str, role: str) -> None:
    conn.execute("INSERT OR REPLACE INTO hub_keys (key_id, role) VALUES (?, ?)", (key_id, role))


def role_of(conn: sqlite3.Connection, key_id: str) -> str | None:
    row = conn.execute("SELECT role FROM hub_keys WHERE key_id = ?", (key_id,)).fetchone()
    return None if row is None else str(row[0])


# -- the outbox ------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Admission:
    """A queued admission: what to send upstream, and under which key."""

    id: int
    idem_key: str
    code: str
    pass_id: str | None
    attempts: int


def key_taken(conn: sqlite3.Connection, idem_key: str) -> bool:
    return (
        conn.execute("SELECT 1 FROM hub_outbox WHERE idem_key = ?", (idem_key,)).fetchone()
        is not None
    )


def enqueue(
    conn: sqlite3.Connection,
    *,
    idem_key: str,
    code: str,
    pass_id: str | None,
    gate: str,
    decided_at: str,
    state: str = "queued",
    upstream_result: str | None = None,
) -> None:
    """Queue an admission (or record one the upstream already decided: ``state='sent'``)."""
    conn.execute(
        "INSERT INTO hub_outbox (idem_key, code, pass_id, gate, decided_at, state, done_at,"
        " upstream_result) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            idem_key,
            code,
            pass_id,
            gate,
            decided_at,
            state,
            None if state == "queued" else time.time(),
            upstream_result,
        ),
    )


def next_queued(conn: sqlite3.Connection) -> Admission | None:
    row = conn.execute(
        "SELECT id, idem_key, code, pass_id, attempts FROM hub_outbox"
        " WHERE state = 'queued' ORDER BY id LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return Admission(id=row[0], idem_key=row[1], code=row[2], pass_id=row[3], attempts=row[4])


def count_attempt(conn: sqlite3.Connection, admission_id: int) -> None:
    conn.execute("UPDATE hub_outbox SET attempts = attempts + 1 WHERE id = ?", (admission_id,))


def settle(
    conn: sqlite3.Connection,
    admission_id: int,
    *,
    state: str,
    upstream_result: str | None,
    message: str | None,
) -> None:
    """The upstream's answer to a queued admission: ``sent`` or a ``conflict``."""
    conn.execute(
        "UPDATE hub_outbox SET state = ?, upstream_result = ?, message = ?, done_at = ?"
        " WHERE id = ? AND state = 'queued'",
        (state, upstream_result, message, time.time(), admission_id),
    )


def pending_for(conn: sqlite3.Connection, pass_id: str, since: float) -> int:
    """Admissions of a pass the upstream may not have counted in a page read at ``since``."""
    count: int = conn.execute(
        "SELECT COUNT(*) FROM hub_outbox WHERE pass_id = ? AND (state = 'queued' OR done_at >= ?)",
        (pass_id, since),
    ).fetchone()[0]
    return count


def outbox_counts(conn: sqlite3.Connection) -> dict[str, int]:
    counts = dict.fromkeys(("queued", "sent", "conflict"), 0)
    for state, count in conn.execute("SELECT state, COUNT(*) FROM hub_outbox GROUP BY state"):
        counts[state] = count
    return counts


def conflicts(conn: sqlite3.Connection, limit: int = 50) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT id, code, pass_id, gate, decided_at, upstream_result, message FROM hub_outbox"
        " WHERE state = 'conflict' ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    names = ("id", "code", "pass_id", "gate", "decided_at", "upstream_result", "message")
    return [dict(zip(names, row, strict=True)) for row in rows]


# -- the budget ------------------------------------------------------------------------


def spent(conn: sqlite3.Connection, since: float) -> dict[str, list[float]]:
    """When each kind of upstream request was sent since ``since`` (oldest first)."""
    out: dict[str, list[float]] = {}
    for kind, at in conn.execute(
        "SELECT kind, at FROM hub_budget WHERE at >= ? ORDER BY at", (since,)
    ):
        out.setdefault(kind, []).append(at)
    return out


def spend(conn: sqlite3.Connection, kind: str, at: float, forget_before: float) -> None:
    """Record a request about to be sent (committed before it leaves) and forget old ones."""
    conn.execute("INSERT INTO hub_budget (kind, at) VALUES (?, ?)", (kind, at))
    conn.execute("DELETE FROM hub_budget WHERE at < ?", (forget_before,))


# -- small values ----------------------------------------------------------------------


def get_meta(conn: sqlite3.Connection, name: str) -> str | None:
    row = conn.execute("SELECT value FROM hub_meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def set_meta(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute("INSERT OR REPLACE INTO hub_meta (name, value) VALUES (?, ?)", (name, value))


def log_scan(
    conn: sqlite3.Connection, pass_id: str | None, given: str, result: str, api_key_id: str
) -> None:
    """A decision the upstream made, in the server's scan log like the mirror's own."""
    conn.execute(
        "INSERT INTO scans (pass_id, code, result, at, api_key_id) VALUES (?, ?, ?, ?, ?)",
        (pass_id, given, result, now_timestamp(), api_key_id),
    )
