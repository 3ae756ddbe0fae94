"""What the gate's contacts said (issue 16: passage sensor, exit button, tamper, alarm):
the ``events`` table (in :mod:`scanner.journal_schema`), each admission's ``passage``
outcome, and their counts."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from scanner.journal_schema import EXPORT_COLUMNS, iso, scan_rows

T = TypeVar("T")

#: What :meth:`Journal.turnstile_counts_since` counts.
TURNSTILE_COUNTS = (
    "admissions", "passages", "passed", "not_passed", "forced", "exits", "tamper", "alarms",
)  # fmt: skip

#: How the recent-scans list names a contact event.
EVENT_TEXT = {
    "forced": "Passage without admission (forced or tailgating)",
    "exit": "Exit button: door opened",
    "tamper": "Tamper switch",
    "alarm": "Alarm",
}


class EventQueries:
    """The contact events' queries, a part of :class:`scanner.journal.Journal` (a mixin:
    each runs on the journal's thread through its ``_run``)."""

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # pragma: no cover - Journal runs it on its own thread

    async def record_event(
        self,
        *,
        ts: datetime,
        gate: str,
        kind: str,
        scan_id: str | None,
        source: str | None,
        detail: str = "",
    ) -> None:
        """Commit one contact event (``passage``, ``forced``, ``exit``, ``tamper``, ``alarm``)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO events (ts, gate, kind, scan_id, source, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (iso(ts), gate, kind, scan_id, source, detail),
            )

        await self._run(write)

    async def set_passage(self, scan_id: str, outcome: str) -> None:
        """Whether an admission's guest went through (``passed`` or ``not_passed``)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE scans SET passage = ? WHERE scan_id = ?", (outcome, scan_id))

        await self._run(write)

    async def turnstile_counts_since(self, since: datetime) -> dict[str, int]:
        """Admissions, passages and their outcomes, exits, tamper and alarm events since a
        moment (for "today's counts" after a restart)."""

        def read(conn: sqlite3.Connection) -> dict[str, int]:
            when = iso(since)
            counts = dict.fromkeys(TURNSTILE_COUNTS, 0)
            (counts["admissions"],) = conn.execute(
                "SELECT COUNT(*) FROM scans WHERE ts >= ? AND decision = 'accepted'", (when,)
            ).fetchone()
            for outcome, n in conn.execute(
                "SELECT passage, COUNT(*) FROM scans WHERE ts >= ? AND passage IS NOT NULL "
                "GROUP BY passage",
                (when,),
            ):
                if outcome in ("passed", "not_passed"):
                    counts[str(outcome)] = int(n)
            names = {"passage": "passages", "forced": "forced", "exit": "exits"}
            names |= {"tamper": "tamper", "alarm": "alarms"}
            for kind, n in conn.execute(
                "SELECT kind, COUNT(*) FROM events WHERE ts >= ? GROUP BY kind", (when,)
            ):
                if kind in names:
                    counts[names[str(kind)]] += int(n)
            counts["passages"] += counts["forced"]
            return counts

        return await self._run(read)

    async def recent_with_events(self, limit: int = 20) -> list[dict[str, Any]]:
        """:meth:`recent`, with the contact events staff must see (forced passages, exits,
        tamper, alarm) as rows of the same shape, newest first."""

        def read(conn: sqlite3.Connection) -> list[dict[str, Any]]:
            rows = list(scan_rows(conn, "ORDER BY id DESC LIMIT ?", (limit,)))
            events = conn.execute(
                "SELECT ts, gate, kind, source, detail FROM events "
                "WHERE kind != 'passage' ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
            for ts, gate, kind, source, detail in events:
                row: dict[str, Any] = dict.fromkeys(EXPORT_COLUMNS)
                row.update(ts=ts, gate=gate, source=source, decision=kind, detail=detail)
                row.update(message=EVENT_TEXT.get(str(kind), str(kind)))
                row.update(manual=False, offline=False)
                rows.append(row)
            rows.sort(key=lambda r: str(r["ts"]), reverse=True)
            return rows[:limit]

        return await self._run(read)

    async def prune_events(self, *, keep_days: int, max_rows: int, now: datetime) -> int:
        """Delete contact events older than ``keep_days`` (0: keep) and beyond ``max_rows``."""

        def write(conn: sqlite3.Connection) -> int:
            deleted = 0
            if keep_days > 0:
                cutoff = iso(now - timedelta(days=keep_days))
                deleted += conn.execute("DELETE FROM events WHERE ts < ?", (cutoff,)).rowcount
            (total,) = conn.execute("SELECT COUNT(*) FROM events").fetchone()
            if int(total) > max_rows:
                deleted += conn.execute(
                    "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY id LIMIT ?)",
                    (int(total) - max_rows,),
                ).rowcount
            return deleted

        return await self._run(write)
