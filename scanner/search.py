"""Finding a pass by its holder's name or e-mail, for staff at the gate.

PassQR has no search endpoint. When the kiosk keeps an offline copy of the passes
(the journal's ``pass_cache`` table, ``[offline] policy = "allow-known"``) the
search runs there, instantly and without the network; otherwise it pages through
``GET /passes`` within the read budget and filters locally. The result says which
source answered, because the offline copy can be minutes old.

Matching ignores case and accents (``zoe`` finds ``Zoë``), and every word of the
query must appear in the name, the e-mail or the code; a scanned code or PassQR
URL finds its pass exactly.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from scanner.api_protocol import PassQRApi
from scanner.budget import Bucket, Budget, Priority
from scanner.journal import Journal
from scanner.models import Page, PassInfo
from scanner.remote import PAGE_LIMIT, Remote, as_code

Source = Literal["offline copy", "PassQR API"]

#: Most matches a search returns (the rest are counted, not listed).
MAX_RESULTS = 200


def fold(text: str) -> str:
    """Lower case without accents: what a search compares."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclass(frozen=True)
class Query:
    """A parsed search: the words to find, or the one code to find."""

    words: tuple[str, ...]
    code: str | None

    @classmethod
    def parse(cls, text: str) -> Query:
        code = as_code(text)
        return cls(words=() if code else tuple(fold(text).split()), code=code)

    @property
    def empty(self) -> bool:
        return not self.words and self.code is None

    def matches(self, info: PassInfo) -> bool:
        if self.code is not None:
            return (info.code or "").upper() == self.code
        haystack = fold(" ".join(x or "" for x in (info.holder_name, info.holder_email, info.code)))
        return all(word in haystack for word in self.words)


@dataclass(frozen=True, kw_only=True)
class SearchResult:
    """What a search found, and where.

    Attributes:
        passes: matches, holder name order, at most :data:`MAX_RESULTS`.
        matched: how many matched in all.
        source: ``offline copy`` or ``PassQR API``.
        examined: passes looked at.
        synced: when the offline copy was last refreshed (offline copy only).
    """

    passes: list[PassInfo]
    matched: int
    source: Source
    examined: int
    synced: datetime | None = None


def _sort_key(info: PassInfo) -> tuple[str, str, str]:
    return (fold(info.holder_name or "~"), fold(info.holder_email or ""), info.code or "")


def _result(found: list[PassInfo], **kw: Any) -> SearchResult:
    found.sort(key=_sort_key)
    return SearchResult(passes=found[:MAX_RESULTS], matched=len(found), **kw)


class PassFinder:
    """Searches the offline copy when it has passes, else PassQR.

    Args:
        journal: the kiosk's (open) journal.
        client: the kiosk's PassQR client.
        budget: the kiosk's budget; API pages come from its ``READ`` bucket.
        last_sync: when the offline copy was refreshed (the kiosk's catalog knows).
    """

    def __init__(
        self,
        journal: Journal,
        client: PassQRApi,
        budget: Budget,
        *,
        last_sync: Callable[[], datetime | None] = lambda: None,
    ) -> None:
        self.journal = journal
        self.remote = Remote(client, budget, priority=Priority.LIVE, max_wait_s=30.0)
        self.budget = budget
        self.last_sync = last_sync

    async def search(
        self,
        text: str,
        *,
        progress: Callable[[int, int], None] | None = None,
        prefer_api: bool = False,
    ) -> SearchResult:
        """Find the passes matching ``text``.

        Args:
            progress: told (passes examined, total) after each page from the API.
            prefer_api: ask PassQR even when there is an offline copy.

        Raises:
            APIError: PassQR could not be asked (no offline copy to fall back on).
        """
        query = Query.parse(text)
        cached = [] if prefer_api else await self.cached()
        if cached:
            found = [p for p in cached if query.matches(p)] if not query.empty else cached
            return _result(
                found, source="offline copy", examined=len(cached), synced=self.last_sync()
            )
        found = []
        examined = 0
        client = self.remote.client

        async def fetch(page: int, limit: int) -> Page[PassInfo]:
            return await client.list_passes(page=page, limit=limit)

        async with contextlib.aclosing(self.remote.pages(fetch, limit=PAGE_LIMIT)) as pages:
            async for result in pages:
                examined += len(result.items)
                found += [p for p in result.items if query.empty or query.matches(p)]
                if progress is not None:
                    progress(examined, result.total)
                if query.code is not None and found:
                    break
        return _result(found, source="PassQR API", examined=examined)

    async def cached(self) -> list[PassInfo]:
        """Every pass in the offline copy (empty when the kiosk keeps none)."""
        return [PassInfo.parse(row) for row in await self.journal.cached_passes()]

    async def fresh(self, info: PassInfo) -> PassInfo:
        """The pass as PassQR has it now (``GET /passes/{id}``).

        Raises:
            APIError: PassQR could not be asked.
        """
        if not info.id:
            return info
        client = self.remote.client
        pass_id = info.id
        return await self.remote.call(Bucket.READ, lambda: client.get_pass(pass_id), retries=0)
