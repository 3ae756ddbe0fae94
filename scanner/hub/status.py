"""`GET /hub/status`: the gates, the upstream and the conflicts, as one JSON document.

Figures come from the server's scan log (every decision, by key) and the hub's
tables, read in one snapshot on the reader's connection; a gate is known by its
key's name (two keys of one name are one gate, e.g. after a key was replaced).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from scanner import __version__
from scanner.hub import mirror, tables
from scanner.hub.upstream import Upstream
from scanner.server.store.connection import snapshot
from scanner.server.validation import format_timestamp

#: Minutes of admissions per gate the dashboard charts.
CHART_MINUTES = 30
#: A gate seen this recently is online.
ONLINE_S = 60.0


def _stamp(moment: datetime) -> str:
    return format_timestamp(moment)


def _gates(conn: sqlite3.Connection, now: datetime, last_seen: Mapping[str, float]) -> list[Any]:
    minute, hour, day = (_stamp(now - timedelta(seconds=s)) for s in (60, 3600, 86400))
    first_minute = now.replace(second=0, microsecond=0) - timedelta(minutes=CHART_MINUTES - 1)
    gates: dict[str, dict[str, Any]] = {}
    for name, role in conn.execute(
        "SELECT k.name, h.role FROM api_keys k JOIN hub_keys h ON h.key_id = k.id ORDER BY k.name"
    ):
        gates.setdefault(name, _empty_gate(name, role))
    figures = conn.execute(
        "SELECT k.name, SUM(s.result = 'valid' AND s.at >= ?), SUM(s.result != 'valid' AND"
        " s.at >= ?), SUM(s.result = 'valid' AND s.at >= ?), SUM(s.result != 'valid' AND"
        " s.at >= ?), SUM(s.result = 'valid'), SUM(s.result != 'valid'), MAX(s.at)"
        " FROM scans s JOIN api_keys k ON k.id = s.api_key_id WHERE s.at >= ? GROUP BY k.name",
        (minute, minute, hour, hour, day),
    )
    for name, am, rm, ah, rh, ad, rd, last in figures:
        gate = gates.setdefault(name, _empty_gate(name, "gate"))
        gate["accepted"] = {"minute": am, "hour": ah, "day": ad}
        gate["rejected"] = {"minute": rm, "hour": rh, "day": rd}
        gate["_last_scan"] = last
    series = conn.execute(
        "SELECT k.name, substr(s.at, 1, 16), COUNT(*) FROM scans s"
        " JOIN api_keys k ON k.id = s.api_key_id WHERE s.result = 'valid' AND s.at >= ?"
        " GROUP BY k.name, substr(s.at, 1, 16)",
        (_stamp(first_minute),),
    )
    for name, minute_text, count in series:
        index = _minute_index(minute_text, first_minute)
        if name in gates and 0 <= index < CHART_MINUTES:
            gates[name]["admissions_per_minute"][index] = count
    for name, gate in gates.items():
        last_scan = gate.pop("_last_scan", None)
        seen = last_seen.get(name)
        stamp = _stamp(datetime.fromtimestamp(seen, UTC)) if seen else last_scan
        gate["last_seen"] = stamp
        if seen is not None and now.timestamp() - seen <= ONLINE_S:
            gate["state"] = "online"
        else:
            gate["state"] = "quiet" if stamp else "never"
    return list(gates.values())


def _minute_index(minute_text: str, first: datetime) -> int:
    try:
        moment = datetime.strptime(minute_text, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    except ValueError:
        return -1
    return int((moment - first).total_seconds() // 60)


def _empty_gate(name: str, role: str) -> dict[str, Any]:
    zero = {"minute": 0, "hour": 0, "day": 0}
    return {
        "name": name,
        "role": role,
        "last_seen": None,
        "state": "never",
        "accepted": dict(zero),
        "rejected": dict(zero),
        "admissions_per_minute": [0] * CHART_MINUTES,
    }


def status_payload(
    conn: sqlite3.Connection,
    *,
    started_at: str,
    last_seen: Mapping[str, float],
    upstream: Upstream,
    now_s: float,
    synced_since_start: bool,
) -> dict[str, Any]:
    """The status document (see docs/hub.md for its fields)."""
    now = datetime.fromtimestamp(now_s, UTC)
    with snapshot(conn):
        gates = _gates(conn, now, last_seen)
        counts = tables.outbox_counts(conn)
        conflicts = tables.conflicts(conn)
        last_sync = tables.get_meta(conn, "last_sync")
        mirrored = mirror.passes_mirrored(conn)
    budget = upstream.budget
    paused = max(budget.paused_until.values(), default=0.0)
    return {
        "hub": {"version": __version__, "started_at": started_at, "now": _stamp(now)},
        "gates": gates,
        "upstream": {
            "base_url": upstream.base_url,
            "state": upstream.state,
            "last_error": upstream.last_error,
            "queue": counts["queued"],
            "sent": counts["sent"],
            "conflicts": counts["conflict"],
            "last_sync": last_sync,
            "synced_since_start": synced_since_start,
            "passes_mirrored": mirrored,
            "paused_until": _stamp(datetime.fromtimestamp(paused, UTC)) if paused > now_s else None,
            "budget": {k: v for k, v in budget.snapshot().items() if k in ("validate", "read")},
        },
        "conflicts": conflicts,
    }
