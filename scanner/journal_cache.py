"""The journal's offline copy of the passes (``offline.policy = "allow-known"``): the
``pass_cache`` table and the time of its last sync, swapped in whole."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from scanner.journal_rows import JournalQueries, iso

#: The pass fields the offline copy keeps.
CACHE_FIELDS = (
    "code", "id", "status", "uses_count", "max_uses", "expires_at", "holder_name",
    "holder_email", "template_id",
)  # fmt: skip


class PassCacheQueries(JournalQueries):
    """The offline copy's queries, a part of :class:`scanner.journal.Journal`."""

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
