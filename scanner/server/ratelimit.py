"""Per-client-IP rate limits over a sliding window, as PassQR documents them.

The limiter runs before authentication and routing: it is what protects the
server (and the key hashes) from a flood or a key-guessing client, so every
request counts, whatever its key, path or outcome. Requests it refuses do not
count. Three buckets, so that validations and other writes never starve each
other: reads (GET, HEAD, OPTIONS), `POST /validate`, and every other write.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from scanner.server.errors import ERROR_TYPES
from scanner.server.store import dumps

VALIDATE_PATH = "/api/v1/validate"
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True, kw_only=True)
class RateLimits:
    """Requests allowed per client IP within `window` seconds, per bucket."""

    read: int = 120
    write: int = 60
    validate: int = 60
    window: float = 60.0


class SlidingWindowLimiter:
    """Counts hits per client in the last `window` seconds (a log of timestamps).

    Memory is bounded by `limit` timestamps per active client; idle clients
    are swept out once per window.
    """

    def __init__(
        self, limit: int, window: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._next_sweep = clock() + window

    def hit(self, client: str) -> int | None:
        """Count a request; None when allowed, else whole seconds until a slot frees (>= 1)."""
        now = self._clock()
        if now >= self._next_sweep:
            self._sweep(now)
        hits = self._hits.get(client)
        if hits is None:
            hits = self._hits[client] = deque()
        horizon = now - self.window
        while hits and hits[0] <= horizon:
            hits.popleft()
        if len(hits) >= self.limit:
            return max(1, math.ceil(hits[0] + self.window - now))
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        horizon = now - self.window
        for client in [c for c, hits in self._hits.items() if not hits or hits[-1] <= horizon]:
            del self._hits[client]
        self._next_sweep = now + self.window


class RateLimitMiddleware:
    """ASGI middleware answering 429 with `Retry-After` once a bucket is full."""

    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self._read = SlidingWindowLimiter(limits.read, limits.window)
        self._write = SlidingWindowLimiter(limits.write, limits.window)
        self._validate = SlidingWindowLimiter(limits.validate, limits.window)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        if method in _READ_METHODS:
            limiter = self._read
        elif method == "POST" and scope["path"] == VALIDATE_PATH:
            limiter = self._validate
        else:
            limiter = self._write
        client = scope.get("client")
        retry_after = limiter.hit(client[0] if client else "unknown")
        if retry_after is None:
            await self.app(scope, receive, send)
            return
        body = dumps(
            {
                "error": ERROR_TYPES[429],
                "message": f"Rate limit of {limiter.limit} requests per {limiter.window:g} s "
                f"exceeded; retry in {retry_after} s",
            }
        )
        await send(
            {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode("ascii")),
                    (b"retry-after", str(retry_after).encode("ascii")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
