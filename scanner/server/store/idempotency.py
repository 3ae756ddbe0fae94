"""Idempotency keys: a write's recorded answer, replayed to a repeat of the same request.

A record is kept per business and API key, with the request's fingerprint:
the same key for a different request is refused (`IdempotencyMismatchError`).
`Store.execute` runs the lookup, the write and the record in one transaction.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass

from scanner.server.auth import hashes_match
from scanner.server.errors import StoreError
from scanner.server.store.connection import immediate

logger = logging.getLogger(__name__)

#: How long an idempotency record is kept, in seconds.
IDEMPOTENCY_TTL = 24 * 3600.0
#: Seconds between purges of expired records (one runs when a database is opened, too).
PURGE_EVERY = 600.0


@dataclass(frozen=True, kw_only=True)
class IdempotencyScope:
    """An `Idempotency-Key` as the store keeps it: per business and API key, with a fingerprint."""

    business: str
    api_key_id: str
    key: str
    fingerprint: str


@dataclass(frozen=True, kw_only=True)
class Answer:
    """A serialised answer; `replayed` when it came from the idempotency table."""

    status: int
    body: bytes
    replayed: bool = False


class IdempotencyMismatchError(StoreError):
    """The idempotency key was used before for a different request."""


def replay(conn: sqlite3.Connection, scope: IdempotencyScope) -> Answer | None:
    """The recorded answer for this key, or None when there is none.

    Raises:
        IdempotencyMismatchError: the key was used for a different request.
    """
    row = conn.execute(
        "SELECT fingerprint, status, body FROM idempotency"
        " WHERE business = ? AND api_key_id = ? AND key = ?",
        (scope.business, scope.api_key_id, scope.key),
    ).fetchone()
    if row is None:
        return None
    if not hashes_match(row[0], scope.fingerprint):
        raise IdempotencyMismatchError(scope.key)
    return Answer(status=row[1], body=row[2].encode("utf-8"), replayed=True)


def record(conn: sqlite3.Connection, scope: IdempotencyScope, status: int, body: bytes) -> None:
    """Keep a successful answer for `IDEMPOTENCY_TTL` seconds."""
    conn.execute(
        "INSERT INTO idempotency (business, api_key_id, key, fingerprint, status,"
        " body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            scope.business,
            scope.api_key_id,
            scope.key,
            scope.fingerprint,
            status,
            body.decode("utf-8"),
            time.time(),
        ),
    )


def mismatch(conn: sqlite3.Connection, scope: IdempotencyScope) -> bool:
    """Whether the key is already recorded for a different request."""
    row = conn.execute(
        "SELECT fingerprint FROM idempotency WHERE business = ? AND api_key_id = ? AND key = ?",
        (scope.business, scope.api_key_id, scope.key),
    ).fetchone()
    return row is not None and not hashes_match(row[0], scope.fingerprint)


def purge(conn: sqlite3.Connection) -> None:
    """Delete the records older than `IDEMPOTENCY_TTL`, in a write transaction of its own."""
    with immediate(conn):
        deleted = conn.execute(
            "DELETE FROM idempotency WHERE created_at < ?", (time.time() - IDEMPOTENCY_TTL,)
        ).rowcount
    if deleted:
        logger.info("Purged %d expired idempotency records", deleted)
