"""The journal's tables: what a scan row holds, how an older journal is brought up to
date, and how a run's undecided rows are closed at the next start.

See :mod:`scanner.journal` for why each column exists (``asked`` above all).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS scans (
    id            INTEGER PRIMARY KEY,
    scan_id       TEXT NOT NULL UNIQUE,   -- also the Idempotency-Key of every try
    ts            TEXT NOT NULL,          -- UTC, ISO 8601
    gate          TEXT NOT NULL,
    source        TEXT NOT NULL,
    raw           TEXT NOT NULL,          -- escaped, capped
    code          TEXT,
    manual        INTEGER NOT NULL DEFAULT 0,
    decision      TEXT,                   -- accepted | rejected | NULL (undecided)
    reason        TEXT,
    message       TEXT,
    detail        TEXT,
    holder        TEXT,
    latency_ms    REAL,
    offline       INTEGER NOT NULL DEFAULT 0,
    decided_ts    TEXT,
    replay_state  TEXT,                   -- offline admissions: pending | done | conflict
    replay_result TEXT,                   -- what the server said on replay
    replay_ts     TEXT,
    replay_tries  INTEGER NOT NULL DEFAULT 0,
    asked         INTEGER NOT NULL DEFAULT 0, -- 1 once a validation may have been sent
    relay_fault   TEXT                    -- an admission whose door did not open
);
CREATE INDEX IF NOT EXISTS scans_ts ON scans (ts);
CREATE INDEX IF NOT EXISTS scans_code ON scans (code);
CREATE TABLE IF NOT EXISTS pass_cache (   -- the offline copy of the passes (allow-known)
    code          TEXT PRIMARY KEY,
    id            TEXT,
    status        TEXT,
    uses_count    INTEGER,
    max_uses      INTEGER,
    expires_at    TEXT,
    holder_name   TEXT,
    holder_email  TEXT,
    template_id   TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS events (       -- what the gate's contacts said (issue 16)
    id            INTEGER PRIMARY KEY,
    ts            TEXT NOT NULL,          -- UTC, ISO 8601
    gate          TEXT NOT NULL,
    kind          TEXT NOT NULL,          -- passage | forced | exit | tamper | alarm
    scan_id       TEXT,                   -- the admission a passage belongs to, or NULL
    source        TEXT,                   -- the input's name
    detail        TEXT
);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
"""

REPLAY_INDEX = (
    "CREATE INDEX IF NOT EXISTS scans_replay ON scans (replay_state) WHERE replay_state IS NOT NULL"
)

#: Columns added after the first release, added in place to older journals.
LATER_COLUMNS = {
    "replay_state": "TEXT",
    "replay_result": "TEXT",
    "replay_ts": "TEXT",
    "replay_tries": "INTEGER NOT NULL DEFAULT 0",
    "asked": "INTEGER NOT NULL DEFAULT 0",
    "relay_fault": "TEXT",
    "passage": "TEXT",  # admissions with a passage sensor: passed | not_passed | NULL
}

#: Replay states staff still have to see: never pruned.
KEPT_STATES = ("pending", "conflict", "reconcile", "counted", "unverified")

INTERRUPTED_UNASKED = "the kiosk stopped before asking the server: nothing was used"
INTERRUPTED_ASKED = "Interrupted: pass may have been used"


EXPORT_COLUMNS = (
    "ts", "gate", "source", "code", "raw", "manual", "decision", "reason", "message", "detail",
    "holder", "latency_ms", "offline", "scan_id", "decided_ts", "replay_state", "replay_result",
    "replay_ts", "relay_fault", "passage",
)  # fmt: skip

#: The pass fields the offline copy keeps.
CACHE_FIELDS = (
    "code", "id", "status", "uses_count", "max_uses", "expires_at", "holder_name",
    "holder_email", "template_id",
)  # fmt: skip


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def scan_rows(
    conn: sqlite3.Connection, tail: str, params: tuple[Any, ...]
) -> Iterator[dict[str, Any]]:
    """The scan rows ``tail`` (``WHERE ... ORDER BY ...``) selects, as dicts of
    :data:`EXPORT_COLUMNS`."""
    cols = ", ".join(EXPORT_COLUMNS)
    cursor = conn.execute(f"SELECT {cols} FROM scans {tail}", params)  # noqa: S608 - fixed text
    for values in cursor:
        row = dict(zip(EXPORT_COLUMNS, values, strict=True))
        row["manual"] = bool(row["manual"])
        row["offline"] = bool(row["offline"])
        yield row


def migrate(conn: sqlite3.Connection) -> None:
    """Create the tables, add the columns and indexes an older journal lacks."""
    conn.executescript(SCHEMA)
    have = {row[1] for row in conn.execute("PRAGMA table_info(scans)")}
    for column, decl in LATER_COLUMNS.items():
        if column not in have:
            conn.execute(f"ALTER TABLE scans ADD COLUMN {column} {decl}")
    # Indexes on columns an older journal may only just have gained.
    conn.execute(REPLAY_INDEX)


def close_interrupted(conn: sqlite3.Connection) -> None:
    """Decide every row a previous run left undecided (see the module docstring)."""
    now = iso(datetime.now(UTC))
    conn.execute(
        "UPDATE scans SET decision = 'rejected', reason = 'error', message = 'Interrupted', "
        "detail = ?, decided_ts = ? WHERE decision IS NULL AND asked = 0",
        (INTERRUPTED_UNASKED, now),
    )
    conn.execute(
        "UPDATE scans SET decision = 'rejected', reason = 'error', message = ?, detail = ?, "
        "decided_ts = ?, replay_state = 'reconcile' WHERE decision IS NULL AND asked = 1",
        (
            INTERRUPTED_ASKED,
            "the kiosk stopped while asking the server; the door did not open",
            now,
        ),
    )
