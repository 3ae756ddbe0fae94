"""The gate: one scan in, one decision out, in an order that keeps the door honest.

For every payload a source reads:

1. normalise it (junk is refused here, without spending an API call);
2. drop it if the same code was seen within ``repeat_ignore_s`` or is still
   being validated (a phone held at a scanner must not burn a pass's uses);
3. commit the scan to the journal at once, before it waits for its turn
   (a ``kill -9`` loses no scan that was read);
4. in its turn: send this pass's own pending offline admissions first, check the
   journal's disk reserve, mark the row ``asked`` and validate it with PassQR,
   the scan's UUID as ``Idempotency-Key``, within one total deadline per try;
5. commit the decision, then pulse the relay for an admission (never for a
   decision the journal does not hold), then tell the listeners (screen, JSON
   lines). A relay that fails is part of the decision: staff admit by hand.

A failure at any step becomes a rejection with a reason; nothing here raises
into the sources or the UI.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from scanner.api_protocol import PassQRApi
from scanner.budget import Bucket, Budget, BudgetExhausted, Priority
from scanner.config import GateConfig, OfflinePolicy
from scanner.errors import APIError, InvalidPayloadError, RateLimitedError, TransportError
from scanner.explain import describe
from scanner.journal import INTERRUPTED_UNASKED, Journal, JournalFullError, start_of_today
from scanner.models import (
    DOOR_FAULT_TEXT,
    LET_IN_TEXT,
    REASON_TEXT,
    Decision,
    RawScan,
    Reason,
    Scan,
    ValidationOutcome,
    ValidationResult,
    can_let_in,
    new_scan_id,
    utcnow,
)
from scanner.offline import offline_verdict
from scanner.payload import normalise, printable
from scanner.relay import Relay
from scanner.status import HALTING, GateStatus, ServerState, failure_state, server_status

_log = logging.getLogger(__name__)

__all__ = ["DOOR_FAULT_TEXT", "LET_IN_TEXT", "Gate", "can_let_in"]


_OUTCOME_REASON = {
    ValidationOutcome.VALID: Reason.VALID,
    ValidationOutcome.USED: Reason.USED,
    ValidationOutcome.EXPIRED: Reason.EXPIRED,
    ValidationOutcome.REVOKED: Reason.REVOKED,
    ValidationOutcome.NOT_FOUND: Reason.NOT_FOUND,
    ValidationOutcome.UNKNOWN: Reason.ERROR,
}


@dataclass
class _Attempt:
    tries: int = 0
    unanswered: bool = False
    rate_limited: bool = False


class Gate:
    """Decides scans for one gate.

    Args:
        config: the ``[gate]`` table.
        validator: the PassQR client (anything with ``validate``).
        journal: an open journal.
        relay: a started relay.
        policy: what happens when the server cannot decide (``[offline] policy``).
        budget: the request budget shared with replays and syncs.
        live_wait_s: how long a live scan may wait for budget before the policy decides.
        on_offline_admission: called after an offline admission is journaled (wakes replay).
        on_server_back: called when a live answer arrives after the server was not OK
            (wakes replay at once).
        replay_code: sends a code's pending offline admissions; True when none is left.
            Without it, a pass with one is never validated online (it counts as used).
        min_free_bytes: the journal's disk reserve: below it no scan is sent.
        clock: monotonic seconds; tests may pass their own.
    """

    def __init__(
        self,
        *,
        config: GateConfig,
        validator: PassQRApi,
        journal: Journal,
        relay: Relay,
        policy: OfflinePolicy = "deny",
        budget: Budget | None = None,
        live_wait_s: float = 2.0,
        on_offline_admission: Callable[[], None] | None = None,
        on_server_back: Callable[[], None] | None = None,
        replay_code: Callable[[str], Awaitable[bool]] | None = None,
        min_free_bytes: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.validator = validator
        self.journal = journal
        self.relay = relay
        self.policy = policy
        self.budget = budget or Budget()
        self.live_wait_s = live_wait_s
        self._on_offline_admission = on_offline_admission
        self._on_server_back = on_server_back
        self._replay_code = replay_code
        self.min_free_bytes = min_free_bytes
        self.status = GateStatus(policy=policy)
        self._clock = clock
        self._listeners: list[Callable[[Decision], None]] = []
        self._last_seen: dict[str, float] = {}
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[Decision]] = set()
        # One scan at a time, in arrival order (asyncio.Lock is FIFO): the journal,
        # the screen and the JSON lines tell the gate's story in the order it happened.
        self._one_at_a_time = asyncio.Lock()
        self._answered_at = float("-inf")
        self._stopping = False

    def subscribe(self, listener: Callable[[Decision], None]) -> None:
        """Call ``listener`` on the event loop with every decision (after the relay moved)."""
        self._listeners.append(listener)

    async def load_counts(self) -> None:
        """Today's counts from the journal, so a restart does not reset them."""
        now = utcnow()
        counts = await self.journal.counts_since(start_of_today(now))
        self.status.accepted_today = counts["accepted"]
        self.status.rejected_today = counts["rejected"]
        self.status.day_start = start_of_today(now).timestamp()

    # -- intake ---------------------------------------------------------------------------

    def submit(self, raw: RawScan) -> asyncio.Task[Decision] | None:
        """Take a payload from a source; returns the task deciding it, or None if ignored."""
        try:
            code: str | None = normalise(raw.text)
            key = code or ""
            error: InvalidPayloadError | None = None
        except InvalidPayloadError as err:
            code, error = None, err
            key = "\x00invalid:" + raw.text[:128]
        now = self._clock()
        last = self._last_seen.get(key)
        self._last_seen[key] = now
        if not raw.manual and (
            key in self._in_flight
            or (last is not None and now - last < self.config.repeat_ignore_s)
        ):
            self.status.ignored_repeats += 1
            _log.debug("ignored repeat of %s from %s", printable(key), raw.source)
            return None
        if len(self._last_seen) > 4096:
            self._prune(now)
        self._in_flight.add(key)
        self.status.in_flight = len(self._in_flight)
        scan = Scan(
            id=new_scan_id(),
            ts=utcnow(),
            gate=self.config.name,
            source=raw.source,
            raw=printable(raw.text, 256),
            code=code,
            manual=raw.manual,
        )
        task = asyncio.create_task(self._decide(raw, scan, error, key), name=f"scan-{key[:16]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def let_in(self, refused: Decision, *, source: str = "staff") -> asyncio.Task[Decision]:
        """Staff overrule a "used" refusal: the guest is admitted without asking PassQR.

        The admission is a new scan, journaled as manual with what it overruled in its
        detail, then the relay moves and the listeners are told, as for any admission.
        Nothing is sent to PassQR and nothing is queued for upload: the use it would
        count is the one the refusal was about.

        Raises:
            ValueError: not a refusal staff may overrule (:func:`can_let_in`).
        """
        if not can_let_in(refused):
            raise ValueError(f"staff cannot overrule {refused.reason.value!r}: {refused.message}")
        scan = Scan(
            id=new_scan_id(),
            ts=utcnow(),
            gate=self.config.name,
            source=source,
            raw=refused.scan.raw,
            code=refused.scan.code,
            manual=True,
        )
        raw = RawScan(source=source, text=refused.scan.raw, at=time.monotonic(), manual=True)
        verdict = Decision(
            scan=scan,
            accepted=True,
            reason=Reason.VALID,
            message=LET_IN_TEXT,
            detail=f"staff overruled: {refused.message}",
            holder=refused.holder,
            template=refused.template,
        )
        _log.warning("staff let in %s over: %s", printable(scan.code or ""), refused.message)
        task = asyncio.create_task(
            self._decide(raw, scan, None, f"\x00staff:{scan.id}", verdict=verdict),
            name=f"let-in-{scan.id[:8]}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _prune(self, now: float) -> None:
        horizon = now - max(self.config.repeat_ignore_s, 1.0)
        for key in [k for k, t in self._last_seen.items() if t < horizon]:
            del self._last_seen[key]

    async def settle(self) -> None:
        """Wait until every scan taken so far is decided (the sources ended by themselves)."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def drain(self, grace_s: float | None = None) -> None:
        """Let the scans being decided finish (on shutdown), at most ``grace_s``; then stop
        the rest, which the journal closes as interrupted (never a half-written decision)."""
        self._stopping = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        left = set(self._tasks)
        for task in left:
            task.cancel()
        if left:
            await asyncio.wait(left)
        with contextlib.suppress(Exception):
            await self.journal.close_undecided()

    # -- deciding -------------------------------------------------------------------------

    async def _decide(
        self,
        raw: RawScan,
        scan: Scan,
        error: InvalidPayloadError | None,
        key: str,
        *,
        verdict: Decision | None = None,
    ) -> Decision:
        """Journal, decide (or take staff's ``verdict``), act, tell."""
        try:
            # Write-ahead: the row is committed before the scan waits for its turn.
            intake_error = await self._intake(scan)
            async with self._one_at_a_time:
                if verdict is None or intake_error:
                    decision = await self._decide_scan(raw, scan, error, intake_error)
                else:
                    decision = verdict
                decision = await self._act(decision, journaled=not intake_error)
        except Exception as err:  # noqa: BLE001 - a bug here must not open the door or crash
            _log.exception("deciding scan %s failed", scan.id)
            decision = self._reject(scan, raw, Reason.ERROR, detail=f"internal error: {err}")
            await self._record(decision)
        finally:
            self._in_flight.discard(key)
            self._last_seen[key] = self._clock()
            self.status.in_flight = len(self._in_flight)
        self._count(decision)
        for listener in list(self._listeners):
            try:
                listener(decision)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the others
                _log.exception("decision listener failed")
        if decision.accepted and decision.offline and self._on_offline_admission is not None:
            self._on_offline_admission()
        return decision

    async def _intake(self, scan: Scan) -> str:
        """Commit the scan's row; the error text when it could not be written."""
        try:
            await self.journal.record_scan(scan)
        except Exception as err:  # noqa: BLE001 - no admission without a journal row
            _log.error("journal: cannot record scan %s: %s", scan.id, err)
            self.status.journal_fault = f"journal write failed: {err}"
            return f"journal write failed: {err}"
        return ""

    async def _record(self, decision: Decision) -> bool:
        try:
            await self.journal.record_decision(decision, utcnow())
        except Exception as err:  # noqa: BLE001 - journal faults are reported, the gate goes on
            _log.error("journal: cannot record decision of scan %s: %s", decision.scan.id, err)
            self.status.journal_fault = f"journal write failed: {err}"
            return False
        return True

    async def _act(self, decision: Decision, *, journaled: bool = True) -> Decision:
        """Journal the decision, then move the relay: the journal knows before the door does."""
        if journaled:
            journaled = await self._record(decision)
        if not decision.accepted:
            return decision
        if not journaled:
            # No admission without its row. Online, the server has counted the use:
            # the row says "asked", and the next start settles it for staff.
            why = "the decision could not be journaled (disk full?)"
            if not decision.offline:
                why += "; the server counted the use: admit by hand after checking"
            return dataclasses.replace(
                decision,
                accepted=False,
                reason=Reason.ERROR,
                message=REASON_TEXT[Reason.ERROR],
                detail=why,
            )
        if not await self.relay.pulse():
            fault = self.relay.pulse_fault or self.relay.fault or "relay did not switch"
            self.status.relay_faults += 1
            _log.error("door did not open for scan %s: %s", decision.scan.id, fault)
            decision = dataclasses.replace(
                decision,
                message=DOOR_FAULT_TEXT,
                relay_fault=fault,
                detail=f"relay fault: {fault}; {decision.detail}".strip("; "),
            )
            await self._record(decision)
        return decision

    async def _decide_scan(
        self, raw: RawScan, scan: Scan, error: InvalidPayloadError | None, intake_error: str
    ) -> Decision:
        if intake_error:
            return self._reject(scan, raw, Reason.ERROR, detail=intake_error)
        if self._stopping:
            # Shutting down: a scan still queued is closed, never sent (it would use a
            # pass for a guest the stopping kiosk may not let in).
            return self._reject(
                scan, raw, Reason.ERROR, message="Interrupted", detail=INTERRUPTED_UNASKED
            )
        if error is not None or scan.code is None:
            return self._reject(
                scan, raw, Reason.INVALID_PAYLOAD, detail=str(error) if error else "no code"
            )
        if self.status.halted:
            return self._reject(
                scan, raw, Reason.ERROR, message="Scanner out of service", detail=self.status.halted
            )
        if not await self._offline_admissions_settled(scan.code):
            # Admitted offline and the server has not heard of it yet: asking now
            # would admit the pass a second time, whatever the policy. An unlimited
            # pass has no use to lose: the offline copy lets it in again.
            pending = "admitted offline at this gate; its upload to the server is pending"
            if self.policy == "allow-known" and await self._unlimited_offline(scan.code):
                return await self._decide_offline(scan, raw, scan.code, pending)
            return self._reject(scan, raw, Reason.USED, detail=pending, offline=True)
        attempt = _Attempt()
        try:
            result = await self._ask(scan.code, scan.id, attempt)
        except JournalFullError as err:
            return self._journal_refusal(scan, raw, str(err))
        except sqlite3.Error as err:
            return self._journal_refusal(scan, raw, f"journal write failed: {err}")
        except APIError as err:
            return await self._api_failure(scan, raw, err, attempt)
        self.status.journal_fault = ""
        if self.status.server is not ServerState.OK and self._on_server_back is not None:
            self._on_server_back()
        self._server(ServerState.OK)
        if attempt.unanswered and result.outcome is ValidationOutcome.USED:
            # The try that timed out may have been the one that used the pass.
            return self._reject(
                scan,
                raw,
                Reason.USED,
                message="Possibly admitted on the first try",
                detail="the first try got no answer; the retry says used: staff, please check",
                holder=result.pass_.holder_name if result.pass_ else None,
            )
        return await self._from_result(scan, raw, result)

    async def _offline_admissions_settled(self, code: str) -> bool:
        """True when no offline admission of ``code`` waits for upload (sent first if one does)."""
        if not await self.journal.unconfirmed_offline_admissions(code):
            return True
        if self._replay_code is None:
            return False
        return await self._replay_code(code)

    async def _unlimited_offline(self, code: str) -> bool:
        """The offline copy knows the pass and it has no use limit."""
        cached = await self.journal.cached_pass(code)
        return cached is not None and cached.get("max_uses") is None

    def _journal_refusal(self, scan: Scan, raw: RawScan, why: str) -> Decision:
        """The journal cannot promise a decision row: nothing is sent, nobody is admitted."""
        if self.status.journal_fault != why:
            _log.error("journal: %s; no scan is sent until it is fixed", why)
        self.status.journal_fault = why
        return self._reject(scan, raw, Reason.ERROR, message="Scanner out of service", detail=why)

    async def _ask(self, code: str, scan_id: str, attempt: _Attempt) -> ValidationResult:
        """Validate within the budget; a timeout is retried once with the same key.

        The journal row is marked ``asked`` just before the first try is sent,
        after the disk reserve is checked.

        Raises:
            APIError: what the last try raised (the budget running dry is a
                RateLimitedError).
            JournalFullError: the disk is below its reserve; nothing was sent.
            sqlite3.Error: the row could not be marked; nothing was sent.
        """
        while True:
            try:
                await self.budget.acquire(
                    Bucket.VALIDATE, Priority.LIVE, max_wait_s=self.live_wait_s
                )
            except BudgetExhausted as err:
                raise RateLimitedError(
                    "request budget used up", retry_after=err.wait_s, status=None
                ) from err
            if not attempt.tries:
                await self.journal.mark_asked(scan_id, self.min_free_bytes)
            attempt.tries += 1
            try:
                return await self.validator.validate(code, idempotency_key=scan_id)
            except TransportError as err:
                if attempt.unanswered or not err.maybe_delivered:
                    raise
                # The server may have acted on it: the same key asks again safely.
                attempt.unanswered = True
                _log.info(
                    "validation of %s got no answer (%s); retrying once with the same key",
                    code,
                    err.message,
                )
            except RateLimitedError as err:
                self.budget.retry_after(Bucket.VALIDATE, err.retry_after)
                if attempt.rate_limited or err.retry_after > self.live_wait_s:
                    raise
                attempt.rate_limited = True

    async def _from_result(self, scan: Scan, raw: RawScan, result: ValidationResult) -> Decision:
        reason = _OUTCOME_REASON[result.outcome]
        holder = result.pass_.holder_name if result.pass_ else None
        template = result.template.name if result.template else None
        uses_left = result.pass_.uses_left if result.pass_ else None
        if not result.admitted:
            message = REASON_TEXT[reason]
            if result.outcome is ValidationOutcome.UNKNOWN:
                message = result.message or "Pass refused"
            return self._reject(
                scan,
                raw,
                reason,
                message=message,
                holder=holder,
                template=template,
                detail=result.message,
            )
        detail = result.message
        return Decision(
            scan=scan,
            accepted=True,
            reason=Reason.VALID,
            message=REASON_TEXT[Reason.VALID],
            detail=detail,
            holder=holder,
            template=template,
            uses_left=uses_left,
            latency_ms=self._latency(raw),
            data=result.pass_.data if result.pass_ else {},
        )

    async def _api_failure(
        self, scan: Scan, raw: RawScan, err: APIError, attempt: _Attempt
    ) -> Decision:
        """Staff read the failure in :mod:`scanner.explain`'s words; the guest, a reason."""
        if failure_state(err) is None:
            return self._reject(scan, raw, Reason.ERROR, detail=describe(err))
        state, shown = server_status(err)
        self._server(state, shown)
        if state in HALTING:
            # A key or plan problem is not a network problem: stop, and tell staff.
            self.status.halted = describe(err)
            _log.error("scanning stopped: %s", self.status.halted)
            return self._reject(
                scan, raw, Reason.ERROR, message="Scanner out of service", detail=self.status.halted
            )
        if state is ServerState.UNREACHABLE:
            # OFFLINE says the summary already: the message says where and how.
            reason, detail = Reason.OFFLINE, err.message
        else:
            reason = Reason.RATE_LIMITED if state is ServerState.RATE_LIMITED else Reason.ERROR
            detail = describe(err)
        if attempt.unanswered:
            detail += " (a try got no answer: it may have counted a use)"
        if self.policy == "deny" or scan.code is None:
            return self._reject(scan, raw, reason, detail=detail, offline=reason is Reason.OFFLINE)
        return await self._decide_offline(scan, raw, scan.code, detail)

    async def _decide_offline(self, scan: Scan, raw: RawScan, code: str, why: str) -> Decision:
        """The server could not decide: the offline policy does, and says so."""
        verdict, how = await offline_verdict(self.policy, self.journal, code)
        why = f"{how}: {why}"
        if not verdict.accepted:
            return self._reject(
                scan,
                raw,
                verdict.reason,
                message=verdict.message,
                holder=verdict.holder,
                detail=why,
                offline=True,
            )
        return Decision(
            scan=scan,
            accepted=True,
            reason=Reason.VALID,
            message=verdict.message,
            detail=why,
            holder=verdict.holder,
            uses_left=verdict.uses_left,
            offline=True,
            latency_ms=self._latency(raw),
        )

    def _reject(
        self,
        scan: Scan,
        raw: RawScan,
        reason: Reason,
        *,
        message: str | None = None,
        detail: str = "",
        holder: str | None = None,
        template: str | None = None,
        offline: bool = False,
    ) -> Decision:
        return Decision(
            scan=scan,
            accepted=False,
            reason=reason,
            message=message or REASON_TEXT[reason],
            detail=detail,
            holder=holder,
            template=template,
            offline=offline,
            latency_ms=self._latency(raw),
        )

    def _latency(self, raw: RawScan) -> float:
        return max((time.monotonic() - raw.at) * 1000, 0.0)

    def _server(self, state: ServerState, detail: str = "") -> None:
        self._answered_at = self._clock()
        self.status.set_server(state, detail)

    def note_server(self, state: ServerState, detail: str = "", *, asked_at: float) -> None:
        """Record what a probe outside a validation learned about the server.

        A probe that gets through lifts a halt (a key or plan fixed by staff).
        A probe sent before the last validation was answered is older news and
        does not overwrite what that validation showed.

        Args:
            asked_at: when the probe was sent (the gate's clock, :meth:`now`).
        """
        if asked_at < self._answered_at:
            return
        if state is ServerState.OK and self.status.halted:
            _log.info("scanning resumes: the server accepts the key again")
            self.status.halted = ""
        self.status.set_server(state, detail)

    def now(self) -> float:
        """The gate's clock, for :meth:`note_server`."""
        return self._clock()

    def _count(self, decision: Decision) -> None:
        self.status.count(decision, start_of_today(utcnow()).timestamp())
