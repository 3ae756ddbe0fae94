"""The tables, and the migration of an older database to them.

`PRAGMA user_version` holds the schema version. Every key, template, pass and
idempotency record belongs to one business (`keys.py`); pass codes stay unique
across businesses, so a code names at most one pass anywhere.
"""

from __future__ import annotations

import logging
import sqlite3

from scanner.server.errors import StoreOpenError
from scanner.server.store.connection import immediate

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2

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


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the tables that are missing, migrating a version 1 database first.

    Raises:
        StoreOpenError: the database is of a newer schema than this server's.
        sqlite3.Error: the database cannot be read or written.
    """
    with immediate(conn):
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreOpenError(
                f"database schema version {version} is newer than this server's ({SCHEMA_VERSION})"
            )
        if version == 1:
            for statement in _MIGRATE_1_TO_2:
                conn.execute(statement)
            logger.info("Database migrated from schema version 1 to %d", SCHEMA_VERSION)
        for statement in _SCHEMA:
            conn.execute(statement)
        # Always a write, so an unwritable database fails here and not on first use.
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
