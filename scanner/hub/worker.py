"""The hub's two background jobs: forwarding admissions, and keeping the mirror fresh.

Forwarding: the oldest queued admission is sent upstream as `POST /validate` under
its own Idempotency-Key (the gate's scan key), again and again with the same key
until the upstream answers, then settled: `sent` when the upstream also says
valid, else a `conflict` (used elsewhere, revoked...) kept for a person to look at.
One at a time, in decision order, inside the background share of the budget.

Sync: every `sync_interval_s`, every template and pass page by page (reads'
background share), written to the mirror page by page; at the end, what the
upstream no longer lists leaves the mirror.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from typing import Any, TypeVar

from scanner.hub import mirror, tables
from scanner.hub.upstream import Reply, Upstream, UpstreamError
from scanner.server.database import Database
from scanner.server.fields import RESULTS
from scanner.server.store.connection import immediate
from scanner.server.validation import now_timestamp

logger = logging.getLogger(__name__)

T = TypeVar("T")
PAGE_LIMIT = 100
_MAX_BACKOFF_S = 30.0


def _in_transaction(fn: Callable[..., T], conn: sqlite3.Connection, args: tuple[Any, ...]) -> T:
    with immediate(conn):
        return fn(conn, *args)


class HubWorkers:
    """Owns the forwarding and sync tasks of one hub."""

    def __init__(self, db: Database, upstream: Upstream, *, sync_interval_s: float) -> None:
        self.db = db
        self.upstream = upstream
        self.sync_interval_s = sync_interval_s
        self.queued = asyncio.Event()
        self.synced = asyncio.Event()
        self.last_sync: str | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(conn, *args)` in a write transaction on the database's writer thread."""
        return await self.db.call(_in_transaction, fn, self.db.store.connection, args)

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._forever(self.forward_next, "forwarding"), name="hub-forward"),
            asyncio.create_task(self._sync_forever(), name="hub-sync"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    # -- forwarding ----------------------------------------------------------------------

    async def _forever(self, step: Callable[[], Any], name: str) -> None:
        backoff = 1.0
        while True:
            try:
                worked = await step()
            except UpstreamError as err:
                wait = err.retry_after_s if err.retry_after_s is not None else backoff
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                await asyncio.sleep(max(wait, 0.05))
                continue
            except (sqlite3.Error, OSError) as err:
                logger.error("Hub %s failed: %s; retrying in %.0f s", name, err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF_S)
                continue
            backoff = 1.0
            if not worked:
                self.queued.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.queued.wait(), 5.0)

    async def forward_next(self) -> bool:
        """Send the oldest queued admission and settle it; False when none is queued.

        Raises:
            UpstreamError: no answer this time (it stays queued, under the same key).
        """
        admission = await self.write(tables.next_queued)
        if admission is None:
            return False
        await self.write(tables.count_attempt, admission.id)
        reply = await self.upstream.send(
            "POST",
            "/validate",
            live=False,
            body=json.dumps({"code": admission.code}).encode(),
            idem_key=admission.idem_key,
        )
        problem = unsettled(reply)
        if problem is not None:
            self.upstream.fault("bad_answer", problem)
            raise UpstreamError("bad_answer", problem)
        await self.write(_settle, admission, reply)
        return True

    # -- sync ----------------------------------------------------------------------------

    async def _sync_forever(self) -> None:
        while True:
            try:
                count = await self.sync_once()
                logger.info("Mirror synced: %d passes", count)
                wait = self.sync_interval_s
            except UpstreamError as err:
                logger.warning("Mirror sync stopped: %s", err)
                wait = min(self.sync_interval_s, max(err.retry_after_s or 0.0, 10.0))
            except (sqlite3.Error, OSError) as err:
                logger.error("Mirror sync failed: %s", err)
                wait = min(self.sync_interval_s, 30.0)
            await asyncio.sleep(wait)

    async def sync_once(self) -> int:
        """A full refresh of the mirror; returns the passes it holds after.

        Raises:
            UpstreamError: the upstream did not answer a page (the mirror keeps what it has).
        """
        await self.write(mirror.begin_sync)
        async for page in self._pages("/templates"):
            await self.write(_apply_templates, page)
        async for page in self._pages("/passes"):
            await self.write(_apply_passes, page)
        finished = now_timestamp()
        count = await self.write(mirror.end_sync, finished)
        self.last_sync = finished
        self.synced.set()
        return count

    async def _pages(self, path: str) -> Any:
        page = 1
        while True:
            read_at = time.time()
            reply = await self.upstream.send(
                "GET", path, live=False, query={"page": str(page), "limit": str(PAGE_LIMIT)}
            )
            items, total = _page_items(reply, path)
            yield items, read_at
            if not items or page * PAGE_LIMIT >= total:
                return
            page += 1


def _page_items(reply: Reply, path: str) -> tuple[list[Any], int]:
    payload = reply.payload
    if (
        reply.status != 200
        or not isinstance(payload, dict)
        or not isinstance(payload.get("data"), list)
    ):
        raise UpstreamError("bad_answer", f"GET {path} answered {reply.status} without a list")
    meta = payload.get("meta")
    total = meta.get("total") if isinstance(meta, dict) else None
    if not isinstance(total, int) or isinstance(total, bool):
        total = 0
    return payload["data"], total


def _apply_templates(conn: sqlite3.Connection, page: tuple[list[Any], float]) -> None:
    mirror.apply_templates(conn, {"data": page[0]})


def _apply_passes(conn: sqlite3.Connection, page: tuple[list[Any], float]) -> None:
    mirror.apply_passes(conn, {"data": page[0]}, page[1], recount=True)


#: Refusals of the request itself: sending it again under the same key changes nothing.
_FINAL_REFUSALS = frozenset({400, 422})


def unsettled(reply: Reply) -> str | None:
    """Why an answer to a forwarded admission settles nothing (it is sent again, under the
    same key), or None: a decision PassQR gave (any result it names), or a refusal of the
    request itself (400, 422). A 409 "in progress", a 404 of a missing route, an answer
    without a known result are the upstream's trouble, not the admission's."""
    if reply.status in _FINAL_REFUSALS:
        return None
    data = reply.payload.get("data") if isinstance(reply.payload, dict) else None
    result = data.get("result") if isinstance(data, dict) else None
    if reply.status == 200 and result in RESULTS:
        return None
    return f"an answer to a forwarded admission that decides nothing (HTTP {reply.status})"


def _settle(conn: sqlite3.Connection, admission: tables.Admission, reply: Reply) -> None:
    """Record the upstream's answer to an admission, and what it says of the pass."""
    data = reply.payload.get("data") if isinstance(reply.payload, dict) else None
    if reply.status == 200 and isinstance(data, dict):
        result = data.get("result")
        result = result if isinstance(result, str) else "unknown"
        if result == "valid":
            tables.settle(conn, admission.id, state="sent", upstream_result=result, message=None)
        else:
            message = data.get("message") if isinstance(data.get("message"), str) else None
            tables.settle(
                conn,
                admission.id,
                state="conflict",
                upstream_result=result,
                message=(message or f"PassQR answered {result}")[:300],
            )
            logger.warning("Conflict: %s admitted here, PassQR says %s", admission.code, result)
        # Settled first: the upstream's count now holds this admission, not "pending" any more.
        # A replayed answer is the count when the upstream first decided: maybe stale.
        fresh = not reply.headers.get("idempotent-replayed")
        mirror.apply_validation(conn, data, admission.code, recount=fresh)
        return
    message = _error_message(reply.payload) or f"PassQR answered HTTP {reply.status}"
    tables.settle(
        conn,
        admission.id,
        state="conflict",
        upstream_result=f"http_{reply.status}",
        message=message[:300],
    )
    logger.warning("Conflict: %s admitted here, PassQR refused it: %s", admission.code, message)


def _error_message(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    for name in ("message", "error"):
        value = payload.get(name)
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("message"), str):
            return str(value["message"])
    return None
