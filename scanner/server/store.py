"""SQLite storage for the local PassQR server.

One `Store` wraps one connection and is used from one thread at a time (one
of the server's two database threads, writer or read-only reader, or a CLI
command). Every write runs
inside `BEGIN IMMEDIATE`, so two servers sharing a database file (two
processes, two connections) still serialise their writes: the validation
`UPDATE` is guarded by its `WHERE` clause and its row count is checked, which
is what makes "exactly one `valid` for a `max_uses = 1` pass" hold whoever
races.

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

import json
import logging
import math
import secrets
import sqlite3
import string
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scanner.server.auth import (
    PLANS,
    STORED_PREFIX_LENGTH,
    ApiKey,
    generate_key,
    hash_key,
    hashes_match,
)
from scanner.server.errors import (
    ConflictError,
    NotFoundError,
    QuotaError,
    StoreError,
    StoreOpenError,
    UnknownTemplateError,
)
from scanner.server.fields import ABSENT, RESULTS
from scanner.server.validation import Page, format_timestamp, now_timestamp

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2
#: The business of keys created without one, and of everything in a version 1 database.
DEFAULT_BUSINESS = "default"
#: Longest business name.
MAX_BUSINESS_LENGTH = 100
#: How long an idempotency record is kept, in seconds.
IDEMPOTENCY_TTL = 24 * 3600.0
_PURGE_EVERY = 600.0
_CODE_ALPHABET = string.ascii_uppercase + string.digits

_PASSES_TABLE = """CREATE TABLE IF NOT EXISTS {name} (
        id TEXT PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        template_id TEXT NOT NULL REFERENCES templates (id),
        holder_name TEXT,
        holder_email TEXT,
        data TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'used', 'expired', 'revoked')),
        uses_count INTEGER NOT NULL DEFAULT 0 CHECK (uses_count >= 0),
        max_uses INTEGER CHECK (max_uses IS NULL OR max_uses >= 1),
        expires_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        business TEXT NOT NULL
    )"""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        plan TEXT NOT NULL CHECK (plan IN ('free', 'starter', 'pro')),
        prefix TEXT NOT NULL,
        key_hash TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        business TEXT NOT NULL DEFAULT 'default'
    )""",
    """CREATE TABLE IF NOT EXISTS templates (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        description TEXT,
        color TEXT,
        logo_url TEXT,
        fields TEXT NOT NULL,
        settings TEXT NOT NULL,
        created_at TEXT NOT NULL,
        business TEXT NOT NULL DEFAULT 'default',
        max_uses INTEGER CHECK (max_uses IS NULL OR max_uses >= 1)
    )""",
    "CREATE INDEX IF NOT EXISTS templates_business ON templates (business)",
    _PASSES_TABLE.format(name="passes"),
    "CREATE INDEX IF NOT EXISTS passes_template ON passes (template_id)",
    "CREATE INDEX IF NOT EXISTS passes_business ON passes (business)",
    """CREATE TABLE IF NOT EXISTS scans (
        id INTEGER PRIMARY KEY,
        pass_id TEXT,
        code TEXT NOT NULL,
        result TEXT NOT NULL,
        at TEXT NOT NULL,
        api_key_id TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS scans_pass ON scans (pass_id)",
    """CREATE TABLE IF NOT EXISTS idempotency (
        api_key_id TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        created_at REAL NOT NULL,
        business TEXT NOT NULL DEFAULT 'default',
        PRIMARY KEY (api_key_id, key)
    )""",
    "CREATE INDEX IF NOT EXISTS idempotency_created ON idempotency (created_at)",
)

#: Version 1 to 2: businesses (everything so far is `default`'s), a template's default
#: max_uses, and a stored `expired` status (the passes table is rebuilt for its CHECK).
_MIGRATE_1_TO_2 = (
    "ALTER TABLE api_keys ADD COLUMN business TEXT NOT NULL DEFAULT 'default'",
    "ALTER TABLE templates ADD COLUMN business TEXT NOT NULL DEFAULT 'default'",
    "ALTER TABLE templates ADD COLUMN max_uses INTEGER CHECK (max_uses IS NULL OR max_uses >= 1)",
    "ALTER TABLE idempotency ADD COLUMN business TEXT NOT NULL DEFAULT 'default'",
    _PASSES_TABLE.format(name="passes_v2"),
    "INSERT INTO passes_v2 (id, code, template_id, holder_name, holder_email, data, status,"
    " uses_count, max_uses, expires_at, created_at, updated_at, business)"
    " SELECT id, code, template_id, holder_name, holder_email, data, status, uses_count,"
    " max_uses, expires_at, created_at, updated_at, 'default' FROM passes",
    "DROP TABLE passes",
    "ALTER TABLE passes_v2 RENAME TO passes",
)

_PASS_COLUMNS = (
    "p.id, p.code, p.holder_name, p.holder_email, p.data, p.status, p.uses_count, p.max_uses,"
    " p.expires_at, p.created_at, p.updated_at, p.template_id"
)
_TEMPLATE_COLUMNS = (
    "id, name, type, description, color, logo_url, fields, settings, created_at, max_uses"
)

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

Json = dict[str, Any]


def dumps(payload: Any) -> bytes:
    """The wire form of every JSON answer."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def display_status(stored: str, expires_at: str | None, now: str) -> str:
    """Revoked wins, then expiry (stored or by `expires_at`), then the stored `active`/`used`."""
    if stored == "revoked":
        return "revoked"
    if expires_at is not None and expires_at <= now:
        return "expired"
    return stored


def _pass_json(row: tuple[Any, ...], now: str) -> Json:
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


def _template_json(row: tuple[Any, ...]) -> Json:
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


def _text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


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


#: A write to run inside `Store.execute`: returns (HTTP status, JSON payload).
Operation = Callable[["Store"], tuple[int, Any]]


class IdempotencyMismatchError(StoreError):
    """The idempotency key was used before for a different request."""


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
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreOpenError(
                f"cannot create directory {path.parent}: {err.strerror or err}"
            ) from err
        if path.is_dir():
            raise StoreOpenError(f"cannot open database {path}: it is a directory")
        try:
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=5.0
            )
        except sqlite3.Error as err:
            raise StoreOpenError(f"cannot open database {path}: {err}") from err
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                logger.warning("SQLite refused WAL mode for %s (using %s)", path, mode)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(conn)
            store._create_schema()
        except sqlite3.Error as err:
            conn.close()
            raise StoreOpenError(f"cannot open database {path}: {err}") from err
        except StoreOpenError:
            conn.close()
            raise
        return store

    @classmethod
    def open_reader(cls, path: Path) -> Store:
        """A read-only connection to a database that `open` has already set up.

        In WAL mode its reads never wait for a writer, in this process or another.

        Raises:
            StoreOpenError: the database cannot be opened.
        """
        try:
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=5.0
            )
        except sqlite3.Error as err:
            raise StoreOpenError(f"cannot open database {path}: {err}") from err
        try:
            conn.execute("PRAGMA query_only=ON")
        except sqlite3.Error as err:
            conn.close()
            raise StoreOpenError(f"cannot open database {path}: {err}") from err
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

    def _create_schema(self) -> None:
        with self._immediate():
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreOpenError(
                    f"database schema version {version} is newer than this server's "
                    f"({SCHEMA_VERSION})"
                )
            if version == 1:
                for statement in _MIGRATE_1_TO_2:
                    self._conn.execute(statement)
                logger.info("Database migrated from schema version 1 to %d", SCHEMA_VERSION)
            for statement in _SCHEMA:
                self._conn.execute(statement)
            # Always a write, so an unwritable database fails here and not on first use.
            self._conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._purge_idempotency()

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """A write transaction holding the database's write lock from the start."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """A read transaction, so a count and a page come from the same state."""
        self._conn.execute("BEGIN")
        try:
            yield
        finally:
            if self._conn.in_transaction:
                self._conn.execute("COMMIT")

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
        with self._immediate():
            if scope is not None:
                row = self._conn.execute(
                    "SELECT fingerprint, status, body FROM idempotency"
                    " WHERE business = ? AND api_key_id = ? AND key = ?",
                    (scope.business, scope.api_key_id, scope.key),
                ).fetchone()
                if row is not None:
                    if not hashes_match(row[0], scope.fingerprint):
                        raise IdempotencyMismatchError(scope.key)
                    return Answer(status=row[1], body=row[2].encode("utf-8"), replayed=True)
            status, payload = operation(self)
            body = dumps(payload)
            if scope is not None and status < 400:
                self._conn.execute(
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
        if time.monotonic() - self._last_purge > _PURGE_EVERY:
            try:
                self._purge_idempotency()
            except sqlite3.OperationalError as err:
                # The write above is committed: its answer stands; purge next time.
                logger.warning("Idempotency purge skipped: %s", err)
        return Answer(status=status, body=body)

    def idempotency_mismatch(self, scope: IdempotencyScope) -> bool:
        """Whether the key is already recorded for a different request."""
        row = self._conn.execute(
            "SELECT fingerprint FROM idempotency WHERE business = ? AND api_key_id = ? AND key = ?",
            (scope.business, scope.api_key_id, scope.key),
        ).fetchone()
        return row is not None and not hashes_match(row[0], scope.fingerprint)

    def _purge_idempotency(self) -> None:
        self._last_purge = time.monotonic()
        with self._immediate():
            deleted = self._conn.execute(
                "DELETE FROM idempotency WHERE created_at < ?", (time.time() - IDEMPOTENCY_TTL,)
            ).rowcount
        if deleted:
            logger.info("Purged %d expired idempotency records", deleted)

    # -- API keys ------------------------------------------------------------------------

    def create_key(self, *, name: str, plan: str, business: str = DEFAULT_BUSINESS) -> str:
        """Store a new key's hash and return the plain key (its only appearance)."""
        if plan not in PLANS:
            raise ValueError(f"plan must be one of {', '.join(PLANS)}")
        check_business(business)
        key = generate_key()
        with self._immediate():
            self._conn.execute(
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

    def find_key(self, key_hash: str) -> ApiKey | None:
        """Look a key up by its hash, then compare in constant time."""
        row = self._conn.execute(
            "SELECT id, name, plan, key_hash, business FROM api_keys WHERE key_hash = ?",
            (key_hash,),
        ).fetchone()
        if row is None or not hashes_match(row[3], key_hash):
            return None
        return ApiKey(id=row[0], name=row[1], plan=row[2], business=row[4])

    # -- templates -----------------------------------------------------------------------

    def list_templates(self, page: Page, business: str) -> Json:
        with self._snapshot():
            total = self._conn.execute(
                "SELECT COUNT(*) FROM templates WHERE business = ?", (business,)
            ).fetchone()[0]
            rows = self._conn.execute(
                f"SELECT {_TEMPLATE_COLUMNS} FROM templates WHERE business = ?"
                " ORDER BY rowid DESC LIMIT ? OFFSET ?",
                (business, page.limit, page.offset),
            ).fetchall()
        return {
            "data": [_template_json(row) for row in rows],
            "meta": {"page": page.page, "limit": page.limit, "total": total},
        }

    def _template_row(self, template_id: str, business: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._conn.execute(
            f"SELECT {_TEMPLATE_COLUMNS} FROM templates WHERE id = ? AND business = ?",
            (template_id, business),
        ).fetchone()
        return row

    def get_template(self, template_id: str, business: str) -> Json:
        row = self._template_row(template_id, business)
        if row is None:
            raise NotFoundError("Template not found")
        return _template_json(row)

    def create_template(self, fields: Mapping[str, Any], business: str) -> Json:
        template_id = str(uuid.uuid4())
        self._conn.execute(
            f"INSERT INTO templates ({_TEMPLATE_COLUMNS}, business)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                template_id,
                fields["name"],
                fields["type"],
                fields["description"],
                fields["color"],
                fields["logo_url"],
                _text(fields["fields"]),
                _text(fields["settings"]),
                now_timestamp(),
                fields.get("max_uses"),
                business,
            ),
        )
        return self.get_template(template_id, business)

    def update_template(self, template_id: str, changes: Mapping[str, Any], business: str) -> Json:
        if self._template_row(template_id, business) is None:
            raise NotFoundError("Template not found")
        if changes:
            values = {
                name: _text(value) if name in ("fields", "settings") else value
                for name, value in changes.items()
            }
            assignments = ", ".join(f"{name} = ?" for name in values)
            self._conn.execute(
                f"UPDATE templates SET {assignments} WHERE id = ? AND business = ?",
                (*values.values(), template_id, business),
            )
        return self.get_template(template_id, business)

    def delete_template(self, template_id: str, business: str) -> Json:
        """Delete a template that no pass uses; one in use is a conflict, never a cascade."""
        template = self.get_template(template_id, business)
        in_use = self._conn.execute(
            "SELECT COUNT(*) FROM passes WHERE template_id = ?", (template_id,)
        ).fetchone()[0]
        if in_use:
            raise ConflictError(
                f"Template is used by {in_use} pass(es); revoke them or keep the template"
            )
        self._conn.execute("DELETE FROM templates WHERE id = ?", (template_id,))
        return template

    # -- passes --------------------------------------------------------------------------

    def list_passes(
        self, page: Page, business: str, *, template_id: str | None, status: str | None
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
        with self._snapshot():
            total = self._conn.execute(f"SELECT COUNT(*) FROM passes p{where}", params).fetchone()[
                0
            ]
            rows = self._conn.execute(
                f"SELECT {_PASS_COLUMNS} FROM passes p{where}"
                " ORDER BY p.rowid DESC LIMIT ? OFFSET ?",
                (*params, page.limit, page.offset),
            ).fetchall()
        return {
            "data": [_pass_json(row, now) for row in rows],
            "meta": {"page": page.page, "limit": page.limit, "total": total},
        }

    def count_passes(self, business: str) -> int:
        """Every pass the business has, revoked ones included (what a plan's quota counts)."""
        count: int = self._conn.execute(
            "SELECT COUNT(*) FROM passes WHERE business = ?", (business,)
        ).fetchone()[0]
        return count

    def _pass_row(self, pass_id: str, business: str) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._conn.execute(
            f"SELECT {_PASS_COLUMNS} FROM passes p WHERE p.id = ? AND p.business = ?",
            (pass_id, business),
        ).fetchone()
        return row

    def get_pass(self, pass_id: str, business: str) -> Json:
        row = self._pass_row(pass_id, business)
        if row is None:
            raise NotFoundError("Pass not found")
        return _pass_json(row, now_timestamp())

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
        """Create a pass in one of the business's templates.

        `max_uses` left out (ABSENT) is the template's default; None is unlimited.
        `quota` is (plan, most passes the business may hold), counted in this
        transaction, so creates racing past it cannot both succeed.

        Raises:
            UnknownTemplateError: the business has no such template (checked first).
            QuotaError: the business already holds `quota` passes.
        """
        template = self._template_row(template_id, business)
        if template is None:
            raise UnknownTemplateError(f"No template with id {template_id}")
        if quota is not None and self.count_passes(business) >= quota[1]:
            raise QuotaError(
                f"The {quota[0]} plan allows {quota[1]} passes and this business has "
                "reached it; revoked passes count too"
            )
        if max_uses is ABSENT:
            max_uses = template[9]
        row = (template_id, holder_name, holder_email, _text(data), status, uses_count, max_uses)
        return self._insert_pass(business, row, expires_at)

    def _insert_pass(self, business: str, row: tuple[Any, ...], expires_at: str | None) -> Json:
        """Insert under a freshly drawn code; `row` is template_id .. max_uses."""
        now = now_timestamp()
        pass_id = str(uuid.uuid4())
        for _ in range(20):
            code = "PASS-" + "".join(secrets.choice(_CODE_ALPHABET) for _ in range(8))
            try:
                self._conn.execute(
                    "INSERT INTO passes (id, code, template_id, holder_name, holder_email, data,"
                    " status, uses_count, max_uses, expires_at, created_at, updated_at, business)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (pass_id, code, *row, expires_at, now, now, business),
                )
            except sqlite3.IntegrityError:
                # A code collision (36^8 codes): draw again.
                continue
            return self.get_pass(pass_id, business)
        raise StoreError("could not draw a unique pass code")

    def update_pass(self, pass_id: str, changes: Mapping[str, Any], business: str) -> Json:
        row = self._pass_row(pass_id, business)
        if row is None:
            raise NotFoundError("Pass not found")
        uses_count, max_uses = row[6], row[7]
        if changes.get("status") == "active" and max_uses is not None and uses_count >= max_uses:
            raise ConflictError(
                "Pass has no uses left (uses_count has reached max_uses); it cannot be active"
            )
        values = {
            name: _text(value) if name == "data" else value for name, value in changes.items()
        }
        values["updated_at"] = now_timestamp()
        assignments = ", ".join(f"{name} = ?" for name in values)
        self._conn.execute(
            f"UPDATE passes SET {assignments} WHERE id = ?", (*values.values(), pass_id)
        )
        return self.get_pass(pass_id, business)

    def revoke_pass(self, pass_id: str, business: str) -> Json:
        row = self._pass_row(pass_id, business)
        if row is None:
            raise NotFoundError("Pass not found")
        if row[5] == "revoked":
            return {"data": _pass_json(row, now_timestamp()), "message": "Pass was already revoked"}
        self._conn.execute(
            "UPDATE passes SET status = 'revoked', updated_at = ? WHERE id = ?",
            (now_timestamp(), pass_id),
        )
        return {"data": self.get_pass(pass_id, business), "message": "Pass revoked"}

    # -- validation ----------------------------------------------------------------------

    def validate(self, code: str | None, given: str, api_key_id: str | None, business: str) -> Json:
        """Decide on a scanned code and count a use when it is valid.

        Must run inside a write transaction (see `execute`). `code` is the
        normalised code, or None when `given` cannot be a pass code. Another
        business's code is `not_found`, and nothing of its pass is read or counted.
        Checks run in the order not_found, revoked, expired, used, valid.
        """
        now = now_timestamp()
        row = None
        if code is not None:
            row = self._conn.execute(
                f"SELECT {_PASS_COLUMNS}, t.id, t.name, t.type, t.color"
                " FROM passes p LEFT JOIN templates t ON t.id = p.template_id"
                " WHERE p.code = ? AND p.business = ?",
                (code, business),
            ).fetchone()
        if row is None:
            result = "not_found"
        else:
            result = self._decide(row, now)
            if result == "valid":
                updated = self._conn.execute(
                    "UPDATE passes SET uses_count = uses_count + 1,"
                    " status = CASE WHEN max_uses IS NOT NULL AND uses_count + 1 >= max_uses"
                    " THEN 'used' ELSE status END, updated_at = ?"
                    " WHERE id = ? AND status = 'active'"
                    " AND (max_uses IS NULL OR uses_count < max_uses)"
                    " AND (expires_at IS NULL OR expires_at > ?)"
                    " RETURNING uses_count, status, updated_at",
                    (now, row[0], now),
                ).fetchall()
                if len(updated) == 1:
                    uses_count, status, updated_at = updated[0]
                    row = (*row[:5], status, uses_count, *row[7:10], updated_at, *row[11:])
                else:
                    # Unreachable under BEGIN IMMEDIATE; decide again from the stored state.
                    fresh = self._pass_row(row[0], business)
                    row = (*fresh, *row[12:]) if fresh is not None else row
                    result = self._decide(row, now)
                    if result == "valid":
                        result = "used"
        self._conn.execute(
            "INSERT INTO scans (pass_id, code, result, at, api_key_id) VALUES (?, ?, ?, ?, ?)",
            (row[0] if row is not None else None, given, result, now, api_key_id),
        )
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
                "pass": _pass_json(row, now),
                "template": template,
            }
        }

    @staticmethod
    def _decide(row: tuple[Any, ...], now: str) -> str:
        status, uses_count, max_uses, expires_at = row[5], row[6], row[7], row[8]
        if status == "revoked":
            return "revoked"
        if status == "expired" or (expires_at is not None and expires_at <= now):
            return "expired"
        if status == "used" or (max_uses is not None and uses_count >= max_uses):
            return "used"
        return "valid"

    def count_scans(self) -> int:
        count: int = self._conn.execute("SELECT COUNT(*) FROM scans").fetchone()[0]
        return count


# -- helpers for the CLI and tests -------------------------------------------------------


@contextmanager
def opened(path: Path) -> Iterator[Store]:
    store = Store.open(path)
    try:
        yield store
    finally:
        store.close()


def check_business(business: str) -> None:
    """A business name is 1 to 100 printable characters, not only spaces.

    Raises:
        ValueError: it is not.
    """
    if not business.strip() or len(business) > MAX_BUSINESS_LENGTH or not business.isprintable():
        raise ValueError(
            f"business must be 1 to {MAX_BUSINESS_LENGTH} printable characters, not only spaces"
        )


def create_key(
    db_path: Path, *, name: str = "default", plan: str = "pro", business: str = DEFAULT_BUSINESS
) -> str:
    """Create an API key in the database at `db_path` (created if needed).

    Args:
        db_path: the SQLite file.
        name: a label for the key.
        plan: free, starter or pro.
        business: the business whose templates and passes the key sees (a new
            name starts an empty business).

    Returns:
        The plain key. It is stored only as a hash and cannot be shown again.

    Raises:
        ValueError: `plan` is not one of free, starter, pro, or `business` is not a name.
        StoreOpenError: the database cannot be opened or written.
    """
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}")
    check_business(business)
    with opened(db_path) as store:
        return store.create_key(name=name, plan=plan, business=business)


def seed_demo(db_path: Path, *, business: str = DEFAULT_BUSINESS) -> dict[str, str]:
    """Create a demo template and one pass per interesting state, in `business`.

    Returns:
        label -> code for the labels valid, season, used, expired and revoked.
        Calling it again adds another template and another set of passes.
    """
    check_business(business)
    past = format_timestamp(datetime.now(UTC) - timedelta(days=30))
    future = format_timestamp(datetime.now(UTC) + timedelta(days=365))
    with opened(db_path) as store:

        def seed(store: Store) -> tuple[int, Any]:
            template = store.create_template(
                {
                    "max_uses": None,
                    "name": "Demo Festival",
                    "type": "event",
                    "description": "Passes created by seed-demo",
                    "color": "#1f6feb",
                    "logo_url": None,
                    "fields": [{"key": "zone", "label": "Zone"}],
                    "settings": {},
                },
                business,
            )
            specs: dict[str, dict[str, Any]] = {
                "valid": {"holder_name": "Ada Lovelace", "max_uses": 1, "expires_at": future},
                "season": {"holder_name": "Grace Hopper", "max_uses": None, "expires_at": None},
                "used": {
                    "holder_name": "Alan Turing",
                    "max_uses": 1,
                    "expires_at": future,
                    "uses_count": 1,
                    "status": "used",
                },
                "expired": {"holder_name": "Katherine Johnson", "max_uses": 1, "expires_at": past},
                "revoked": {
                    "holder_name": "Margaret Hamilton",
                    "max_uses": 1,
                    "expires_at": future,
                    "status": "revoked",
                },
            }
            codes: dict[str, str] = {}
            for label, spec in specs.items():
                email = spec["holder_name"].split()[0].lower() + "@example.com"
                created = store.create_pass(
                    business=business,
                    template_id=template["id"],
                    holder_email=email,
                    data={"zone": "demo", "label": label},
                    **spec,
                )
                codes[label] = created["code"]
            return 200, codes

        answer = store.execute(seed, None)
    codes: dict[str, str] = json.loads(answer.body)
    return codes
