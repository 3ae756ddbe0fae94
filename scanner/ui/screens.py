"""The kiosk's screens: the gate itself, the staff modals, and the startup error.

Only the gate screen feeds keystrokes to the keyboard-wedge source; while a
modal is open, keys belong to the modal. Staff actions sit on function keys a
wedge scanner never types, and the one destructive dialog (quit) has
"Cancel" focused, so a scanner's Enter can only ever cancel it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.text import Text
from textual import events, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.scrollbar import ScrollBarRender
from textual.timer import Timer
from textual.widgets import Button, DataTable, Input, Static

from scanner.models import REASON_TEXT, Decision, Reason, utcnow
from scanner.payload import MAX_PAYLOAD_CHARS
from scanner.pipeline import can_let_in
from scanner.runtime import Kiosk
from scanner.sources import KeyboardSource
from scanner.ui import bigtext
from scanner.ui.widgets import (
    BAD,
    GOOD,
    DecisionBar,
    LinkStatus,
    ResultPanel,
    StatusLine,
    demo_hint,
    key_hints,
    literal,
    out_of_service,
    status_content,
)

_log = logging.getLogger(__name__)

STAFF_KEYS = [("F2", "Enter code"), ("F3", "Recent scans"), ("F4", "Staff"), ("F10", "Quit")]
LET_IN_KEY = ("F5", "Let in")
"""Shown while a refusal staff may overrule is on screen (a pass used, possibly by us)."""


def previous_use(row: Mapping[str, Any] | None, now: datetime) -> str:
    """``Used 20 s ago at North gate 1`` from the journal's last admission of a code."""
    if not row:
        return "Used before"
    try:
        when = datetime.fromisoformat(str(row.get("ts")).replace("Z", "+00:00"))
    except ValueError:
        return "Used before"
    seconds = max((now - when).total_seconds(), 0.0)
    local = when.astimezone()
    if seconds < 90:
        ago = f"{seconds:.0f} s ago"
    elif seconds < 90 * 60:
        ago = f"{seconds / 60:.0f} min ago"
    elif local.date() == now.astimezone().date():
        ago = f"today {local:%H:%M}"
    else:
        ago = f"{local:%d %b %H:%M}"
    gate = row.get("gate")
    return f"Used {ago}" + (f" at {literal(gate, 40)}" if gate else "")


class GateScreen(Screen[None]):
    """Idle / ACCEPTED / REJECTED (or out of service), the status line and the key hints."""

    BINDINGS = [
        Binding("f2", "app.manual_entry", "Enter code"),
        Binding("f3", "app.recent_scans", "Recent scans"),
        Binding("f4", "app.staff", "Staff"),
        Binding("f5", "app.let_in", "Let in"),
    ]

    STATUS_INTERVAL_S = 0.5

    def __init__(self, kiosk: Kiosk, *, demo_codes: dict[str, str] | None = None) -> None:
        super().__init__(id="gate")
        self.kiosk = kiosk
        self.demo_codes = demo_codes
        self._hold: Timer | None = None
        self.out_of_service = ""
        """Why the gate cannot admit anyone now (empty when it can)."""

    def compose(self) -> ComposeResult:
        gate = self.kiosk.config.gate
        yield Static(Content.styled(literal(gate.name), "bold"), id="gate-name")
        yield ResultPanel(id="panel", show_data=gate.show_data)
        if self.demo_codes:
            yield Static(demo_hint(self.demo_codes), id="demo-hint", markup=False)
        yield StatusLine(id="status")
        yield Static(key_hints(STAFF_KEYS), id="keys", markup=False)

    def on_mount(self) -> None:
        self.refresh_status()
        self.set_interval(self.STATUS_INTERVAL_S, self.refresh_status, name="status")

    @property
    def panel(self) -> ResultPanel:
        return self.query_one("#panel", ResultPanel)

    def refresh_status(self) -> None:
        kiosk = self.kiosk
        status = kiosk.gate.status
        link = LinkStatus(
            policy=kiosk.gate.policy,
            pending=kiosk.replayer.status.pending,
            conflicts=kiosk.replayer.status.for_staff,
            last_sync=kiosk.catalog.last_sync,
            throttled=kiosk.budget.throttled,
        )
        self.query_one("#status", StatusLine).show(
            status_content(status, kiosk.sources, kiosk.relay, link=link, turnstile=kiosk.turnstile)
        )
        why = out_of_service(status, kiosk.sources)
        if why != self.out_of_service:
            if why:
                _log.warning("gate out of service: %s", why)
            else:
                _log.info("gate back in service")
            self.out_of_service = why
        self.panel.out_of_service = bool(why)
        self.panel.checking = status.in_flight > 0

    def show_decision(self, decision: Decision) -> None:
        """Show a decision; the idle screen returns ``result_hold_s`` after the latest one."""
        self.panel.show_decision(decision)
        if self._hold is not None:
            self._hold.stop()
        self._hold = self.set_timer(
            self.kiosk.config.gate.result_hold_s, self.show_idle, name="result-hold"
        )
        self._show_keys()
        self.refresh_status()
        if not decision.accepted and decision.reason is Reason.USED and decision.scan.code:
            self.look_up_previous_use(decision, decision.scan.code)

    def show_idle(self) -> None:
        self._hold = None
        self.panel.show_idle()
        self._show_keys()

    def _show_keys(self) -> None:
        decision = self.panel.decision
        keys = STAFF_KEYS
        if decision is not None and can_let_in(decision):
            keys = [LET_IN_KEY, *STAFF_KEYS]
        self.query_one("#keys", Static).update(key_hints(keys))

    @work(group="previous-use", exit_on_error=False)
    async def look_up_previous_use(self, decision: Decision, code: str) -> None:
        """ "Used 20 s ago at North gate 1": when this kiosk last admitted the pass."""
        try:
            row = await self.kiosk.journal.last_admission(code)
        except Exception as err:  # noqa: BLE001 - a journal fault is not the guest's problem
            _log.warning("cannot read the pass's last admission: %s", err)
            return
        if row is None and decision.message != REASON_TEXT[Reason.USED]:
            return  # "Possibly admitted...": nothing more to say than the reason
        note = previous_use(row, utcnow())
        self.panel.show_note(decision, note)
        for bar in self.app.screen.query(DecisionBar):
            bar.show_note(decision, note)

    def on_key(self, event: events.Key) -> None:
        """A keyboard-wedge scanner types here: characters, then Enter (CR, or LF: ctrl+j)."""
        forward_to_wedge(self.kiosk.keyboard, event)


def forward_to_wedge(keyboard: KeyboardSource | None, event: events.Key) -> bool:
    """Give a key a wedge scanner may have typed to the keyboard source.

    Returns:
        True for Enter (the end of a code), whether or not a code was waiting.
    """
    if event.key in ("enter", "ctrl+j"):
        event.stop()
        event.prevent_default()
        if keyboard is not None:
            keyboard.feed_key(None, enter=True, at=event.time)
        return True
    if event.is_printable and event.character:
        event.stop()
        event.prevent_default()
        if keyboard is not None:
            keyboard.feed_key(event.character, at=event.time)
    return False


class ManualEntryScreen(ModalScreen[str | None]):
    """Staff type (or scan) a code by hand; dismissed with the text, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content.styled("Enter a pass code", "bold"), classes="title")
            yield Input(
                placeholder="PASS-XXXXXXXX or a pass URL",
                max_length=MAX_PAYLOAD_CHARS,
                id="code",
            )
            yield Static("Enter: check it    Esc: cancel", classes="hint", markup=False)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _local_time(ts: object) -> str:
    try:
        when = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return literal(ts, 30)
    return when.astimezone().strftime("%H:%M:%S")


def _cell(value: object, limit: int = 60, style: str = "") -> Text:
    """A table cell: DataTable reads plain ``str`` as markup, a ``Text`` is taken literally."""
    return Text("" if value is None else literal(value, limit), style=style, no_wrap=True, end="")


def _tail(value: object, limit: int) -> str:
    """The end of a long name (``serial:...by-id/usb-X-if00``: the device is at the end)."""
    text = literal("" if value is None else value, 400)
    return text if len(text) <= limit else "\u2026" + text[-(limit - 1) :]


def _sentence(value: object) -> str:
    """Free text as a sentence: ``not a PassQR pass code`` -> ``Not a PassQR pass code``."""
    text = "" if value is None else literal(value, 400)
    return text[:1].upper() + text[1:]


class ConsoleScrollBarRender(ScrollBarRender):
    """Whole-cell scrollbar thumbs: the eighth-block glyphs are not in the console's font."""

    VERTICAL_BARS = [" "] * 8
    HORIZONTAL_BARS = [" "] * 8


class RecentScansScreen(ModalScreen[None]):
    """The last scans from the journal, as literal text."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("f3", "close", "Close", show=False),
    ]
    LIMIT = 20
    # What a steward looks for first, first: a long port path must not push the reason off.
    COLUMNS = ("Time", "Decision", "Reason", "Holder", "Code", "Source", "Detail")

    def __init__(self, kiosk: Kiosk) -> None:
        super().__init__()
        self.kiosk = kiosk
        self.rows: list[dict[str, Any]] = []

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(
                Content.styled(f"Last {self.LIMIT} scans, newest first", "bold"), classes="title"
            )
            yield DataTable(id="scans", cursor_type="row", zebra_stripes=False)
            yield Static("Arrows: scroll    Esc or F3: close", classes="hint", markup=False)

    async def on_mount(self) -> None:
        table = self.query_one("#scans", DataTable)
        for bar in (table.vertical_scrollbar, table.horizontal_scrollbar):
            bar.renderer = ConsoleScrollBarRender  # type: ignore[misc]  # documented per-widget
        table.add_columns(*self.COLUMNS)
        try:
            self.rows = await self.kiosk.journal.recent_with_events(self.LIMIT)  # + forced, exits
        except Exception as err:  # noqa: BLE001 - a journal fault is shown, never raised
            _log.warning("cannot read the journal: %s", err)
            self.query_one(".title", Static).update(
                Content.styled(f"Cannot read the journal: {literal(err)}", "bold")
            )
            return
        for row in self.rows:
            decision = row.get("decision") or "undecided"
            table.add_row(
                _cell(_local_time(row.get("ts"))),
                _cell(decision, 20, GOOD if decision == "accepted" else BAD),
                _cell(row.get("message") or row.get("reason"), 40),
                _cell(row.get("holder"), 30),
                _cell(row.get("code") or row.get("raw"), 40),
                _cell(_tail(row.get("source"), 24)),
                _cell(_sentence(row.get("detail")), 200),
            )
        if not self.rows:
            self.query_one(".title", Static).update(Content.styled("No scans yet", "bold"))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmQuitScreen(ModalScreen[bool]):
    """Stop the kiosk? "Cancel" has the focus: a scanner's Enter only cancels.

    A wedge scanner typing while the dialog is open is still a scan: its keys go to
    the keyboard source, and its Enter both sends the code and cancels the dialog
    (the app also cancels it for any other decision, so no result is hidden).
    """

    BINDINGS = [Binding("escape", "answer(False)", "Cancel")]

    def __init__(self, keyboard: KeyboardSource | None = None) -> None:
        super().__init__()
        self.keyboard = keyboard
        self._typed = False

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(Content.styled("Stop the gate scanner?", "bold"), classes="title")
            yield Static(
                "No pass can be checked while it is stopped; the door stays locked.",
                classes="hint",
                markup=False,
            )
            with Horizontal(id="buttons"):
                yield Button("Quit (F10)", id="quit", variant="error")
                yield Button("Cancel (Esc)", id="cancel", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    def on_key(self, event: events.Key) -> None:
        enter = event.key in ("enter", "ctrl+j")
        if enter and not self._typed:
            return  # a person's Enter: the focused button answers
        self._typed = self._typed or (event.is_printable and bool(event.character))
        if forward_to_wedge(self.keyboard, event):
            self.dismiss(False)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "quit")

    def action_answer(self, quit: bool) -> None:
        self.dismiss(quit)


class StartupErrorScreen(Screen[None]):
    """The kiosk could not start (journal unwritable...): say so plainly, then exit."""

    BINDINGS = [
        Binding("enter", "leave", "Exit"),
        Binding("f10", "leave", "Exit"),
    ]

    def __init__(self, message: str, *, exit_after_s: float) -> None:
        super().__init__(id="startup-error")
        self.message = message
        self.exit_after_s = exit_after_s

    def compose(self) -> ComposeResult:
        headline = "CANNOT START"
        with Vertical(id="error-body"):
            yield Static(Content("\n").join(bigtext.render(headline)), id="error-headline")
            yield Static(Content.styled(literal(self.message, 400), "bold"), id="error-message")
            yield Static(
                "The door stays locked. Fix the problem, then restart the scanner.",
                markup=False,
            )
            yield Static(
                f"Exiting in {self.exit_after_s:.0f} s (Enter: exit now).",
                id="error-exit",
                markup=False,
            )

    def on_mount(self) -> None:
        self.set_timer(self.exit_after_s, self.action_leave, name="error-exit")

    def action_leave(self) -> None:
        self.dismiss(None)
