"""Calls to PassQR that stay within the request budget: the management commands' and the
staff screen's way to the API (the gate's validations take theirs in :mod:`scanner.pipeline`).

Every management call takes a slot from a :class:`~scanner.budget.Budget` first
(GETs from ``read_per_min``, writes from ``write_per_min``), so a long listing or a
bulk import paces itself under PassQR's per-IP limits instead of collecting 429s.
A 429 that gets through anyway closes the bucket for its ``Retry-After`` and the
call is tried again; so is a call whose answer was lost, a bounded number of times.
Every call made through here is safe to repeat: GET, PATCH and DELETE are, and a
POST carries an ``Idempotency-Key`` that is the same on every try.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import TypeVar

from scanner.api_protocol import PassQRApi
from scanner.budget import Bucket, Budget, Priority
from scanner.errors import RateLimitedError, ScannerError, ServerError, TransportError
from scanner.explain import describe
from scanner.models import Page, PassInfo
from scanner.payload import normalise

T = TypeVar("T")

_log = logging.getLogger(__name__)

#: Largest page the API serves.
PAGE_LIMIT = 100


class Remote:
    """A client and the budget one run spends.

    Args:
        client: the PassQR client.
        budget: the per-minute budget (its own for a command; the kiosk's in the staff screen).
        priority: ``LIVE`` for a person waiting; ``BACKGROUND`` leaves slots for live scans.
        max_wait_s: the longest ``Retry-After`` a call waits out rather than fail.
        transport_retries: tries again after a lost answer or a 5xx, with backoff.
        on_wait: told when a 429 makes a call wait (retries after lost answers are only logged).
    """

    def __init__(
        self,
        client: PassQRApi,
        budget: Budget,
        *,
        priority: Priority = Priority.LIVE,
        max_wait_s: float = 120.0,
        transport_retries: int = 2,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.budget = budget
        self.priority = priority
        self.max_wait_s = max_wait_s
        self.transport_retries = transport_retries
        self.on_wait = on_wait

    async def call(
        self, bucket: Bucket, fn: Callable[[], Awaitable[T]], *, retries: int | None = None
    ) -> T:
        """Take a slot, call ``fn``; wait out 429s and retry lost answers.

        Raises:
            APIError: what the last try raised (a 429 whose wait is too long, a 4xx...).
        """
        left = self.transport_retries if retries is None else retries
        limited = 0
        backoff = 0.5
        while True:
            await self.budget.acquire(bucket, self.priority)
            try:
                return await fn()
            except RateLimitedError as err:
                self.budget.retry_after(bucket, err.retry_after)
                limited += 1
                if err.retry_after > self.max_wait_s or limited > 10:
                    raise
                self._waiting(f"rate limited by the server, waiting {err.retry_after:.0f} s")
            except (TransportError, ServerError) as err:
                if left <= 0:
                    raise
                left -= 1
                _log.info("%s; trying again in %.1f s", describe(err), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 8.0)

    def _waiting(self, text: str) -> None:
        _log.info("%s", text)
        if self.on_wait is not None:
            self.on_wait(text)

    async def pages(
        self,
        fetch: Callable[[int, int], Awaitable[Page[T]]],
        *,
        start: int = 1,
        limit: int = PAGE_LIMIT,
    ) -> AsyncGenerator[Page[T], None]:
        """Every page from ``start`` on, each within the read budget.

        Args:
            fetch: ``(page, limit) -> Page`` (a bound list method).
        """
        page = start
        while True:
            result = await self.call(Bucket.READ, functools.partial(fetch, page, limit))
            yield result
            if result.is_last:
                return
            page += 1

    async def find_codes(
        self,
        codes: list[str],
        *,
        template_id: str | None = None,
        on_page: Callable[[int, int], None] | None = None,
    ) -> dict[str, PassInfo]:
        """The passes with these codes, from one walk through ``GET /passes``.

        There is no GET by code: the listing is paged until every code has been seen
        (or the list ends). Codes are compared upper-cased.

        Args:
            on_page: told (passes seen, total) after each page.
        """
        wanted = {c.upper() for c in codes}
        found: dict[str, PassInfo] = {}
        seen = 0

        async def fetch(page: int, limit: int) -> Page[PassInfo]:
            return await self.client.list_passes(page=page, limit=limit, template_id=template_id)

        async with contextlib.aclosing(self.pages(fetch)) as pages:
            async for result in pages:
                seen += len(result.items)
                for info in result.items:
                    code = (info.code or "").upper()
                    if code in wanted and code not in found:
                        found[code] = info
                if on_page is not None:
                    on_page(seen, result.total)
                if len(found) == len(wanted):
                    break
        return found


def as_code(text: str) -> str | None:
    """The pass code in ``text`` (a bare code, any case, or a PassQR URL), else None."""
    try:
        return normalise(text)
    except ScannerError:
        return None
