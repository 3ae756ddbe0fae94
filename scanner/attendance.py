"""How many of the venue's passes have been checked in: "312 of 500", per pass type.

What stewards at any gate are asked first. A pass counts as checked in once PassQR
has counted a use of it (``uses_count > 0``), whichever gate admitted it. The
offline copy of the passes answers when the kiosk keeps one (instantly, as of its
last sync); otherwise PassQR is paged through within the read budget.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from scanner.budget import Bucket, Budget, Priority
from scanner.journal import Journal
from scanner.models import Page, PassInfo, TemplateInfo

_log = logging.getLogger(__name__)

PAGE_LIMIT = 100
MAX_WAIT_S = 30.0
"""How long one page may wait for the read budget before the count gives up."""


class AttendanceClient(Protocol):
    async def list_passes(
        self,
        *,
        page: int = 1,
        limit: int = 20,
        template_id: str | None = None,
        status: str | None = None,
    ) -> Page[PassInfo]: ...

    async def list_templates(self, *, page: int = 1, limit: int = 20) -> Page[TemplateInfo]: ...


@dataclass(frozen=True, kw_only=True)
class TemplateCount:
    template_id: str | None
    checked_in: int
    passes: int


@dataclass(frozen=True, kw_only=True)
class Attendance:
    """The venue's counts and where they come from.

    Attributes:
        templates: one count per pass template, most passes first.
        source: ``offline copy`` (as of ``synced``) or ``PassQR``.
    """

    templates: tuple[TemplateCount, ...]
    source: Literal["offline copy", "PassQR"]
    synced: datetime | None = None

    @property
    def checked_in(self) -> int:
        return sum(t.checked_in for t in self.templates)

    @property
    def passes(self) -> int:
        return sum(t.passes for t in self.templates)


def _sorted(counts: Iterable[TemplateCount]) -> tuple[TemplateCount, ...]:
    return tuple(sorted(counts, key=lambda t: (-t.passes, t.template_id or "")))


def count_passes(passes: Iterable[PassInfo]) -> tuple[TemplateCount, ...]:
    """Checked-in and total passes per template."""
    totals: dict[str | None, list[int]] = {}
    for info in passes:
        entry = totals.setdefault(info.template_id, [0, 0])
        entry[0] += 1 if (info.uses_count or 0) > 0 else 0
        entry[1] += 1
    return _sorted(
        TemplateCount(template_id=t, checked_in=used, passes=n) for t, (used, n) in totals.items()
    )


async def attendance(
    journal: Journal,
    client: AttendanceClient,
    budget: Budget,
    *,
    synced: datetime | None = None,
) -> Attendance:
    """The counts from the offline copy when it has passes, else from PassQR.

    Raises:
        APIError: PassQR could not be asked (and there is no offline copy).
        BudgetExhausted: the read budget stayed dry for :data:`MAX_WAIT_S`.
    """
    cached = await journal.cache_attendance()
    if cached:
        counts = (TemplateCount(template_id=t, checked_in=u, passes=n) for t, u, n in cached)
        return Attendance(templates=_sorted(counts), source="offline copy", synced=synced)
    passes: list[PassInfo] = []
    page = 1
    while True:
        await budget.acquire(Bucket.READ, Priority.LIVE, max_wait_s=MAX_WAIT_S)
        result = await client.list_passes(page=page, limit=PAGE_LIMIT)
        passes.extend(result.items)
        if result.is_last:
            break
        page += 1
    return Attendance(templates=count_passes(passes), source="PassQR")


async def template_names(client: AttendanceClient, budget: Budget) -> Mapping[str, str]:
    """Template id -> name (the first page of templates; a venue has a handful).

    Raises:
        APIError: PassQR could not be asked.
    """
    await budget.acquire(Bucket.READ, Priority.LIVE, max_wait_s=MAX_WAIT_S)
    result = await client.list_templates(limit=PAGE_LIMIT)
    return {t.id: t.name for t in result.items if t.id and t.name}
