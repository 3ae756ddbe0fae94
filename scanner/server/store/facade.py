"""`Store`: the one object the server, the CLI and the tests do database work through.

One `Store` wraps one connection and is used from one thread at a time (one
of the server's two database threads, writer or read-only reader, or a CLI
command). Each method hands its connection to the module of its concept;
the store itself keeps only what lives as long as the connection: the busy
timeout and when the idempotency table was last purged.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from scanner.server.auth import ApiKey
from scanner.server.fields import ABSENT
from scanner.server.store import (
    connection,
    idempotency,
    keys,
    passes,
    scans,
    schema,
    templates,
)
from scanner.server.store.idempotency import PURGE_EVERY, Answer, IdempotencyScope
from scanner.server.store.keys import DEFAULT_BUSINESS
from scanner.server.store.rows import Json, dumps
from scanner.server.validation import Page

logger = logging.getLogger(__name__)

#: A write to run inside `Store.execute`: returns (HTTP status, JSON payload).
Operation = Callable[["Store"], tuple[int, Any]]


class Store:
    """All database work of the server; not thread-safe, one thread at a time."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._last_purge = 0.0
        self._busy_ms = 5000

    # -- lifecycle -----------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path) -> Store:
        """Open (creating file, parent directories and schema if needed) a database.

        Raises:
            StoreOpenError: the path cannot be created, opened or written; the
                message is a single line fit for a CLI.
        """
        connection.prepare_path(path)
        conn = connection.connect(path)
        with connection.setting_up(conn, path):
            connection.set_up_writer(conn, path)
            store = cls(conn)
            schema.create_schema(conn)
            store._purge_idempotency()
        return store

    @classmethod
    def open_reader(cls, path: Path) -> Store:
        """A read-only connection to a database that `open` has already set up.

        In WAL mode its reads never wait for a writer, in this process or another.

        Raises:
            StoreOpenError: the database cannot be opened.
        """
        conn = connection.connect(path)
        with connection.setting_up(conn, path):
            conn.execute("PRAGMA query_only=ON")
        return cls(conn)

    def wait_for_lock(self, seconds: float) -> None:
        """Wait up to `seconds` (rounded up to 0.25 s) for another connection's lock from now on.

        Rounded so that the short queueing of a busy server changes nothing:
        no PRAGMA on the hot path for every write.
        """
        ms = max(250, math.ceil(seconds * 4) * 250)
        if ms != self._busy_ms:
            self._conn.execute(f"PRAGMA busy_timeout = {ms}")
            self._busy_ms = ms

    def close(self) -> None:
        self._conn.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The connection, for code keeping its own tables in the same database (the hub):
        inside an `execute` operation its statements join the operation's transaction."""
        return self._conn

    # -- writes with idempotency -----------------------------------------------------------

    def execute(self, operation: Operation, scope: IdempotencyScope | None) -> Answer:
        """Run one write `operation` in a transaction, honouring an idempotency key.

        The lookup, the operation and the record of its answer share one
        `BEGIN IMMEDIATE` transaction, so two identical requests racing (on
        any connection) cannot both run the operation. Only successful
        (2xx) answers are recorded; an error changed nothing and may be retried.

        Raises:
            IdempotencyMismatchError: the key was used for a different request.
            StoreError: whatever `operation` raises; nothing is written then.
        """
        with connection.immediate(self._conn):
            if scope is not None:
                replayed = idempotency.replay(self._conn, scope)
                if replayed is not None:
                    return replayed
            status, payload = operation(self)
            body = dumps(payload)
            if scope is not None and status < 400:
                idempotency.record(self._conn, scope, status, body)
        if time.monotonic() - self._last_purge > PURGE_EVERY:
            try:
                self._purge_idempotency()
            except sqlite3.OperationalError as err:
                # The write above is committed: its answer stands; purge next time.
                logger.warning("Idempotency purge skipped: %s", err)
        return Answer(status=status, body=body)

    def idempotency_mismatch(self, scope: IdempotencyScope) -> bool:
        """Whether the key is already recorded for a different request."""
        return idempotency.mismatch(self._conn, scope)

    def _purge_idempotency(self) -> None:
        self._last_purge = time.monotonic()
        idempotency.purge(self._conn)

    # -- API keys ------------------------------------------------------------------------

    def create_key(self, *, name: str, plan: str, business: str = DEFAULT_BUSINESS) -> str:
        """Store a new key's hash and return the plain key (its only appearance)."""
        return keys.create_key(self._conn, name=name, plan=plan, business=business)

    def find_key(self, key_hash: str) -> ApiKey | None:
        """Look a key up by its hash, then compare in constant time."""
        return keys.find_key(self._conn, key_hash)

    # -- templates -----------------------------------------------------------------------

    def list_templates(self, page: Page, business: str) -> Json:
        return templates.list_templates(self._conn, page, business)

    def get_template(self, template_id: str, business: str) -> Json:
        return templates.get_template(self._conn, template_id, business)

    def create_template(self, fields: Mapping[str, Any], business: str) -> Json:
        return templates.create_template(self._conn, fields, business)

    def update_template(self, template_id: str, changes: Mapping[str, Any], business: str) -> Json:
        return templates.update_template(self._conn, template_id, changes, business)

    def delete_template(self, template_id: str, business: str) -> Json:
        """Delete a template that no pass uses; one in use is a conflict, never a cascade."""
        return templates.delete_template(self._conn, template_id, business)

    # -- passes --------------------------------------------------------------------------

    def list_passes(
        self, page: Page, business: str, *, template_id: str | None, status: str | None
    ) -> Json:
        return passes.list_passes(
            self._conn, page, business, template_id=template_id, status=status
        )

    def count_passes(self, business: str) -> int:
        """Every pass the business has, revoked ones included (what a plan's quota counts)."""
        return passes.count_passes(self._conn, business)

    def get_pass(self, pass_id: str, business: str) -> Json:
        return passes.get_pass(self._conn, pass_id, business)

    def create_pass(
        self,
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
        """Create a pass in one of the business's templates (see `passes.create_pass`).

        Raises:
            UnknownTemplateError: the business has no such template (checked first).
            QuotaError: the business already holds `quota` passes.
        """
        return passes.create_pass(
            self._conn,
            business=business,
            template_id=template_id,
            holder_name=holder_name,
            holder_email=holder_email,
            expires_at=expires_at,
            data=data,
            max_uses=max_uses,
            status=status,
            uses_count=uses_count,
            quota=quota,
        )

    def update_pass(self, pass_id: str, changes: Mapping[str, Any], business: str) -> Json:
        return passes.update_pass(self._conn, pass_id, changes, business)

    def revoke_pass(self, pass_id: str, business: str) -> Json:
        return passes.revoke_pass(self._conn, pass_id, business)

    # -- validation ----------------------------------------------------------------------

    def validate(self, code: str | None, given: str, api_key_id: str | None, business: str) -> Json:
        """Decide on a scanned code and count a use when it is valid (see `scans.validate`).

        Must run inside a write transaction (see `execute`).
        """
        return scans.validate(self._conn, code, given, api_key_id, business)

    def count_scans(self) -> int:
        return scans.count_scans(self._conn)
