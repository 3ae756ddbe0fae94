"""The staff PIN (``[staff] pin``): one lock per kiosk, and the dialog that asks for it.

Wrong PINs are counted by the kiosk, not by a dialog: Esc and F4 again do not
start the count again. :data:`PIN_TRIES` wrong PINs lock staff mode (and quitting)
for ``lock_s``, twice as long at each lockout after that (up to ``max_lock_s``);
the right PIN forgives everything. The app keeps the lock in the journal
(:data:`LOCK_KEY`), so a restart keeps the count and the time the lock ends.

While the dialog is open, and while staff mode is locked, the dialog has the keys
(only the gate screen feeds the keyboard-wedge source): a PIN typed into a locked
kiosk is not a scan, journaled and shown on F3. The locked dialog cannot be
closed; it closes itself when the lock ends.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Static

from scanner.ui.widgets import BAD

_log = logging.getLogger(__name__)

PIN_TRIES = 3
"""Wrong PINs in a row (across dialogs and restarts) that lock staff mode."""
LOCK_KEY = "staff_pin_lock"
"""The journal's ``meta`` key the lock is kept under."""
HINT = "Enter: unlock    Esc: cancel"


def staff_pin(config: object) -> str | None:
    """``[staff] pin`` from the config, if the config has it (None: no PIN asked)."""
    staff = getattr(config, "staff", None)
    pin = getattr(staff, "pin", None)
    return pin if isinstance(pin, str) and pin else None


@dataclass
class PinLock:
    """Wrong PINs and lockouts; times are wall-clock seconds, so they survive a restart."""

    lock_s: float = 30.0
    max_lock_s: float = 300.0
    clock: Callable[[], float] = field(default=time.time, repr=False)
    wrong: int = 0
    """Wrong PINs since the last right one or the last lockout."""
    lockouts: int = 0
    """Lockouts since the last right PIN (each one twice as long as the one before)."""
    locked_until: float = 0.0

    def remaining(self) -> float:
        """Seconds left of the lock (0: not locked); a clock set back cannot stretch it."""
        now = self.clock()
        self.locked_until = min(self.locked_until, now + self.max_lock_s)
        return max(self.locked_until - now, 0.0)

    def locked(self) -> bool:
        return self.remaining() > 0

    def wrong_pin(self) -> bool:
        """Count a wrong PIN; True when staff mode is (now) locked."""
        if self.locked():
            return True
        self.wrong += 1
        _log.warning("staff PIN: wrong PIN (%d of %d)", self.wrong, PIN_TRIES)
        if self.wrong < PIN_TRIES:
            return False
        self.wrong = 0
        self.lockouts += 1
        lock_s = min(self.lock_s * 2 ** min(self.lockouts - 1, 30), self.max_lock_s)
        self.locked_until = self.clock() + lock_s
        _log.warning("staff PIN: locked for %.0f s (lockout %d)", lock_s, self.lockouts)
        return True

    def right_pin(self) -> None:
        self.wrong = self.lockouts = 0
        self.locked_until = 0.0

    def dumps(self) -> str:
        state = {"wrong": self.wrong, "lockouts": self.lockouts, "until": self.locked_until}
        return json.dumps(state)

    @classmethod
    def loads(
        cls,
        text: str | None,
        *,
        lock_s: float,
        max_lock_s: float,
        clock: Callable[[], float] = time.time,
    ) -> PinLock:
        """The lock as :meth:`dumps` kept it (a fresh one for nothing or a damaged record)."""
        lock = cls(lock_s=lock_s, max_lock_s=max_lock_s, clock=clock)
        if text is None:
            return lock
        try:
            state = json.loads(text)
            lock.wrong = max(int(state["wrong"]), 0)
            lock.lockouts = max(int(state["lockouts"]), 0)
            lock.locked_until = float(state["until"])
        except (ValueError, TypeError, KeyError) as err:
            _log.warning("staff PIN: the kept lock is unreadable (%s); starting afresh", err)
            return cls(lock_s=lock_s, max_lock_s=max_lock_s, clock=clock)
        lock.remaining()  # a clock set back: no longer than max_lock_s from now
        return lock


class StaffPinScreen(ModalScreen[bool]):
    """Asks for the staff PIN; dismissed with True when it was right.

    Args:
        save: keeps the lock (in the journal) after each answer; awaited before going on.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("f4", "cancel", show=False)]
    TICK_S = 0.1

    def __init__(self, pin: str, lock: PinLock, save: Callable[[], Awaitable[None]]) -> None:
        super().__init__()
        self._pin = pin
        self.pin_lock = lock
        self._save = save
        self._ticker: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content.styled("Staff PIN", "bold"), classes="title")
            yield Input(password=True, max_length=64, id="pin")
            yield Static(HINT, classes="hint", id="pin-hint", markup=False)

    def on_mount(self) -> None:
        if self.pin_lock.locked():
            self._show_locked()

    @property
    def _hint(self) -> Static:
        return self.query_one("#pin-hint", Static)

    def _show_locked(self) -> None:
        field_ = self.query_one("#pin", Input)
        field_.value = ""
        field_.disabled = True
        self._tick()
        if self._ticker is None:
            self._ticker = self.set_interval(self.TICK_S, self._tick, name="pin-lock")

    def _tick(self) -> None:
        left = self.pin_lock.remaining()
        if left <= 0:
            self.dismiss(False)
            return
        self._hint.update(
            Content.assemble(("Locked: wrong PIN too often", BAD), f"    Try again in {left:.0f} s")
        )

    @on(Input.Submitted, "#pin")
    async def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if self.pin_lock.locked():
            return
        if hmac.compare_digest(event.value.encode(), self._pin.encode()):
            self.pin_lock.right_pin()
            await self._save()
            self.dismiss(True)
            return
        locked = self.pin_lock.wrong_pin()
        await self._save()
        event.input.value = ""
        if locked:
            self._show_locked()
            return
        tries = f" ({self.pin_lock.wrong} of {PIN_TRIES})    {HINT}"
        self._hint.update(Content.assemble(("Wrong PIN", BAD), tries))

    def action_cancel(self) -> None:
        if not self.pin_lock.locked():
            self.dismiss(False)
