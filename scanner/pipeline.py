"""The gate: one scan in, one decision out, in an order that keeps the door honest.

For every payload a source reads:

1. normalise it (junk is refused here, without spending an API call);
2. drop it if the same code was seen within ``repeat_ignore_s`` or is still
   being validated (a phone held at a scanner must not burn a pass's uses);
3. commit the scan to the journal (nothing moves before that);
4. validate it with PassQR, the scan's UUID as ``Idempotency-Key``;
5. pulse the relay for an admission, tell the listeners (screen, JSON
   lines), and complete the journal row.

A failure at any step becomes a rejection with a reason; nothing here raises
into the sources or the UI.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from scanner.config import GateConfig
from scanner.errors import (
    APIError,
    AuthenticationError,
    BadAnswerError,
    InvalidPayloadError,
    PlanError,
    RateLimitedError,
    ServerError,
    TransportError,
)
from scanner.journal import Journal, start_of_today
from scanner.models import (
    REASON_TEXT,
    Decision,
    RawScan,
    Reason,
    Scan,
    ValidationOutcome,
    ValidationResult,
    new_scan_id,
    utcnow,
)
from scanner.payload import normalise, printable
from scanner.relay import Relay

_log = logging.getLogger(__name__)


class Validator(Protocol):
    async def validate(self, code: str, *, idempotency_key: str) -> ValidationResult: ...


class ServerState(enum.StrEnum):
    UNKNOWN = "unknown"
    OK = "ok"
    UNREACHABLE = "unreachable"
    REJECTED_KEY = "key rejected"
    NO_PLAN = "plan has no API access"
    RATE_LIMITED = "rate limited"
    FAULT = "fault"


@dataclass
class GateStatus:
    """What the status line shows; updated in place by the gate."""

    server: ServerState = ServerState.UNKNOWN
    server_detail: str = ""
    accepted_today: int = 0
    rejected_today: int = 0
    ignored_repeats: int = 0
    in_flight: int = 0
    last: Decision | None = None
    day_start: float = 0.0


_OUTCOME_REASON = {
    ValidationOutcome.VALID: Reason.VALID,
    ValidationOutcome.USED: Reason.USED,
    ValidationOutcome.EXPIRED: Reason.EXPIRED,
    ValidationOutcome.REVOKED: Reason.REVOKED,
    ValidationOutcome.NOT_FOUND: Reason.NOT_FOUND,
    ValidationOutcome.UNKNOWN: Reason.ERROR,
}


class Gate:
    """Decides scans for one gate.

    Args:
        config: the ``[gate]`` table.
        validator: the PassQR client (anything with ``validate``).
        journal: an open journal.
        relay: a started relay.
        clock: monotonic seconds; tests may pass their own.
    """

    def __init__(
        self,
        *,
        config: GateConfig,
        validator: Validator,
        journal: Journal,
        relay: Relay,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.validator = validator
        self.journal = journal
        self.relay = relay
        self.status = GateStatus()
        self._clock = clock
        self._listeners: list[Callable[[Decision], None]] = []
        self._last_seen: dict[str, float] = {}
        self._in_flight: set[str] = set()
        self._tasks: set[asyncio.Task[Decision]] = set()
        # One scan at a time, in arrival order (asyncio.Lock is FIFO): the journal,
        # the screen and the JSON lines tell the gate's story in the order it happened.
        self._one_at_a_time = asyncio.Lock()

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
        task = asyncio.create_task(self._decide(raw, code, error, key), name=f"scan-{key[:16]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _prune(self, now: float) -> None:
        horizon = now - max(self.config.repeat_ignore_s, 1.0)
        for key in [k for k, t in self._last_seen.items() if t < horizon]:
            del self._last_seen[key]

    async def drain(self, grace_s: float | None = None) -> None:
        """Wait for the scans being decided (on shutdown), at most ``grace_s``."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)

    # -- deciding -------------------------------------------------------------------------

    async def _decide(
        self, raw: RawScan, code: str | None, error: InvalidPayloadError | None, key: str
    ) -> Decision:
        scan = Scan(
            id=new_scan_id(),
            ts=utcnow(),
            gate=self.config.name,
            source=raw.source,
            raw=printable(raw.text, 256),
            code=code,
            manual=raw.manual,
        )
        try:
            async with self._one_at_a_time:
                decision = await self._decide_scan(raw, scan, error)
        except Exception as err:  # noqa: BLE001 - a bug here must not open the door or crash
            _log.exception("deciding scan %s failed", scan.id)
            decision = self._reject(scan, raw, Reason.ERROR, detail=f"internal error: {err}")
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
        try:
            await self.journal.record_decision(decision, utcnow())
        except Exception as err:  # noqa: BLE001 - journal faults are logged, the gate goes on
            _log.error("journal: cannot record decision of scan %s: %s", scan.id, err)
        return decision

    async def _decide_scan(
        self, raw: RawScan, scan: Scan, error: InvalidPayloadError | None
    ) -> Decision:
        try:
            await self.journal.record_scan(scan)
        except Exception as err:  # noqa: BLE001 - no admission without a journal row
            _log.error("journal: cannot record scan %s: %s", scan.id, err)
            return self._reject(scan, raw, Reason.ERROR, detail=f"journal write failed: {err}")
        if error is not None or scan.code is None:
            return self._reject(
                scan, raw, Reason.INVALID_PAYLOAD, detail=str(error) if error else "no code"
            )
        try:
            result = await self.validator.validate(scan.code, idempotency_key=scan.id)
        except APIError as err:
            return self._api_failure(scan, raw, err)
        self._server(ServerState.OK)
        return await self._from_result(scan, raw, result)

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
        if not await self.relay.pulse():
            detail = f"relay fault: {self.relay.fault}"
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
        )

    def _api_failure(self, scan: Scan, raw: RawScan, err: APIError) -> Decision:
        if isinstance(err, TransportError):
            self._server(ServerState.UNREACHABLE, err.message)
            return self._reject(scan, raw, Reason.OFFLINE, detail=err.message, offline=True)
        if isinstance(err, RateLimitedError):
            self._server(ServerState.RATE_LIMITED, f"retry in {err.retry_after:.0f} s")
            return self._reject(scan, raw, Reason.RATE_LIMITED, detail=err.message)
        if isinstance(err, AuthenticationError):
            self._server(ServerState.REJECTED_KEY, "API key rejected")
            detail = f"API key rejected: {err.message}"
        elif isinstance(err, PlanError):
            self._server(ServerState.NO_PLAN, "plan has no API access")
            detail = f"plan has no API access: {err.message}"
        elif isinstance(err, BadAnswerError):
            self._server(ServerState.FAULT, "answer is not PassQR's: check api.base_url")
            detail = err.message
        elif isinstance(err, ServerError):
            self._server(ServerState.FAULT, f"server error {err.status}")
            detail = f"server error: {err.message}"
        else:
            detail = f"request refused: {err.message}"
        return self._reject(scan, raw, Reason.ERROR, detail=detail)

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
        if state is not self.status.server:
            _log.info("server: %s %s", state.value, detail)
        self.status.server, self.status.server_detail = state, detail

    def note_server(self, state: ServerState, detail: str = "") -> None:
        """Record what a probe outside a validation learned about the server."""
        self._server(state, detail)

    def _count(self, decision: Decision) -> None:
        now = utcnow()
        today = start_of_today(now).timestamp()
        if today != self.status.day_start:
            if self.status.day_start:
                self.status.accepted_today = self.status.rejected_today = 0
            self.status.day_start = today
        if decision.accepted:
            self.status.accepted_today += 1
        else:
            self.status.rejected_today += 1
        self.status.last = decision
