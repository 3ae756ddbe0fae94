"""API keys, and the business each belongs to.

Every key, template, pass and idempotency record belongs to one business (a
name; `default` unless `create-key --business` says otherwise), and every
query of a request names the business of the request's key: another
business's rows are never read, counted or changed.
"""

from __future__ import annotations

import sqlite3
import uuid

from scanner.server.auth import (
    PLANS,
    STORED_PREFIX_LENGTH,
    ApiKey,
    generate_key,
    hash_key,
    hashes_match,
)
from scanner.server.store.connection import immediate
from scanner.server.validation import now_timestamp

#: The business of keys created without one, and of everything in a version 1 database.
DEFAULT_BUSINESS = "default"
#: Longest business name.
MAX_BUSINESS_LENGTH = 100


def check_business(business: str) -> None:
    """A business name is 1 to 100 printable characters, not only spaces.

    Raises:
        ValueError: it is not.
    """
    if not business.strip() or len(business) > MAX_BUSINESS_LENGTH or not business.isprintable():
        raise ValueError(
            f"business must be 1 to {MAX_BUSINESS_LENGTH} printable characters, not only spaces"
        )


def check_plan(plan: str) -> None:
    """A plan is free, starter or pro.

    Raises:
        ValueError: it is not.
    """
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}")


def create_key(
    conn: sqlite3.Connection, *, name: str, plan: str, business: str = DEFAULT_BUSINESS
) -> str:
    """Store a new key's hash, in a transaction of its own, and return the plain key (its
    only appearance).

    Raises:
        ValueError: `plan` is not a plan or `business` is not a name.
    """
    check_plan(plan)
    check_business(business)
    key = generate_key()
    with immediate(conn):
        conn.execute(
            "INSERT INTO api_keys (id, name, plan, prefix, key_hash, created_at, business)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                str(uuid.uuid4()),
                name,
                plan,
                key[:STORED_PREFIX_LENGTH],
                hash_key(key),
                now_timestamp(),
                business,
            ),
        )
    return key


def find_key(conn: sqlite3.Connection, key_hash: str) -> ApiKey | None:
    """Look a key up by its hash, then compare in constant time."""
    row = conn.execute(
        "SELECT id, name, plan, key_hash, business FROM api_keys WHERE key_hash = ?",
        (key_hash,),
    ).fetchone()
    if row is None or not hashes_match(row[3], key_hash):
        return None
    return ApiKey(id=row[0], name=row[1], plan=row[2], business=row[4])
