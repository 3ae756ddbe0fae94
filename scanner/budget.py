"""A client-side request budget that keeps the kiosk under PassQR's rate limits.

PassQR allows about one validation a second per IP (spec: 60/min for
``POST /validate``, 60/min other writes, 120/min reads, sliding minute). The
kiosk spends that budget itself rather than collecting 429s: live scans go
first, replays of offline admissions and catalogue syncs only take a slot
while enough of the minute is left for the next person at the gate, and a
``Retry-After`` from the server closes the bucket until it has passed.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from scanner.config import ApiConfig


class Bucket(enum.StrEnum):
    VALIDATE = "validate"
    READ = "read"
    WRITE = "write"


class Priority(enum.IntEnum):
    LIVE = 0
    """A person is waiting at the gate."""
    BACKGROUND = 1
    """Replays and syncs: they keep ``reserve`` slots free for live scans."""


@dataclass(frozen=True, kw_only=True)
class BudgetLimits:
    validate_per_min: int = 60
    read_per_min: int = 120
    write_per_min: int = 60
    window_s: float = 60.0
    reserve: int = 5
    """Slots per minute that background work leaves for live scans."""


class BudgetExhausted(Exception):
    """No slot within the wait allowed; ``wait_s`` says how long one would take."""

    def __init__(self, wait_s: float) -> None:
        super().__init__(f"request budget exhausted for {wait_s:.1f} s")
        self.wait_s = wait_s


class _Window:
    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self.sent: deque[float] = deque()
        self.closed_until = 0.0
        self.live_waiting = 0

    def _trim(self, now: float) -> None:
        while self.sent and self.sent[0] <= now - self.window_s:
            self.sent.popleft()

    def wait_for(self, now: float, priority: Priority, reserve: int) -> float:
        """Seconds until this priority may send (0: now)."""
        self._trim(now)
        wait = max(self.closed_until - now, 0.0)
        cap = self.limit if priority is Priority.LIVE else max(self.limit - reserve, 1)
        if priority is Priority.BACKGROUND and self.live_waiting:
            wait = max(wait, 0.05)
        if len(self.sent) >= cap:
            # the slot frees when the oldest of the last `cap` requests leaves the window
            wait = max(wait, self.sent[len(self.sent) - cap] + self.window_s - now)
        return wait


class Budget:
    """Per-bucket sliding windows shared by everything one kiosk sends.

    Args:
        limits: the per-minute budget (defaults: the spec's limits).
        clock: monotonic seconds; tests pass their own.
        sleep: how to wait; tests pass their own.
    """

    def __init__(
        self, limits: BudgetLimits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limits = limits or BudgetLimits()
        self._clock = clock
        self._windows = {
            Bucket.VALIDATE: _Window(self.limits.validate_per_min, self.limits.window_s),
            Bucket.READ: _Window(self.limits.read_per_min, self.limits.window_s),
            Bucket.WRITE: _Window(self.limits.write_per_min, self.limits.window_s),
        }

    @classmethod
    def from_config(cls, api: ApiConfig) -> Budget:
        """The budget ``[api]`` sets (``validate_per_min``, ``read_per_min``, ``write_per_min``)."""
        return cls(
            BudgetLimits(
                validate_per_min=api.validate_per_min,
                read_per_min=api.read_per_min,
                write_per_min=api.write_per_min,
            )
        )

    def wait_needed(self, bucket: Bucket, priority: Priority = Priority.LIVE) -> float:
        return self._windows[bucket].wait_for(self._clock(), priority, self.limits.reserve)

    @property
    def throttled(self) -> bool:
        """True while a Retry-After holds any bucket closed, or live scans are waiting."""
        now = self._clock()
        return any(w.closed_until > now or w.live_waiting for w in self._windows.values())

    def remaining(self, bucket: Bucket) -> int:
        window = self._windows[bucket]
        window._trim(self._clock())
        return max(window.limit - len(window.sent), 0)

    async def acquire(
        self, bucket: Bucket, priority: Priority = Priority.LIVE, *, max_wait_s: float | None = None
    ) -> None:
        """Take a slot, waiting at most ``max_wait_s`` (None: as long as it takes).

        Raises:
            BudgetExhausted: no slot within ``max_wait_s``.
        """
        window = self._windows[bucket]
        live = priority is Priority.LIVE
        if live:
            window.live_waiting += 1
        try:
            while True:
                wait = window.wait_for(self._clock(), priority, self.limits.reserve)
                if wait <= 0:
                    window.sent.append(self._clock())
                    return
                if max_wait_s is not None and wait > max_wait_s:
                    raise BudgetExhausted(wait)
                await asyncio.sleep(min(wait, 1.0))
                if max_wait_s is not None:
                    max_wait_s -= min(wait, 1.0)
        finally:
            if live:
                window.live_waiting -= 1

    def retry_after(self, bucket: Bucket, seconds: float) -> None:
        """The server said 429: nothing goes into this bucket for ``seconds``."""
        window = self._windows[bucket]
        window.closed_until = max(window.closed_until, self._clock() + seconds)
