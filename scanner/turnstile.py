"""What the gate's own contacts say: who went through, who went through without a pass.

An unattended turnstile has a rotation (or door) contact. Every admission opens a window of
``gate.passage_window_s``; windows queue in the order of admissions, and each passage closes
the oldest one:

- a passage inside a window: that admission is ``passed`` (journal: the scan row's ``passage``
  column, and a ``passage`` event that names the scan);
- a window that closes without one: the admission is ``not_passed`` (the guest turned back, or
  the pass was shown for someone else who never came);
- a passage with no window open: ``forced`` (someone climbed over, pushed through, or followed
  the guest before the turnstile locked): a ``forced`` event, an alert on the status line, a
  metric.

The exit button (a request-to-exit switch) pulses the relay with no validation and opens a
window of its own, so the person leaving is not taken for an intruder. Tamper and alarm
contacts are recorded and shown. Passage windows exist only while a passage contact is read:
without one (none configured, or its pin in trouble), an admission's passage is unknown.

Triggers are decided on the event loop the moment they arrive (so a passage belongs to the
window open at that moment); journaling and telling listeners (the screen, headless JSON
lines) happen after, in order, on one worker task. The exit button opens the door before its
event is journaled: leaving must never wait on a disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from scanner.config import GateConfig
from scanner.gpio_input import GpioInput
from scanner.journal import Journal, start_of_today
from scanner.journal_events import TURNSTILE_COUNTS
from scanner.models import Decision, utcnow
from scanner.relay import Relay
from scanner.sources.base import SourceState

_log = logging.getLogger(__name__)

#: How long :meth:`Turnstile.stop` waits for events still being journaled.
DRAIN_S = 5.0

#: Status counter -> the ``event`` label of ``passqr_turnstile_events_total``.
_METRIC_EVENTS = {
    "passed": "passed", "not_passed": "not_passed", "forced": "forced",
    "exits": "exit", "tamper": "tamper", "alarms": "alarm",
}  # fmt: skip


class EventKind(enum.StrEnum):
    """A row of the journal's ``events`` table."""

    PASSAGE = "passage"
    FORCED = "forced"
    EXIT = "exit"
    TAMPER = "tamper"
    ALARM = "alarm"


class PassageOutcome(enum.StrEnum):
    PASSED = "passed"
    NOT_PASSED = "not_passed"
    FORCED = "forced"


@dataclass(frozen=True, kw_only=True)
class GateEvent:
    """Something the gate's contacts said, after it was journaled.

    Attributes:
        kind: ``passage`` (also for ``not_passed``: the outcome says which), ``forced``,
            ``exit``, ``tamper`` or ``alarm``.
        outcome: for passages: passed, not_passed or forced; None for the others.
        scan_id: the admission a passage belongs to (None: forced, or after the exit button).
        code: that admission's pass code.
        input: the name of the contact that triggered (None for not_passed: nothing did).
    """

    ts: datetime
    gate: str
    kind: EventKind
    outcome: PassageOutcome | None = None
    scan_id: str | None = None
    code: str | None = None
    input: str | None = None
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        """The headless JSON line; keys are a contract for scripts (README)."""
        passage = self.kind in (EventKind.PASSAGE, EventKind.FORCED)
        return {
            "ts": self.ts.isoformat().replace("+00:00", "Z"),
            "gate": self.gate,
            "event": "passage" if passage else self.kind.value,
            "outcome": self.outcome.value if self.outcome is not None else None,
            "scan_id": self.scan_id,
            "code": self.code,
            "input": self.input,
            "detail": self.detail,
        }


@dataclass
class TurnstileStatus:
    """Today's counts for staff (from the journal at start, reset at local midnight), and
    totals since start for metrics."""

    admissions: int = 0
    passages: int = 0
    """Every passage the contact saw: passed, forced, and people leaving after the exit button."""
    passed: int = 0
    not_passed: int = 0
    forced: int = 0
    exits: int = 0
    tamper: int = 0
    alarms: int = 0
    open_windows: int = 0
    """Admissions whose guest has not gone through yet."""
    alert: GateEvent | None = None
    """The latest forced passage, tamper or alarm: staff should look."""
    day_start: float = 0.0
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TURNSTILE_COUNTS, 0))
    """Since this kiosk started (Prometheus counters)."""


@dataclass
class _Window:
    scan_id: str | None
    code: str | None
    timer: asyncio.TimerHandle | None = None


Listener = Callable[[GateEvent], None]


class Turnstile:
    """The gate's contacts, and the bookkeeping of who went through.

    Args:
        config: the ``[gate]`` table (its name, ``passage_window_s``).
        inputs: the ``[[inputs]]`` contacts.
        journal: the kiosk's journal (open before :meth:`start`).
        relay: the door relay, pulsed by the exit button.
    """

    def __init__(
        self, *, config: GateConfig, inputs: list[GpioInput], journal: Journal, relay: Relay
    ) -> None:
        self.config = config
        self.inputs = inputs
        self.journal = journal
        self.relay = relay
        self.status = TurnstileStatus()
        self._sensors = [i for i in inputs if i.role == "passage"]
        self._windows: deque[_Window] = deque()
        self._listeners: list[Listener] = []
        self._jobs: asyncio.Queue[Callable[[], Awaitable[GateEvent | None]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._worker: asyncio.Task[None] | None = None

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` on the event loop with every event, once it is journaled."""
        self._listeners.append(listener)

    @property
    def tracks_passage(self) -> bool:
        """A passage contact is being read now. Without one (none configured, or its pin
        cannot be claimed) an admission's passage is unknown, not "nobody went through"."""
        return any(s.state is SourceState.READY for s in self._sensors)

    @property
    def active(self) -> bool:
        """Any contact configured (the status line shows the turnstile only then)."""
        return bool(self.inputs)

    # -- lifetime ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Today's counts from the journal, then claim the contacts (a fault degrades one)."""
        if not self.inputs:
            return
        try:
            counts = await self.journal.turnstile_counts_since(start_of_today(utcnow()))
        except Exception as err:  # noqa: BLE001 - counts are for staff; the gate goes on
            _log.warning("turnstile counts not loaded: %s", err)
        else:
            for name, value in counts.items():
                setattr(self.status, name, value)
        self.status.day_start = start_of_today(utcnow()).timestamp()
        self._worker = asyncio.create_task(self._work(), name="turnstile-journal")
        for contact in self.inputs:
            self._tasks.append(
                asyncio.create_task(contact.run(self._trigger), name=f"input-{contact.name}")
            )

    async def stop(self) -> None:
        """Let go of the contacts, then journal what is left (bounded). Windows still open
        stay unknown (``passage`` NULL): the guest may yet go through."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for window in self._windows:
            if window.timer is not None:
                window.timer.cancel()
        self._windows.clear()
        self.status.open_windows = 0
        if self._worker is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_S):
                    await self._jobs.join()
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
            self._worker = None

    # -- admissions (a Gate listener) --------------------------------------------------------

    def observe(self, decision: Decision) -> None:
        """Open a passage window for an admission; pass this to ``Gate.subscribe``."""
        if not decision.accepted or not self.tracks_passage:
            return
        self._count("admissions")
        self._open_window(decision.scan.id, decision.scan.code)

    def _open_window(self, scan_id: str | None, code: str | None) -> None:
        window = _Window(scan_id=scan_id, code=code)
        loop = asyncio.get_running_loop()
        window.timer = loop.call_later(self.config.passage_window_s, self._expire, window)
        self._windows.append(window)
        self.status.open_windows = self._admissions_open()

    def _admissions_open(self) -> int:
        return sum(1 for w in self._windows if w.scan_id is not None)

    def _expire(self, window: _Window) -> None:
        with contextlib.suppress(ValueError):
            self._windows.remove(window)
        self.status.open_windows = self._admissions_open()
        if window.scan_id is None:
            return  # the exit button's window: nobody owes a passage
        self._count("not_passed")
        event = self._event(
            EventKind.PASSAGE, PassageOutcome.NOT_PASSED, window, detail="nobody went through"
        )
        _log.info("admission %s: nobody went through", window.scan_id)
        self._later(event, passage=PassageOutcome.NOT_PASSED, journal_event=False)

    # -- triggers ----------------------------------------------------------------------------

    def _trigger(self, contact: GpioInput) -> None:
        if contact.role == "passage":
            self._passage(contact)
        elif contact.role == "exit":
            self._exit(contact)
        else:
            self._alarm(contact, EventKind(contact.role))

    def _passage(self, contact: GpioInput) -> None:
        self._count("passages")
        if self._windows:
            window = self._windows.popleft()
            if window.timer is not None:
                window.timer.cancel()
            self.status.open_windows = self._admissions_open()
            if window.scan_id is not None:
                self._count("passed")
                event = self._event(
                    EventKind.PASSAGE, PassageOutcome.PASSED, window, input=contact.name
                )
                self._later(event, passage=PassageOutcome.PASSED)
            else:
                event = self._event(
                    EventKind.PASSAGE,
                    PassageOutcome.PASSED,
                    window,
                    input=contact.name,
                    detail="after the exit button",
                )
                self._later(event)
            return
        self._count("forced")
        event = self._event(
            EventKind.FORCED,
            PassageOutcome.FORCED,
            None,
            input=contact.name,
            detail="passage with no admission: forced or tailgating",
        )
        self.status.alert = event
        _log.warning("forced or tailgating passage at %s (%s)", self.config.name, contact.name)
        self._later(event)

    def _exit(self, contact: GpioInput) -> None:
        self._count("exits")
        if self.tracks_passage:
            self._open_window(None, None)
        event = self._event(EventKind.EXIT, None, None, input=contact.name)
        _log.info("exit button %s: door opened", contact.name)

        async def job() -> GateEvent:
            detail = ""
            if not await self.relay.pulse():
                fault = self.relay.pulse_fault or self.relay.fault or "relay did not switch"
                detail = f"relay fault: {fault}"
                _log.error("exit button %s: the door did not open: %s", contact.name, fault)
            final = dataclasses.replace(event, detail=detail)
            await self._journal(final)
            return final

        self._jobs.put_nowait(job)

    def _alarm(self, contact: GpioInput, kind: EventKind) -> None:
        self._count("tamper" if kind is EventKind.TAMPER else "alarms")
        event = self._event(kind, None, None, input=contact.name, detail="contact triggered")
        self.status.alert = event
        _log.warning("%s at %s (%s)", kind.value, self.config.name, contact.name)
        self._later(event)

    # -- journaling and listeners ------------------------------------------------------------

    def _event(
        self,
        kind: EventKind,
        outcome: PassageOutcome | None,
        window: _Window | None,
        *,
        input: str | None = None,
        detail: str = "",
    ) -> GateEvent:
        return GateEvent(
            ts=utcnow(),
            gate=self.config.name,
            kind=kind,
            outcome=outcome,
            scan_id=window.scan_id if window else None,
            code=window.code if window else None,
            input=input,
            detail=detail,
        )

    def _later(
        self,
        event: GateEvent,
        *,
        passage: PassageOutcome | None = None,
        journal_event: bool = True,
    ) -> None:
        async def job() -> GateEvent:
            if passage is not None and event.scan_id is not None:
                try:
                    await self.journal.set_passage(event.scan_id, passage.value)
                except Exception as err:  # noqa: BLE001 - reported; the gate goes on
                    _log.error("journal: cannot record the passage of %s: %s", event.scan_id, err)
            if journal_event:
                await self._journal(event)
            return event

        self._jobs.put_nowait(job)

    async def _journal(self, event: GateEvent) -> None:
        try:
            await self.journal.record_event(
                ts=event.ts,
                gate=event.gate,
                kind=event.kind.value,
                scan_id=event.scan_id,
                source=event.input,
                detail=event.detail,
            )
        except Exception as err:  # noqa: BLE001 - reported; the gate goes on
            _log.error("journal: cannot record the %s event: %s", event.kind.value, err)

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            try:
                event = await job()
            except Exception:  # noqa: BLE001 - one broken job must not stop the others
                _log.exception("turnstile event failed")
                event = None
            finally:
                self._jobs.task_done()
            if event is not None:
                self._tell(event)

    def _tell(self, event: GateEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the others
                _log.exception("turnstile event listener failed")

    def _count(self, name: str) -> None:
        today = start_of_today(utcnow()).timestamp()
        if today != self.status.day_start:
            if self.status.day_start:
                for key in TURNSTILE_COUNTS:
                    setattr(self.status, key, 0)
            self.status.day_start = today
        setattr(self.status, name, getattr(self.status, name) + 1)
        self.status.totals[name] = self.status.totals.get(name, 0) + 1

    # -- for the metrics endpoint --------------------------------------------------------------

    def metric_families(self) -> list[tuple[str, str, str, list[tuple[dict[str, str], int]]]]:
        """(name, type, help, [(labels, value)]) for the Prometheus exposition."""
        if not self.inputs:
            return []
        totals = self.status.totals
        return [
            (
                "passqr_turnstile_events_total",
                "counter",
                "What the gate's contacts saw: passed, not_passed, forced, exit, tamper, alarm.",
                [({"event": label}, totals[name]) for name, label in _METRIC_EVENTS.items()],
            ),
            (
                "passqr_input_up",
                "gauge",
                "1 when the contact's pin is claimed and read.",
                [
                    ({"input": c.name, "role": c.role}, int(c.state is SourceState.READY))
                    for c in self.inputs
                ],
            ),
        ]
