"""The only thing that talks to PassQR: one HTTP client inside one durable budget.

PassQR counts requests per IP in a sliding window (validations, reads and other
writes apart). Every request the hub sends is first written to `hub_budget`
(committed before it leaves), so a restarted hub knows what the last window
already spent. The hub keeps a margin below each limit, since the upstream counts
arrival times, and a window a little longer than the upstream's. Live work (a gate
waiting on a code the mirror does not know, a steward's write) may use the whole
budget; background work (forwarding admissions, the mirror's sync) leaves a reserve
for it. A 429's `Retry-After` pauses that kind of request for as long as it says.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from scanner.hub import tables
from scanner.hub.config import UpstreamConfig

logger = logging.getLogger(__name__)

KINDS = ("validate", "read", "write")
#: Seconds added to the upstream's window: our send time is before its arrival time.
WINDOW_SLACK_S = 2.0
#: Bytes of an upstream answer read at most (a page of 100 passes is far less).
MAX_ANSWER_BYTES = 4 << 20
_DEFAULT_RETRY_AFTER_S = 5.0

#: Runs a function of the writer's connection on the database's writer thread.
RunWrite = Callable[[Callable[..., Any]], Awaitable[Any]]


def margin(limit: int) -> int:
    """Requests per window never sent, for the upstream's own view of the clock."""
    return max(1, math.ceil(limit * 0.05))


def reserve(limit: int) -> int:
    """Requests per window background work leaves to live work."""
    return max(1, math.ceil(limit * 0.10))


class Budget:
    """The sliding-window budget of each kind of upstream request, kept durably."""

    def __init__(
        self,
        limits: Mapping[str, int],
        window_s: float,
        record: Callable[[str, float, float], Awaitable[None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limits = dict(limits)
        self.window_s = window_s + WINDOW_SLACK_S
        self._record = record
        self._clock = clock
        self._sent: dict[str, list[float]] = {kind: [] for kind in KINDS}
        self.paused_until: dict[str, float] = {}

    def load(self, sent: Mapping[str, list[float]]) -> None:
        """What the last window spent, as `tables.spent` read it at start."""
        for kind, times in sent.items():
            if kind in self._sent:
                self._sent[kind] = sorted(times)

    def used(self, kind: str) -> int:
        self._forget(kind, self._clock())
        return len(self._sent[kind])

    def usable(self, kind: str, *, live: bool) -> int:
        limit = self.limits[kind]
        return max(1, limit - margin(limit) - (0 if live else reserve(limit)))

    def _forget(self, kind: str, now: float) -> None:
        times = self._sent[kind]
        cut = 0
        while cut < len(times) and times[cut] <= now - self.window_s:
            cut += 1
        del times[:cut]

    def wait_s(self, kind: str, *, live: bool) -> float:
        """Seconds until a request of this kind may leave (0: now)."""
        now = self._clock()
        self._forget(kind, now)
        paused = max(0.0, self.paused_until.get(kind, 0.0) - now)
        times = self._sent[kind]
        room = self.usable(kind, live=live)
        if len(times) < room:
            return paused
        # The oldest sends leave the window first; the one that frees a slot for us:
        freeing = times[len(times) - room]
        return max(paused, freeing + self.window_s - now)

    async def acquire(self, kind: str, *, live: bool, max_wait_s: float) -> bool:
        """Take one request of `kind` from the budget, waiting up to `max_wait_s` for it.

        The spend is committed before this returns True. False: none within the wait.
        """
        deadline = time.monotonic() + max_wait_s
        while True:
            wait = self.wait_s(kind, live=live)
            if wait <= 0:
                now = self._clock()
                self._sent[kind].append(now)
                await self._record(kind, now, now - self.window_s)
                return True
            if time.monotonic() + wait > deadline:
                return False
            await asyncio.sleep(min(wait, 1.0))

    def pause(self, kind: str, seconds: float) -> None:
        self.paused_until[kind] = max(self.paused_until.get(kind, 0.0), self._clock() + seconds)

    def snapshot(self) -> dict[str, dict[str, int]]:
        """Used and limit of each kind in the current window (for the status page)."""
        return {kind: {"used": self.used(kind), "limit": self.limits[kind]} for kind in KINDS}


class UpstreamError(Exception):
    """No answer to use: ``reason`` is unreachable, rate_limited, unauthorized, budget or
    bad_answer; ``retry_after_s`` when the upstream or the budget says when to try again."""

    def __init__(self, reason: str, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class Reply:
    """An upstream answer with a JSON body (any status but 401/403/429/5xx)."""

    status: int
    body: bytes
    payload: Any
    headers: Mapping[str, str]


def kind_of(method: str, path: str) -> str:
    if method == "GET":
        return "read"
    return "validate" if path == "/validate" else "write"


def _retry_after(value: str | None, window_s: float) -> float:
    """A 429's wait: at least a second, at most the upstream's window (its limits are per
    window, so a longer wait is a broken header, not a reason to stop for an hour)."""
    try:
        seconds = float(value) if value is not None else _DEFAULT_RETRY_AFTER_S
    except ValueError:
        seconds = _DEFAULT_RETRY_AFTER_S
    if not math.isfinite(seconds) or seconds < 0:
        seconds = _DEFAULT_RETRY_AFTER_S
    return max(1.0, min(seconds, window_s))


class Upstream:
    """HTTP to the upstream PassQR with the hub's key, inside the budget."""

    def __init__(
        self,
        config: UpstreamConfig,
        key: str,
        budget: Budget,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = config.base_url.rstrip("/")
        self.budget = budget
        self.timeout_s = config.timeout_s
        self._window_s = config.window_s
        self.state = "starting"
        self.last_error: str | None = None
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {key}", "Accept": "application/json"},
            timeout=httpx.Timeout(config.timeout_s, connect=min(5.0, config.timeout_s)),
            verify=str(config.ca_file) if config.ca_file else True,
            follow_redirects=False,
            transport=transport,
            trust_env=False,
        )

    async def close(self) -> None:
        await self._http.aclose()

    def fault(self, state: str, message: str) -> None:
        """Note why the upstream cannot be used now (logged once per change)."""
        if self.state != state or self.last_error != message:
            logger.warning("Upstream %s: %s", state.replace("_", " "), message)
        self.state, self.last_error = state, message

    async def send(
        self,
        method: str,
        path: str,
        *,
        live: bool,
        max_wait_s: float = math.inf,
        body: bytes | None = None,
        query: Mapping[str, str] | None = None,
        idem_key: str | None = None,
        deadline_s: float | None = None,
    ) -> Reply:
        """One request to `base_url + path`, once the budget allows it, answered in full
        within `deadline_s` (`timeout_s` by default) however slowly its bytes come.

        Raises:
            UpstreamError: no budget within `max_wait_s`, the upstream unreachable,
                refusing the hub's key, rate limiting (the kind is paused), failing
                (5xx) or answering something that is not JSON.
        """
        kind = kind_of(method, path)
        if not await self.budget.acquire(kind, live=live, max_wait_s=max_wait_s):
            wait = self.budget.wait_s(kind, live=live)
            raise UpstreamError("budget", f"the venue's {kind} budget is spent", wait)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if idem_key is not None:
            headers["Idempotency-Key"] = idem_key
        deadline = self.timeout_s if deadline_s is None else min(deadline_s, self.timeout_s)
        request = self._http.build_request(
            method, path, content=body, params=query, headers=headers
        )
        try:
            async with asyncio.timeout(deadline):
                response = await self._http.send(request, stream=True)
                try:
                    raw = await _bounded(response)
                finally:
                    await response.aclose()
        except TimeoutError:
            message = f"no complete answer within {deadline:g} s"
            self.fault("unreachable", message)
            raise UpstreamError("unreachable", message) from None
        except (httpx.HTTPError, OSError) as err:
            message = f"{type(err).__name__}: {err}"[:300]
            self.fault("unreachable", message)
            raise UpstreamError("unreachable", message) from None
        return self._reply(kind, response, raw)

    def _reply(self, kind: str, response: httpx.Response, raw: bytes) -> Reply:
        status = response.status_code
        if status == 429:
            seconds = _retry_after(response.headers.get("retry-after"), self._window_s)
            self.budget.pause(kind, seconds)
            self.fault("rate_limited", f"429 on {kind}; waiting {seconds:g} s")
            raise UpstreamError("rate_limited", "the upstream is rate limiting", seconds)
        if status in (401, 403):
            self.fault("unauthorized", f"{status}: the upstream refuses the hub's PassQR key")
            raise UpstreamError("unauthorized", "the upstream refuses the hub's PassQR key")
        if status >= 500:
            self.fault("unreachable", f"the upstream answered {status}")
            raise UpstreamError("unreachable", f"the upstream answered {status}")
        try:
            payload = json.loads(raw)
        except (ValueError, RecursionError):
            self.fault("bad_answer", f"a {status} answer that is not JSON")
            raise UpstreamError("bad_answer", "the upstream answered something not JSON") from None
        self.state, self.last_error = "ok", None
        return Reply(status, raw, payload, response.headers)


async def _bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise httpx.DecodingError(f"answer larger than {MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def budget_recorder(run_write: RunWrite) -> Callable[[str, float, float], Awaitable[None]]:
    """`Budget`'s durable record: one committed row per request (on the writer's thread)."""

    async def record(kind: str, at: float, forget_before: float) -> None:
        def write(conn: Any) -> None:
            with conn:
                tables.spend(conn, kind, at, forget_before)

        await run_write(write)

    return record
