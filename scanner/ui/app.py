"""The full-screen kiosk: one Textual app around a :class:`~scanner.runtime.Kiosk`.

The app owns the kiosk's lifetime. It starts it when mounted and stops it on
every way out (F10/Ctrl+Q after confirmation, SIGTERM/SIGHUP from systemd, a
startup failure, a crash of the app itself): stopping is what turns the relay
OFF, so it runs from ``on_unmount``, which Textual calls on each of those paths.

Under systemd (``Type=notify``) it sends READY=1 once the kiosk has started,
WATCHDOG=1 pings while its own message loop is alive, and STOPPING=1 on the way
out (:mod:`scanner.notify`; no-ops elsewhere).

Decisions reach the screen as :class:`KioskApp.DecisionMade` messages posted by
the gate's listener (which runs on the event loop, Textual's own thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import ModalScreen, Screen

from scanner import exitcodes, notify
from scanner.errors import ConfigError, ScannerError
from scanner.models import Decision, RawScan
from scanner.pipeline import can_let_in
from scanner.runtime import Kiosk
from scanner.ui.pin import LOCK_KEY, PinLock, StaffPinScreen, staff_pin
from scanner.ui.screens import (
    ConfirmQuitScreen,
    GateScreen,
    ManualEntryScreen,
    RecentScansScreen,
    StartupErrorScreen,
)
from scanner.ui.staff import StaffScreen
from scanner.ui.widgets import DecisionBar, literal

_log = logging.getLogger(__name__)

EXIT_CONFIG = exitcodes.CONFIG
"""Exit status when the kiosk cannot start for a configuration reason (EX_CONFIG)."""
EXIT_ERROR = exitcodes.FAILED
"""Exit status for any other startup failure."""

#: Every terminating signal ends the app through its cleanup (relay OFF); SIGINT is a key.
_SIGNALS = (
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
)


class KioskApp(App[int]):
    """The gate's screen.

    Args:
        kiosk: a kiosk that is not started yet; the app starts and stops it.
        demo_codes: label -> code of the demo passes, shown as a typing hint.
    """

    # Absolute, so a subclass in another directory (tests) finds it too.
    CSS_PATH = Path(__file__).with_name("kiosk.tcss")
    TITLE = "PassQR scanner"
    ENABLE_COMMAND_PALETTE = False
    # Keys a wedge scanner never types. Priority: they work over any modal too.
    BINDINGS = [
        Binding("f10,ctrl+q,ctrl+c", "request_quit", "Quit", priority=True),
    ]

    STAFF_LOCK_S = 30.0
    """How long staff mode stays locked after the PIN was wrong too often (doubling after)."""
    STAFF_LOCK_MAX_S = 300.0
    """The longest lock, however often the PIN was wrong."""
    ERROR_EXIT_S = 30.0
    """How long the startup error stays on screen before the app exits."""
    HEARTBEAT_S = 1.0
    """How often the UI's message loop proves it is alive to the systemd watchdog."""

    @dataclass
    class DecisionMade(Message):
        """The gate decided a scan."""

        decision: Decision
        """The decision, exactly as the gate made it."""

    DEMO_KEY_GAP_S = 5.0
    """In the demo a person types the codes: a partial code waits this long for its next key."""

    def __init__(self, kiosk: Kiosk, *, demo_codes: dict[str, str] | None = None) -> None:
        super().__init__()
        self.kiosk = kiosk
        self.demo_codes = dict(demo_codes) if demo_codes else None
        if self.demo_codes and kiosk.keyboard is not None:
            kiosk.keyboard.key_gap_s = self.DEMO_KEY_GAP_S
        self.gate_screen = GateScreen(kiosk, demo_codes=self.demo_codes)
        self.started = False
        """The kiosk started (journal open, relay OFF, sources running)."""
        self.stopped = False
        """:meth:`Kiosk.stop` has completed."""
        self.startup_error: ScannerError | None = None
        self._signals: list[signal.Signals] = []
        self._watchdog = notify.Watchdog()
        self._watchdog_task: asyncio.Task[None] | None = None
        self._heartbeat = time.monotonic()
        self.pin_lock = PinLock(lock_s=self.STAFF_LOCK_S, max_lock_s=self.STAFF_LOCK_MAX_S)
        """Wrong staff PINs and the lock they earned, for the whole kiosk (kept in the journal)."""

    def get_default_screen(self) -> Screen[None]:
        return self.gate_screen

    # -- lifecycle ------------------------------------------------------------------------

    async def on_mount(self) -> None:
        self._install_signal_handlers()
        self.kiosk.gate.subscribe(self._on_decision)
        self.kiosk.use_bell(self.bell)
        try:
            await self.kiosk.start()
        except ScannerError as err:
            self._startup_failed(err)
            return
        self.started = True
        self.gate_screen.refresh_status()
        self._start_watchdog()
        await self._load_pin_lock()

    def _start_watchdog(self) -> None:
        """READY=1 for systemd, then WATCHDOG=1 pings while the UI's message loop runs.

        The heartbeat is a Textual timer: if the app stops processing messages
        (a hung handler, a frozen screen), the pings stop and systemd restarts us.
        """
        self._beat()
        self.set_interval(self.HEARTBEAT_S, self._beat, name="heartbeat")
        self._watchdog_task = asyncio.create_task(
            self._watchdog.run(self._alive), name="systemd-watchdog"
        )

    def _beat(self) -> None:
        self._heartbeat = time.monotonic()

    def _alive(self) -> bool:
        limit = max((self._watchdog.interval_s or 0) / 2, 3 * self.HEARTBEAT_S)
        return time.monotonic() - self._heartbeat < limit

    def _startup_failed(self, err: ScannerError) -> None:
        _log.error("the kiosk cannot start: %s", err)
        self.startup_error = err
        code = EXIT_CONFIG if isinstance(err, ConfigError) else EXIT_ERROR
        message = Text(f"passqr-scanner: {literal(err, 400)}")

        def leave(_: None) -> None:
            self.exit(code, return_code=code, message=message)

        self.push_screen(StartupErrorScreen(str(err), exit_after_s=self.ERROR_EXIT_S), leave)

    async def on_unmount(self) -> None:
        if self._watchdog_task is not None:
            notify.stopping()
            self._watchdog_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog_task
        await self._stop_kiosk()
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)
        self._signals.clear()

    async def _stop_kiosk(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        try:
            await self.kiosk.stop()
        except Exception:  # noqa: BLE001 - the last exit step must not raise; the log says why
            _log.exception("stopping the kiosk failed")

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            try:
                loop.add_signal_handler(sig, self._on_signal, sig)
            except (NotImplementedError, RuntimeError, ValueError) as err:
                _log.warning("cannot handle %s: %s", sig.name, err)
                continue
            self._signals.append(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        _log.info("%s received, stopping", sig.name)
        self.exit(0, return_code=0)

    # -- decisions ------------------------------------------------------------------------

    def _on_decision(self, decision: Decision) -> None:
        self.post_message(self.DecisionMade(decision))

    def on_kiosk_app_decision_made(self, message: KioskApp.DecisionMade) -> None:
        """Every decision is seen: on the gate screen, and over whatever staff have open.

        The quit dialog gives way (a scan means the gate is in use); a staff screen
        gets the decision in a bar at its top, gone after ``result_hold_s``.
        """
        decision = message.decision
        self.gate_screen.show_decision(decision)
        screen = self.screen
        if isinstance(screen, ConfirmQuitScreen):
            screen.dismiss(False)
        elif screen is not self.gate_screen and isinstance(screen, ModalScreen):
            self._bar_on(screen).show_decision(decision)

    def _bar_on(self, screen: Screen[Any]) -> DecisionBar:
        bars = screen.query(DecisionBar)
        if bars:
            return bars.first()
        gate = self.kiosk.config.gate
        bar = DecisionBar(hold_s=gate.result_hold_s, show_data=gate.show_data)
        screen.mount(bar)
        return bar

    # -- staff actions --------------------------------------------------------------------

    def action_manual_entry(self) -> None:
        if self.screen is self.gate_screen:
            self.push_screen(ManualEntryScreen(), self._manual_code)

    def _manual_code(self, text: str | None) -> None:
        if text is None or not text.strip():
            return
        keyboard = self.kiosk.keyboard
        if keyboard is not None:
            keyboard.feed_line(text, manual=True)
        else:
            self.kiosk.submit(RawScan(source="manual", text=text, at=time.monotonic(), manual=True))

    def action_recent_scans(self) -> None:
        if self.screen is self.gate_screen:
            self.push_screen(RecentScansScreen(self.kiosk))

    def action_staff(self) -> None:
        """F4: staff mode (find a pass, admit by hand), behind ``[staff] pin`` if set."""
        if self.screen is self.gate_screen:
            self._as_staff(self._open_staff)

    def action_let_in(self) -> None:
        """F5 on a "used" refusal: staff let the guest in (behind the PIN, if set)."""
        if self.screen is not self.gate_screen:
            return
        refused = self.gate_screen.panel.decision
        if refused is None or not can_let_in(refused):
            return

        def let_in() -> None:
            # The refusal may have left the screen while the PIN was typed: it is still
            # the one staff chose to overrule.
            self.kiosk.gate.let_in(refused)

        self._as_staff(let_in)

    def _as_staff(self, then: Callable[[], None]) -> None:
        """Run ``then`` once staff are known: at once without a PIN, else after the PIN.

        While staff mode is locked the PIN dialog shows the lock (and keeps every key).
        """
        pin = staff_pin(self.kiosk.config)
        if pin is None:
            then()
            return

        def unlocked(ok: bool | None) -> None:
            if ok:
                then()

        self.push_screen(StaffPinScreen(pin, self.pin_lock, self._save_pin_lock), unlocked)

    async def _load_pin_lock(self) -> None:
        """The PIN lock as the journal kept it; a kiosk restarted while locked shows the lock."""
        pin = staff_pin(self.kiosk.config)
        if pin is None:
            return
        try:
            kept = await self.kiosk.journal.recall(LOCK_KEY)
        except Exception as err:  # noqa: BLE001 - the journal's fault is logged, never raised
            _log.warning("cannot read the staff PIN lock: %s", err)
            return
        self.pin_lock = PinLock.loads(
            kept, lock_s=self.STAFF_LOCK_S, max_lock_s=self.STAFF_LOCK_MAX_S
        )
        if self.pin_lock.locked():
            self.push_screen(StaffPinScreen(pin, self.pin_lock, self._save_pin_lock))

    async def _save_pin_lock(self) -> None:
        try:
            await self.kiosk.journal.remember(LOCK_KEY, self.pin_lock.dumps())
        except Exception as err:  # noqa: BLE001 - the journal's fault is logged, never raised
            _log.warning("cannot keep the staff PIN lock: %s", err)

    def _open_staff(self) -> None:
        self.push_screen(StaffScreen(self.kiosk), self._staff_admit)

    def _staff_admit(self, code: str | None) -> None:
        """Staff chose to admit a pass: validated like any scan, journaled as manual."""
        if code:
            self.kiosk.submit(RawScan(source="staff", text=code, at=time.monotonic(), manual=True))

    def action_request_quit(self) -> None:
        screen = self.screen
        if isinstance(screen, StaffPinScreen):
            return  # quitting waits for the PIN (or the lock) on screen
        if isinstance(screen, ConfirmQuitScreen):
            screen.dismiss(True)
        elif isinstance(screen, StartupErrorScreen):
            screen.action_leave()
        else:
            self.push_screen(ConfirmQuitScreen(self.kiosk.keyboard), self._quit_answer)

    def _quit_answer(self, quit: bool | None) -> None:
        """Quit, once staff are known: behind ``[staff] pin`` too (the lock included)."""
        if quit:
            self._as_staff(lambda: self.exit(0, return_code=0))
