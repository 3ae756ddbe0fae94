"""The local journal: one SQLite row per physical scan, written before anything moves.

A scan row is committed (WAL, ``synchronous=FULL``: fsync'd) as soon as the scan
is read, before it waits for its turn; it is marked ``asked`` (committed) just
before its validation is sent, and completed with the decision before the relay
is touched or the screen shows a result. So a row whose decision is still empty
after a crash tells which of two things happened:

- ``asked = 0``: the server never heard of the scan; nothing was used or admitted.
- ``asked = 1``: the server may have counted a use that nobody saw. The row is
  closed as "pass may have been used" with ``replay_state = 'reconcile'``, and
  the kiosk asks again with the scan's own ``Idempotency-Key`` (a server that
  honours it answers its stored first answer and counts nothing more), or, when
  the server is not known to honour it, leaves it ``unverified`` for staff.

Old rows are pruned (``keep_days``, ``max_rows``) except those staff still need
(pending replays, conflicts, counted and unverified scans). All sqlite work runs
on one dedicated thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

from scanner.csvsafe import SafeCsvWriter
from scanner.errors import ConfigError, ScannerError
from scanner.journal_events import EventQueries
from scanner.journal_files import lock_exclusively, make_private, refuse_non_file
from scanner.journal_schema import (
    CACHE_FIELDS,
    EXPORT_COLUMNS,
    INTERRUPTED_ASKED,
    INTERRUPTED_UNASKED,
    KEPT_STATES,
    close_interrupted,
    iso,
    migrate,
    scan_rows,
)
from scanner.models import Decision, Scan

T = TypeVar("T")

__all__ = [
    "CACHE_FIELDS",
    "EXPORT_COLUMNS",
    "INTERRUPTED_ASKED",
    "INTERRUPTED_UNASKED",
    "KEPT_STATES",
    "Journal",
    "JournalFullError",
    "start_of_today",
]


class JournalFullError(ScannerError):
    """The journal's disk is below its reserve: no new admission may start."""


class Journal(EventQueries):
    """The scan journal.

    Args:
        path: the SQLite file; its directory is created.

    Raises:
        ConfigError: from :meth:`open`, when the file cannot be created or opened.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal")
        self._conn: sqlite3.Connection | None = None
        self._lock: int | None = None
        self._shut = False

    # -- thread plumbing ----------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            raise RuntimeError("journal is not open")
        return fn(self._conn)

    def _open_sync(self, recover: bool = True) -> None:
        refuse_non_file(self.path)
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if recover:
                self._lock = lock_exclusively(self.path)
                if not self.path.exists():
                    os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as err:
            self._unlock()
            raise ConfigError(f"journal.path {self.path}: cannot open the journal ({err})") from err
        try:
            # Is it a journal at all? Before anything is written or its mode changed.
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            migrate(conn)
            # A scan with no decision was cut short (kill -9, power cut): nothing was
            # admitted for it, and it must not stay undecided for ever. Only the kiosk
            # that owns the journal does this: a reader (export) must not touch a scan
            # that a running kiosk is still deciding.
            if recover:
                close_interrupted(conn)
                make_private(self.path)
        except (sqlite3.Error, OSError) as err:
            conn.close()
            self._unlock()
            raise ConfigError(f"journal.path {self.path}: cannot use the journal ({err})") from err
        self._conn = conn

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    async def open(self) -> None:
        """Open (creating the file) and close every scan a previous run left undecided."""
        await asyncio.get_running_loop().run_in_executor(self._pool, self._open_sync)

    def open_sync(self) -> None:
        """Open from synchronous code to read (the export command): no recovery."""
        self._pool.submit(self._open_sync, False).result()

    def _close_sync(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._unlock()

    async def close(self) -> None:
        """Close the database; safe to call twice."""
        if self._shut:
            return
        self._shut = True
        await asyncio.get_running_loop().run_in_executor(self._pool, self._close_sync)
        self._pool.shutdown(wait=True)

    def close_sync(self) -> None:
        if self._shut:
            return
        self._shut = True
        self._pool.submit(self._close_sync).result()
        self._pool.shutdown(wait=True)

    # -- writes -------------------------------------------------------------------------

    async def record_scan(self, scan: Scan) -> None:
        """Commit a scan before anything acts on it (durable when this returns)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO scans (scan_id, ts, gate, source, raw, code, manual) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    scan.id,
                    iso(scan.ts),
                    scan.gate,
                    scan.source,
                    scan.raw,
                    scan.code,
                    int(scan.manual),
                ),
            )

        await self._run(write)

    async def close_undecided(self) -> None:
        """Close the rows of scans stopped before their decision (on shutdown)."""
        await self._run(close_interrupted)

    async def mark_asked(self, scan_id: str, min_free_bytes: int = 0) -> None:
        """Commit that this scan's validation is about to be sent.

        Raises:
            JournalFullError: the journal's disk has less than ``min_free_bytes``
                free: the scan must not be sent (its decision row might not fit).
            sqlite3.Error: the mark could not be written.
        """

        def write(conn: sqlite3.Connection) -> None:
            free = self._free_bytes()
            if free < min_free_bytes:
                raise JournalFullError(
                    f"journal disk has {free // 1024} KB free, below the reserve of "
                    f"{min_free_bytes // 1024} KB (journal.min_free_kb)"
                )
            conn.execute("UPDATE scans SET asked = 1 WHERE scan_id = ?", (scan_id,))

        await self._run(write)

    def _free_bytes(self) -> int:
        st = os.statvfs(self.path.parent)
        return st.f_bavail * st.f_frsize

    async def record_decision(self, decision: Decision, decided_ts: datetime) -> None:
        """Complete a scan's row; durable when this returns.

        Raises:
            sqlite3.Error: not written (a full disk): nothing may act on the decision.
        """

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE scans SET decision = ?, reason = ?, message = ?, detail = ?, holder = ?, "
                "latency_ms = ?, offline = ?, decided_ts = ?, replay_state = ?, "
                "relay_fault = ? WHERE scan_id = ?",
                (
                    "accepted" if decision.accepted else "rejected",
                    decision.reason.value,
                    decision.message,
                    decision.detail,
                    decision.holder,
                    round(decision.latency_ms, 3),
                    int(decision.offline),
                    iso(decided_ts),
                    "pending" if decision.accepted and decision.offline else None,
                    decision.relay_fault,
                    decision.scan.id,
                ),
            )

        await self._run(write)

    # -- offline admissions and their replay ---------------------------------------------

    async def pending_replays(
        self, limit: int = 20, *, code: str | None = None
    ) -> list[tuple[str, str]]:
        """(scan_id, code) of offline admissions the server has not heard of, oldest first."""

        def read(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = conn.execute(
                "SELECT scan_id, code FROM scans WHERE replay_state = 'pending' "
                "AND (? IS NULL OR code = ?) ORDER BY id LIMIT ?",
                (code, code, limit),
            ).fetchall()
            return [(str(a), str(b)) for a, b in rows]

        return await self._run(read)

    async def finish_replay(self, scan_id: str, state: str, result: str) -> None:
        """Record what the server said about a replayed admission (done or conflict)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE scans SET replay_state = ?, replay_result = ?, replay_ts = ?, "
                "replay_tries = replay_tries + 1 WHERE scan_id = ?",
                (state, result, iso(datetime.now(UTC)), scan_id),
            )

        await self._run(write)

    async def replay_counts(self) -> dict[str, int]:
        def read(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT replay_state, COUNT(*) FROM scans WHERE replay_state IS NOT NULL "
                "GROUP BY replay_state"
            ).fetchall()
            counts = {state: 0 for state in ("done", *KEPT_STATES)}
            counts.update({str(k): int(v) for k, v in rows})
            return counts

        return await self._run(read)

    async def reconcile_rows(self, limit: int = 20) -> list[tuple[str, str]]:
        """(scan_id, code) of interrupted scans the server may have counted, oldest first."""

        def read(conn: sqlite3.Connection) -> list[tuple[str, str]]:
            rows = conn.execute(
                "SELECT scan_id, code FROM scans WHERE replay_state = 'reconcile' "
                "ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
            return [(str(a), str(b)) for a, b in rows]

        return await self._run(read)

    async def finish_reconcile(self, scan_id: str, state: str, result: str, detail: str) -> None:
        """What asking again about an interrupted scan showed (counted, done, unverified)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE scans SET replay_state = ?, replay_result = ?, replay_ts = ?, "
                "detail = ?, replay_tries = replay_tries + 1 WHERE scan_id = ?",
                (state, result, iso(datetime.now(UTC)), detail, scan_id),
            )

        await self._run(write)

    async def remember(self, key: str, value: str) -> None:
        """Keep a small fact across restarts (``meta`` table)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

        await self._run(write)

    async def recall(self, key: str) -> str | None:
        def read(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return str(row[0]) if row else None

        return await self._run(read)

    async def prune(self, *, keep_days: int, max_rows: int, now: datetime) -> int:
        """Delete decided rows older than ``keep_days`` (0: keep) and beyond ``max_rows``.

        Rows staff still need (:data:`KEPT_STATES`) are never deleted. SQLite reuses
        the freed pages, so a journal that is pruned stops growing.

        Returns:
            how many rows were deleted.
        """
        kept = ", ".join(f"'{s}'" for s in KEPT_STATES)
        prunable = f"decision IS NOT NULL AND COALESCE(replay_state, '') NOT IN ({kept})"

        def write(conn: sqlite3.Connection) -> int:
            deleted = 0
            if keep_days > 0:
                cutoff = iso(now - timedelta(days=keep_days))
                cur = conn.execute(f"DELETE FROM scans WHERE ts < ? AND {prunable}", (cutoff,))
                deleted += cur.rowcount
            (total,) = conn.execute("SELECT COUNT(*) FROM scans").fetchone()
            excess = int(total) - max_rows
            if excess > 0:
                cur = conn.execute(
                    f"DELETE FROM scans WHERE id IN (SELECT id FROM scans WHERE {prunable} "
                    "ORDER BY id LIMIT ?)",
                    (excess,),
                )
                deleted += cur.rowcount
            return deleted

        return await self._run(write)

    async def unconfirmed_offline_admissions(self, code: str) -> int:
        """Offline admissions of a code the server has not confirmed yet."""

        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute(
                "SELECT COUNT(*) FROM scans WHERE code = ? AND decision = 'accepted' "
                "AND offline = 1 AND replay_state = 'pending'",
                (code,),
            ).fetchone()
            return int(row[0])

        return await self._run(read)

    async def replace_cache(self, passes: list[dict[str, Any]], synced_at: datetime) -> None:
        """Swap in a complete new offline copy of the passes, atomically."""

        def write(conn: sqlite3.Connection) -> None:
            cols = ", ".join(CACHE_FIELDS)
            marks = ", ".join("?" for _ in CACHE_FIELDS)
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("DELETE FROM pass_cache")
                conn.executemany(
                    f"INSERT OR REPLACE INTO pass_cache ({cols}) VALUES ({marks})",
                    [tuple(p.get(f) for f in CACHE_FIELDS) for p in passes if p.get("code")],
                )
                conn.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('last_sync', ?)",
                    (iso(synced_at),),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._run(write)

    async def cached_pass(self, code: str) -> dict[str, Any] | None:
        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            cols = ", ".join(CACHE_FIELDS)
            row = conn.execute(
                f"SELECT {cols} FROM pass_cache WHERE code = ?",
                (code,),
            ).fetchone()
            return dict(zip(CACHE_FIELDS, row, strict=True)) if row else None

        return await self._run(read)

    async def cached_passes(self) -> list[dict[str, Any]]:
        """Every pass in the offline copy (empty when the kiosk keeps none)."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = conn.execute(f"SELECT {', '.join(CACHE_FIELDS)} FROM pass_cache").fetchall()
            return [dict(zip(CACHE_FIELDS, row, strict=True)) for row in rows]

        return await self._run(read)

    async def cache_size(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute("SELECT COUNT(*) FROM pass_cache").fetchone()[0])

        return await self._run(read)

    async def cache_attendance(self) -> list[tuple[str | None, int, int]]:
        """Per template in the offline copy: (template_id, passes used at least once, passes)."""

        def read(conn: sqlite3.Connection) -> list[tuple[str | None, int, int]]:
            rows = conn.execute(
                "SELECT template_id, SUM(CASE WHEN uses_count > 0 THEN 1 ELSE 0 END), COUNT(*) "
                "FROM pass_cache GROUP BY template_id ORDER BY template_id"
            ).fetchall()
            return [(t, int(used or 0), int(n)) for t, used, n in rows]

        return await self._run(read)

    async def last_sync(self) -> datetime | None:
        def read(conn: sqlite3.Connection) -> datetime | None:
            row = conn.execute("SELECT value FROM meta WHERE key = 'last_sync'").fetchone()
            return datetime.fromisoformat(str(row[0]).replace("Z", "+00:00")) if row else None

        return await self._run(read)

    # -- reads --------------------------------------------------------------------------

    async def counts_since(self, since: datetime) -> dict[str, int]:
        """Accepted and rejected scans since a moment (for "today's counts")."""

        def read(conn: sqlite3.Connection) -> dict[str, int]:
            rows = conn.execute(
                "SELECT decision, COUNT(*) FROM scans WHERE ts >= ? AND decision IS NOT NULL "
                "GROUP BY decision",
                (iso(since),),
            ).fetchall()
            counts = {"accepted": 0, "rejected": 0}
            counts.update({str(k): int(v) for k, v in rows})
            return counts

        return await self._run(read)

    async def last_admission(self, code: str) -> dict[str, Any] | None:
        """The newest accepted row of a code (for "used 20 s ago at North gate 1")."""

        def read(conn: sqlite3.Connection) -> dict[str, Any] | None:
            return next(
                scan_rows(
                    conn,
                    "WHERE code = ? AND decision = 'accepted' ORDER BY id DESC LIMIT 1",
                    (code,),
                ),
                None,
            )

        return await self._run(read)

    async def history(self, code: str, limit: int = 10) -> list[dict[str, Any]]:
        """The latest rows of one code, newest first (the staff screen's "scans here")."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return list(scan_rows(conn, "WHERE code = ? ORDER BY id DESC LIMIT ?", (code, limit)))

        return await self._run(read)

    async def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            return list(scan_rows(conn, "ORDER BY id DESC LIMIT ?", (limit,)))

        return await self._run(read)

    @staticmethod
    def peek(path: Path) -> tuple[int, str | None]:
        """(scans, the last one's time) of a journal, read-only: a running kiosk's is untouched.

        Opening it read-write would settle the kiosk's undecided scans (:meth:`Journal.open`).

        Raises:
            sqlite3.Error: not a journal, or unreadable.
        """
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            rows, last = conn.execute("SELECT count(*), max(ts) FROM scans").fetchone()
        finally:
            conn.close()
        return int(rows), last

    def export_sync(
        self, fmt: Literal["csv", "jsonl"], *, since: datetime | None = None
    ) -> Iterator[str]:
        """Yield the journal as CSV or JSON lines, oldest first."""
        where = "WHERE ts >= ? ORDER BY id" if since else "ORDER BY id"
        params: tuple[Any, ...] = (iso(since),) if since else ()
        rows = self._pool.submit(self._call, lambda c: list(scan_rows(c, where, params))).result()
        if fmt == "jsonl":
            for row in rows:
                yield json.dumps(row, ensure_ascii=False) + "\n"
            return
        buf = io.StringIO()
        writer = SafeCsvWriter(buf, lineterminator="\n")
        writer.write_row(EXPORT_COLUMNS)
        yield buf.getvalue()
        for row in rows:
            buf.seek(0)
            buf.truncate()
            writer.write_row(row[column] for column in EXPORT_COLUMNS)
            yield buf.getvalue()


def start_of_today(now: datetime) -> datetime:
    """Local midnight, as a UTC-aware moment (counts reset at the venue's midnight)."""
    local = now.astimezone()
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if midnight <= local else midnight - timedelta(days=1)
