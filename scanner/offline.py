"""Deciding without the server, and telling the server afterwards.

``allow-known`` keeps a local copy of the passes (paged through ``GET /passes``
inside the read budget, refreshed every ``sync_interval_s``) and decides by the
server's rules: revoked, expired, uses against ``max_uses``. A pass admitted
offline is not admitted again offline until the server has confirmed it.
``allow-all`` admits everything, loudly marked. Either way every offline
admission is queued in the journal and replayed, with the scan's original
``Idempotency-Key``, as soon as the server answers again; a replay the server
disagrees with (used, revoked...) is recorded and shown to staff.

The same loop settles scans a crash interrupted after their validation may have
been sent (``replay_state = 'reconcile'``, see :mod:`scanner.journal`): it asks
again with the scan's own key when the server is known to honour keys, and
otherwise leaves them ``unverified`` for staff, never a flat "not admitted".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scanner.api_protocol import PassQRApi
from scanner.budget import Bucket, Budget, Priority
from scanner.errors import (
    APIError,
    AuthenticationError,
    PlanError,
    RateLimitedError,
    RequestRejectedError,
)
from scanner.journal import Journal
from scanner.models import Reason, ValidationOutcome

_log = logging.getLogger(__name__)

PAGE_LIMIT = 100


@dataclass(frozen=True, kw_only=True)
class OfflineVerdict:
    accepted: bool
    reason: Reason
    message: str
    holder: str | None = None
    uses_left: int | None = None


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def judge_known(cached: dict[str, Any] | None, unconfirmed: int, now: datetime) -> OfflineVerdict:
    """The server's rules applied to the offline copy of one pass.

    Args:
        cached: the pass as last synced, or None when the copy does not know it.
        unconfirmed: offline admissions of this pass the server has not confirmed.
        now: the moment of the scan.
    """
    if cached is None:
        return OfflineVerdict(accepted=False, reason=Reason.NOT_FOUND, message="Unknown pass")
    holder = cached.get("holder_name")
    status = cached.get("status")
    if status == "revoked":
        return OfflineVerdict(
            accepted=False, reason=Reason.REVOKED, message="Pass revoked", holder=holder
        )
    expires = _parse_time(cached.get("expires_at"))
    if status == "expired" or (expires is not None and expires <= now):
        return OfflineVerdict(
            accepted=False, reason=Reason.EXPIRED, message="Expired", holder=holder
        )
    uses = int(cached.get("uses_count") or 0) + unconfirmed
    max_uses = cached.get("max_uses")
    if status == "used" or (max_uses is not None and (uses >= int(max_uses) or unconfirmed)):
        # Offline, a pass with a use limit gets one admission until the server has
        # confirmed it; an unlimited one has nothing to overspend.
        return OfflineVerdict(
            accepted=False, reason=Reason.USED, message="Already used", holder=holder
        )
    left = None if max_uses is None else max(int(max_uses) - uses - 1, 0)
    return OfflineVerdict(
        accepted=True,
        reason=Reason.VALID,
        message="Welcome (offline)",
        holder=holder,
        uses_left=left,
    )


class Catalog:
    """The offline copy of the passes, kept in the journal's database."""

    def __init__(
        self, client: PassQRApi, journal: Journal, budget: Budget, interval_s: float
    ) -> None:
        self.client = client
        self.journal = journal
        self.budget = budget
        self.interval_s = interval_s
        self.last_sync: datetime | None = None
        self.size = 0
        self.last_error = ""

    async def load(self) -> None:
        self.last_sync = await self.journal.last_sync()
        self.size = await self.journal.cache_size()

    async def sync(self) -> int:
        """Page through every pass within the read budget; replace the copy when complete.

        Raises:
            APIError: the copy is left as it was.
        """
        passes: list[dict[str, Any]] = []
        page = 1
        while True:
            await self.budget.acquire(Bucket.READ, Priority.BACKGROUND)
            result = await self.client.list_passes(page=page, limit=PAGE_LIMIT)
            passes.extend(p.to_json() for p in result.items)
            if result.is_last:
                break
            page += 1
        now = datetime.now(UTC)
        await self.journal.replace_cache(passes, now)
        self.last_sync, self.size, self.last_error = now, len(passes), ""
        _log.info("offline copy: %d passes synced", len(passes))
        return len(passes)

    async def run(self) -> None:
        while True:
            try:
                await self.sync()
            except APIError as err:
                self.last_error = err.message
                _log.warning("offline copy not refreshed: %s", err.message)
                if isinstance(err, RateLimitedError):
                    self.budget.retry_after(Bucket.READ, err.retry_after)
                await asyncio.sleep(min(self.interval_s, 30.0))
                continue
            await asyncio.sleep(self.interval_s)


@dataclass
class ReplayStatus:
    pending: int = 0
    done: int = 0
    conflicts: int = 0
    last_conflict: str = ""
    to_check: int = 0
    """Interrupted scans not settled yet (``reconcile``)."""
    counted: int = 0
    """Interrupted scans the server counted: the guest was not let in."""
    unverified: int = 0
    """Interrupted scans a server without idempotency cannot settle."""

    @property
    def for_staff(self) -> int:
        """Scans staff must look at: conflicts and interrupted scans that may have used a pass."""
        return self.conflicts + self.counted + self.unverified


COUNTED_DETAIL = "the server counted this scan's use but the door did not open: admit by hand"
UNVERIFIED_DETAIL = (
    "the kiosk stopped while asking a server that does not honour Idempotency-Key: "
    "the pass may have been used; staff, please check"
)


class Replayer:
    """Tells the server about offline admissions, oldest first, each exactly once.

    A replay that gets no answer is tried again later with the same
    ``Idempotency-Key``, so the server counts one use however often it is sent.
    """

    def __init__(
        self,
        client: PassQRApi,
        journal: Journal,
        budget: Budget,
        *,
        on_conflict: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.journal = journal
        self.budget = budget
        self.status = ReplayStatus()
        self._wake = asyncio.Event()
        self._on_conflict = on_conflict
        self._backoff = 1.0
        # One sender at a time: a row is never sent by the loop and by a live scan at once.
        self._sending = asyncio.Lock()
        self._honours_key: bool | None = None

    def wake(self) -> None:
        """A new offline admission, or the server answered again: try now."""
        self._wake.set()

    async def refresh_counts(self) -> None:
        counts = await self.journal.replay_counts()
        self.status.pending = counts["pending"]
        self.status.done = counts["done"]
        self.status.conflicts = counts["conflict"]
        self.status.to_check = counts["reconcile"]
        self.status.counted = counts["counted"]
        self.status.unverified = counts["unverified"]

    async def replay_code(self, code: str) -> bool:
        """Send this code's pending offline admissions now (before a live scan of it).

        Returns:
            True when none is left pending.
        """
        async with self._sending:
            reached = await self._replay(await self.journal.pending_replays(code=code))
        await self.refresh_counts()
        return reached and not await self.journal.unconfirmed_offline_admissions(code)

    async def replay_once(self) -> bool:
        """Replay what is pending and settle interrupted scans; False when the server
        could not be reached."""
        async with self._sending:
            reached = await self._replay(await self.journal.pending_replays())
            if reached:
                reached = await self._reconcile()
        await self.refresh_counts()
        return reached

    async def _reconcile(self) -> bool:
        rows = await self.journal.reconcile_rows()
        if not rows:
            return True
        try:
            honours = await self._server_honours_key()
        except APIError as err:
            _log.info("interrupted scans not settled yet: %s", err.message)
            return False
        for scan_id, code in rows:
            if not honours:
                await self.journal.finish_reconcile(
                    scan_id, "unverified", "unknown", UNVERIFIED_DETAIL
                )
                _log.warning("interrupted scan of %s may have used the pass", code)
                continue
            await self.budget.acquire(Bucket.VALIDATE, Priority.BACKGROUND)
            try:
                result = await self.client.validate(code, idempotency_key=scan_id)
            except APIError as err:
                _log.info("interrupted scan of %s not settled yet: %s", code, err.message)
                return False
            if result.outcome is ValidationOutcome.VALID:
                await self.journal.finish_reconcile(
                    scan_id, "counted", result.result, COUNTED_DETAIL
                )
                _log.warning("interrupted scan of %s: %s", code, COUNTED_DETAIL)
            else:
                detail = f"interrupted; the server did not count it ({result.result})"
                await self.journal.finish_reconcile(scan_id, "done", result.result, detail)
        return True

    async def _server_honours_key(self) -> bool:
        """Known from an earlier run (the journal), else asked once."""
        if self._honours_key is None:
            remembered = await self.journal.recall(f"idempotency:{self.client.base_url}")
            if remembered is None:
                await self.budget.acquire(Bucket.VALIDATE, Priority.BACKGROUND)
                honours = await self.client.honours_idempotency()
                remembered = "yes" if honours else "no"
                await self.journal.remember(f"idempotency:{self.client.base_url}", remembered)
            self._honours_key = remembered == "yes"
        return self._honours_key

    async def _replay(self, rows: list[tuple[str, str]]) -> bool:
        for scan_id, code in rows:
            await self.budget.acquire(Bucket.VALIDATE, Priority.BACKGROUND)
            try:
                result = await self.client.validate(code, idempotency_key=scan_id)
            except RateLimitedError as err:
                self.budget.retry_after(Bucket.VALIDATE, err.retry_after)
                return False
            except RequestRejectedError as err:
                await self._conflict(scan_id, code, f"refused: {err.message}")
                continue
            except (AuthenticationError, PlanError) as err:
                _log.warning("replay stopped: %s", err.message)
                return False
            except APIError as err:
                _log.info("replay of %s postponed: %s", code, err.message)
                return False
            if result.outcome is ValidationOutcome.VALID:
                await self.journal.finish_replay(scan_id, "done", result.result)
            else:
                await self._conflict(scan_id, code, result.result)
        return True

    async def _conflict(self, scan_id: str, code: str, said: str) -> None:
        await self.journal.finish_replay(scan_id, "conflict", said)
        text = f"{code} admitted offline, server says {said}"
        self.status.last_conflict = text
        _log.warning("replay conflict: %s", text)
        if self._on_conflict is not None:
            self._on_conflict(text)

    async def run(self) -> None:
        await self.refresh_counts()
        while True:
            if self.status.pending or self.status.to_check:
                reached = await self.replay_once()
                if reached:
                    self._backoff = 1.0
                else:
                    self._backoff = min(self._backoff * 2, 30.0)
            self._wake.clear()
            delay = self._backoff if self.status.pending or self.status.to_check else 30.0
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
            # that arrives together with the wake-up.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()
            await self.refresh_counts()


async def offline_verdict(policy: str, journal: Journal, code: str) -> tuple[OfflineVerdict, str]:
    """What the offline policy decides for ``code``, and how it decided (for staff)."""
    if policy == "allow-all":
        verdict = OfflineVerdict(
            accepted=True, reason=Reason.VALID, message="ADMITTED OFFLINE - NOT CHECKED"
        )
        return verdict, "offline policy allow-all"
    cached = await journal.cached_pass(code)
    unconfirmed = await journal.unconfirmed_offline_admissions(code)
    return judge_known(
        cached, unconfirmed, datetime.now(UTC)
    ), "decided offline from the local copy"
