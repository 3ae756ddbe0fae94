"""What the journal's modules share: the scan row's columns, timestamps as stored, and the
thread the queries run on (:class:`JournalQueries`, the base of :class:`scanner.journal.Journal`
and of its query mixins in ``journal_events.py`` and ``journal_cache.py``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

T = TypeVar("T")

EXPORT_COLUMNS = (
    "ts", "gate", "source", "code", "raw", "manual", "decision", "reason", "message", "detail",
    "holder", "latency_ms", "offline", "scan_id", "decided_ts", "replay_state", "replay_result",
    "replay_ts", "relay_fault", "passage",
)  # fmt: skip


def iso(ts: datetime) -> str:
    """A moment as the journal stores it: UTC, ISO 8601, ``Z``."""
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def scan_rows(
    conn: sqlite3.Connection, tail: str, params: tuple[Any, ...]
) -> Iterator[dict[str, Any]]:
    cols = ", ".join(EXPORT_COLUMNS)
    cursor = conn.execute(f"SELECT {cols} FROM scans {tail}", params)  # noqa: S608 - fixed text
    for values in cursor:
        row = dict(zip(EXPORT_COLUMNS, values, strict=True))
        row["manual"] = bool(row["manual"])
        row["offline"] = bool(row["offline"])
        yield row


class JournalQueries:
    """The base of the journal and its query mixins: each query runs on the journal's thread."""

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # pragma: no cover - Journal runs it on its own thread
