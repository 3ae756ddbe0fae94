"""Is ``api.base_url`` a venue hub, and how is the hub? One ``GET <root>/hub/status``.

A kiosk pointed at a venue hub (``passqr-scanner hub run``) speaks PassQR's API to it;
the hub also answers ``GET /hub/status`` at its root (``api.base_url`` without
``/api/v1``) with its version, its gates, its upstream (PassQR, as the hub sees it) and
its conflicts. PassQR has no such route: the one GET, asked only after the API check
passed, is answered 404 or with a page, and the report has no hub lines.

Everything in the document is outside text: it is read defensively (a field of the
wrong type is "unknown"), bounded like any answer (:mod:`scanner.answers`) and escaped
(:func:`scanner.payload.printable`) before it is put in a line. The doctor talks HTTP
to the hub: it never imports :mod:`scanner.hub`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from scanner import __version__
from scanner.answers import bounded_body
from scanner.config import Config
from scanner.doctor.report import Check, Status
from scanner.doctor.tls import fingerprint
from scanner.errors import BadAnswerError
from scanner.payload import printable

__all__ = ["QUEUE_WARN", "SYNC_STALE_S", "check_hub", "hub_checks", "hub_root", "read_status"]

STATUS_PATH = "/hub/status"
#: More admissions than this waiting for PassQR is a WARN.
QUEUE_WARN = 100
#: A mirror synced longer ago than this is a WARN: three times the hub's default
#: ``sync_interval_s`` (300 s).
SYNC_STALE_S = 15 * 60
#: Online gates named in the report; the others are counted.
GATES_SHOWN = 10
_TEXT_MAX = 200
_LOG = "journalctl -u passqr-hub on the hub"


def hub_root(base_url: str) -> str | None:
    """Where a hub serves ``/hub/status``: ``base_url`` without ``/api/v1``; None for an
    API root that does not end so (no hub serves one)."""
    base = base_url.rstrip("/")
    return base.removesuffix("/api/v1") if base.endswith("/api/v1") else None


async def read_status(
    config: Config, key: str, verify: ssl.SSLContext | bool
) -> Mapping[str, Any] | None:
    """The hub's status document; None when ``api.base_url`` is not a hub's (any failure:
    a 404, a page, JSON of another shape, no answer)."""
    root = hub_root(config.api.base_url)
    if root is None:
        return None
    timeout_s = config.api.timeout_s
    try:
        async with (
            httpx.AsyncClient(
                verify=verify,
                timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
                follow_redirects=False,
                headers={"User-Agent": f"passqr-scanner/{__version__}"},
            ) as client,
            asyncio.timeout(timeout_s),
            client.stream(
                "GET",
                root + STATUS_PATH,
                headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            ) as response,
        ):
            if response.status_code != 200:
                return None
            if "json" not in response.headers.get("content-type", "").lower():
                return None
            body = await bounded_body(response, "GET " + STATUS_PATH)
    except (httpx.HTTPError, TimeoutError, BadAnswerError, OSError):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    if not isinstance(document.get("hub"), dict) or not isinstance(document.get("upstream"), dict):
        return None
    return document


async def check_hub(config: Config, key: str, verify: ssl.SSLContext | bool) -> list[Check]:
    """The hub's lines, or none when ``api.base_url`` is not a hub."""
    document = await read_status(config, key, verify)
    root = hub_root(config.api.base_url)
    if document is None or root is None:
        return []
    trust = ""
    ca_file = config.api.ca_file
    if ca_file is not None and root.startswith("https:"):
        held = fingerprint(ca_file)
        trust = f"; its certificate trusted by api.ca_file {ca_file}" + (
            f" (SHA-256 {held})" if held else ""
        )
    return hub_checks(root, document, trust=trust)


# -- reading the document: every field may be missing or of the wrong type ------------------


def _text(value: Any, limit: int = _TEXT_MAX) -> str:
    """Outside text made safe to print; "" for anything that is not a string."""
    return printable(value, limit) if isinstance(value, str) else ""


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _table(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _plural(count: int, word: str, words: str = "") -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


# -- the lines ---------------------------------------------------------------------------------


def hub_checks(root: str, document: Mapping[str, Any], *, trust: str = "") -> list[Check]:
    """``api hub``, ``hub upstream``, ``hub queue``, ``hub conflicts``, ``hub mirror`` and
    ``hub gates`` from a status document (``root``: where the hub was asked)."""
    hub, upstream = _table(document.get("hub")), _table(document.get("upstream"))
    version = _text(hub.get("version"), 40) or "unknown"
    where = printable(root, _TEXT_MAX)
    return [
        Check(
            name="api hub",
            status=Status.OK,
            detail=f"API is a venue hub at {where} (version {version}){trust}",
        ),
        _upstream(upstream),
        _queue(upstream),
        _conflicts(where, upstream, document.get("conflicts")),
        _mirror(hub, upstream),
        _gates(document.get("gates")),
    ]


#: A state of the hub's upstream: (status, what it means, fix).
_STATES: dict[str, tuple[Status, str, str]] = {
    "ok": (Status.OK, "answering", ""),
    "starting": (Status.OK, "not asked yet (the hub has just started)", ""),
    "unreachable": (
        Status.WARN,
        "unreachable from the hub",
        "the hub decides the passes it holds and queues their admissions until PassQR "
        "answers; on the hub check its network to PassQR and [upstream] base_url (" + _LOG + ")",
    ),
    "rate_limited": (
        Status.WARN,
        "rate limiting the hub",
        "the hub waits and goes on; check nothing else shares the venue's PassQR key or public "
        "IP, and that the hub's validate_per_min and read_per_min are PassQR's limits",
    ),
    "unauthorized": (
        Status.FAIL,
        "refusing the hub's PassQR key",
        "give the hub a working PassQR API key (its [upstream] key_file, or the api-key "
        "credential of its unit) and restart it: until then it syncs nothing, forwards nothing "
        "and cannot ask about a code it does not hold",
    ),
    "bad_answer": (
        Status.FAIL,
        "answering something that is not PassQR's API",
        "the hub's [upstream] base_url must be PassQR's API root (https://passqr.com/api/v1); "
        "a proxy or a captive portal may be answering instead (" + _LOG + ")",
    ),
}


def _upstream(upstream: Mapping[str, Any]) -> Check:
    name = "hub upstream"
    state = _text(upstream.get("state"), 40)
    base = _text(upstream.get("base_url")) or "PassQR"
    status, meaning, fix = _STATES.get(
        state, (Status.WARN, f"in a state this doctor does not know ({state or 'none'})", _LOG)
    )
    detail = f"{base}: {meaning}"
    error = _text(upstream.get("last_error"))
    if error and status is not Status.OK:
        detail += f" ({error})"
    paused = _text(upstream.get("paused_until"), 40)
    if paused:
        detail += f"; paused until {paused}"
    sent = _count(upstream.get("sent"))
    if sent is not None:
        detail += f"; {_plural(sent, 'admission')} sent"
    budget = _budget(_table(upstream.get("budget")))
    if budget:
        detail += f"; budget used: {budget}"
    return Check(name=name, status=status, detail=detail, fix=fix)


def _budget(budget: Mapping[str, Any]) -> str:
    parts = []
    for kind in ("validate", "read"):
        figures = _table(budget.get(kind))
        used, limit = _count(figures.get("used")), _count(figures.get("limit"))
        if used is not None and limit is not None:
            parts.append(f"{kind} {used}/{limit}")
    return ", ".join(parts)


def _queue(upstream: Mapping[str, Any]) -> Check:
    name = "hub queue"
    queue = _count(upstream.get("queue"))
    if queue is None:
        return Check(name=name, status=Status.WARN, detail="unknown (not in the hub's status)")
    detail = f"{_plural(queue, 'admission')} waiting to be sent to PassQR"
    if queue > QUEUE_WARN:
        return Check(
            name=name,
            status=Status.WARN,
            detail=detail,
            fix="the hub sends them as PassQR answers and its budget allows; if the queue does "
            "not shrink, see hub upstream (" + _LOG + ")",
        )
    return Check(name=name, status=Status.OK, detail=detail)


def _conflicts(where: str, upstream: Mapping[str, Any], listed: Any) -> Check:
    name = "hub conflicts"
    count = _count(upstream.get("conflicts"))
    if count is None and isinstance(listed, list):
        count = len(listed)
    if not count:
        return Check(name=name, status=Status.OK, detail="none" if count == 0 else "unknown")
    return Check(
        name=name,
        status=Status.WARN,
        detail=f"{_plural(count, 'conflict')} to resolve on the hub's dashboard {where}/hub",
        fix="each is a pass the hub admitted that PassQR refused afterwards (revoked, used up "
        "elsewhere): see who came in, at which gate, on the dashboard",
    )


def _mirror(hub: Mapping[str, Any], upstream: Mapping[str, Any]) -> Check:
    name = "hub mirror"
    passes = _count(upstream.get("passes_mirrored"))
    held = "unknown passes" if passes is None else _plural(passes, "pass", "passes") + " mirrored"
    last, now = _moment(upstream.get("last_sync")), _moment(hub.get("now"))
    if last is None:
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"{held}; never synced",
            fix="the hub syncs when it starts, then every sync_interval_s: see hub upstream "
            "(" + _LOG + ")",
        )
    age_s = max((now - last).total_seconds(), 0.0) if now is not None else 0.0
    detail = f"{held}, last synced {_age(age_s)} ago ({_text(upstream.get('last_sync'), 40)})"
    if age_s > SYNC_STALE_S:
        return Check(
            name=name,
            status=Status.WARN,
            detail=detail,
            fix="the mirror is stale: passes made or revoked since at PassQR are not known here "
            "yet; see hub upstream (" + _LOG + ")",
        )
    if not passes:
        return Check(
            name=name,
            status=Status.WARN,
            detail=detail,
            fix="the hub holds no passes: every scan is asked of PassQR; are there passes in "
            "the venue's PassQR account, and is the hub's key that account's?",
        )
    return Check(name=name, status=Status.OK, detail=detail)


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _gates(listed: Any) -> Check:
    name = "hub gates"
    keys = [_table(g) for g in listed] if isinstance(listed, list) else []
    gates = sum(k.get("role") == "gate" for k in keys)
    others = len(keys) - gates
    staff = f" (and {_plural(others, 'staff or admin key')})" if others else ""
    online = [_text(k.get("name"), 64) for k in keys if k.get("state") == "online"]
    detail = f"{_plural(gates, 'gate')} known{staff}; " + _online(online)
    return Check(name=name, status=Status.OK, detail=detail)


def _online(names: Sequence[str]) -> str:
    if not names:
        return "none online"
    shown = ", ".join(n or "?" for n in names[:GATES_SHOWN])
    more = f" and {len(names) - GATES_SHOWN} more" if len(names) > GATES_SHOWN else ""
    return f"online: {shown}{more}"
