"""Staff mode (F4): find a pass by name or e-mail, see it and its scans, admit by hand.

For the guest whose phone is dead: staff type part of a name or an e-mail (or scan
a code), pick the pass, check it and the scans the journal has of it, and admit it
with F5. Admitting is a real validation, journaled as manual and decided by the
gate as usual: the result shows on the gate screen, and the relay moves only for
an admission.

The search runs in the offline copy of the passes when the kiosk keeps one,
otherwise it pages through PassQR within the kiosk's read budget; the screen says
which. Optionally behind a PIN (``[staff] pin``). Everything a pass carries is
shown literally.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Input, Static

from scanner.attendance import Attendance, attendance, template_names
from scanner.budget import BudgetExhausted
from scanner.errors import APIError
from scanner.explain import describe
from scanner.models import PassInfo
from scanner.runtime import Kiosk
from scanner.search import PassFinder, SearchResult
from scanner.ui.screens import ConsoleScrollBarRender
from scanner.ui.widgets import BAD, GOOD, WARN, data_label, gate_detail, literal

_log = logging.getLogger(__name__)


def _cell(value: object, limit: int = 40, style: str = "") -> Text:
    """A table cell taken literally (DataTable reads a plain ``str`` as markup)."""
    return Text("" if value is None else literal(value, limit), style=style, no_wrap=True, end="")


def _uses(info: PassInfo, *, short: bool = False) -> str:
    used = "?" if info.uses_count is None else str(info.uses_count)
    most = "unlimited" if info.max_uses is None else str(info.max_uses)
    return f"{used}/{most}" if short else f"{used} of {most}"


def _clock(when: datetime | None) -> str:
    return when.astimezone().strftime("%H:%M") if when else "never"


def _local_time(ts: object) -> str:
    try:
        when = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return literal(ts, 30)
    return when.astimezone().strftime("%d %b %H:%M:%S")


def _date(ts: str | None) -> str:
    """An ISO time as a steward reads it (``31 Dec 2026 23:59``, local time)."""
    if not ts:
        return "never"
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return literal(ts, 40)
    return when.astimezone().strftime("%d %b %Y %H:%M")


def _data(data: Mapping[str, Any]) -> str:
    """``Seat 12A, Table 4``: a pass's own data, on one line."""
    return ", ".join(
        f"{data_label(str(k))} {literal(v, 40)}"
        for k, v in data.items()
        if v not in (None, "") and not isinstance(v, dict | list)
    )


def attendance_content(counts: Attendance, names: Mapping[str, str]) -> Content:
    """``Checked in 312 of 500 (offline copy, synced 10:42)`` and a line per pass type."""
    where = (
        f"offline copy, synced {_clock(counts.synced)}"
        if counts.source == "offline copy"
        else "PassQR, just now"
    )
    first = Content.assemble(
        "Checked in ",
        (f"{counts.checked_in} of {counts.passes}", "bold"),
        f" ({where})",
    )
    parts: list[str | tuple[str, str]] = []
    for i, t in enumerate(counts.templates):
        if i:
            parts.append("  |  ")
        name = names.get(t.template_id or "", t.template_id or "no type")
        parts += [f"{literal(name, 30)} ", (f"{t.checked_in} of {t.passes}", "bold")]
    return Content("\n").join([first, Content.assemble(*parts)]) if parts else first


def _full_size(dialog: Vertical) -> Vertical:
    # Inline styles: the app's stylesheet sizes every #dialog for small modals.
    dialog.styles.width = "100%"
    dialog.styles.height = "100%"
    return dialog


class StaffScreen(ModalScreen[str | None]):
    """Find a pass; dismissed with the code staff chose to admit, or None."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("f4", "close", "Close", show=False),
        Binding("f6", "ask_passqr", "Ask PassQR", show=False),
    ]
    STATUS_INTERVAL_S = 1.0
    # E-mail before code: at 80 columns a steward tells two Ada Smiths apart by it.
    COLUMNS = ("Holder", "Email", "Status", "Uses", "Code")

    def __init__(self, kiosk: Kiosk) -> None:
        super().__init__(id="staff")
        self.kiosk = kiosk
        self.finder = PassFinder(
            kiosk.journal, kiosk.client, kiosk.budget, last_sync=lambda: kiosk.catalog.last_sync
        )
        self.result: SearchResult | None = None
        """The last search's result (tests read it)."""
        self.searching = False
        self.attendance: Attendance | None = None
        """The venue's counts, once counted (tests read it)."""
        self.templates: dict[str, str] = {}
        """Template id -> name, for the pass type."""
        self._query = ""

    def compose(self) -> ComposeResult:
        kiosk = self.kiosk
        with _full_size(Vertical(id="dialog")):
            yield Static(Content.styled("Staff: find a pass", "bold"), classes="title")
            yield Static(
                gate_detail(kiosk.gate.status, kiosk.sources, kiosk.relay), id="gate-detail"
            )
            yield Static("Counting passes...", id="venue", markup=False)
            yield Input(placeholder="Name, e-mail or pass code, then Enter", id="query")
            yield Static("", id="source", markup=False)
            yield DataTable(id="results", cursor_type="row", zebra_stripes=False)
            yield Static(
                "Enter: search / open    F6: ask PassQR    Esc or F4: close",
                classes="hint",
                markup=False,
            )

    def on_mount(self) -> None:
        table = self.query_one("#results", DataTable)
        for bar in (table.vertical_scrollbar, table.horizontal_scrollbar):
            bar.renderer = ConsoleScrollBarRender  # type: ignore[misc]  # documented per-widget
        table.add_columns(*self.COLUMNS)
        self.query_one("#query", Input).focus()
        self.count_passes()
        self.set_interval(self.STATUS_INTERVAL_S, self._refresh_detail, name="staff-status")

    def _refresh_detail(self) -> None:
        kiosk = self.kiosk
        detail = gate_detail(kiosk.gate.status, kiosk.sources, kiosk.relay)
        self.query_one("#gate-detail", Static).update(detail)

    @work(exclusive=True, group="staff-venue", exit_on_error=False)
    async def count_passes(self) -> None:
        """The venue's counts ("312 of 500 checked in") and the pass types' names."""
        kiosk = self.kiosk
        line = self.query_one("#venue", Static)
        try:
            self.templates = dict(await template_names(kiosk.client, kiosk.budget))
        except (APIError, BudgetExhausted) as err:
            _log.info("staff: no template names: %s", err)
        try:
            counts = await attendance(
                kiosk.journal, kiosk.client, kiosk.budget, synced=kiosk.catalog.last_sync
            )
        except APIError as err:
            line.update(Content.styled(f"Cannot count passes: {literal(describe(err), 120)}", WARN))
            return
        except Exception as err:  # noqa: BLE001 - a count is not worth the screen
            _log.warning("staff: cannot count passes: %s", err)
            line.update(Content.styled("Cannot count passes now", WARN))
            return
        self.attendance = counts
        line.update(attendance_content(counts, self.templates))

    @property
    def source_line(self) -> Static:
        return self.query_one("#source", Static)

    @on(Input.Submitted, "#query")
    def _submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        if not text:
            self.source_line.update(Content("Type part of a name, an e-mail or a code."))
            return
        self._query = text
        self.run_search(text)

    def action_ask_passqr(self) -> None:
        """Search PassQR itself, even when the offline copy answered (it may be stale)."""
        if self._query:
            self.run_search(self._query, prefer_api=True)

    @work(exclusive=True, group="staff-search", exit_on_error=False)
    async def run_search(self, text: str, prefer_api: bool = False) -> None:
        self.searching = True
        self.source_line.update(Content("Searching..."))
        try:
            result = await self.finder.search(text, progress=self._progress, prefer_api=prefer_api)
        except APIError as err:
            self.source_line.update(
                Content.styled(f"Cannot search PassQR: {literal(describe(err), 200)}", BAD)
            )
            return
        except Exception as err:  # noqa: BLE001 - a journal fault is shown, never raised
            _log.warning("staff search failed: %s", err)
            self.source_line.update(Content.styled(f"Search failed: {literal(err, 200)}", BAD))
            return
        finally:
            self.searching = False
        self.show(result)

    def _progress(self, examined: int, total: int) -> None:
        self.source_line.update(Content(f"Searching PassQR: {examined} of {total} passes read..."))

    def show(self, result: SearchResult) -> None:
        self.result = result
        table = self.query_one("#results", DataTable)
        table.clear()
        for i, info in enumerate(result.passes):
            table.add_row(
                _cell(info.holder_name or "(no name)", 30),
                _cell(info.holder_email, 40),
                _cell(info.status, 10, GOOD if info.status == "active" else BAD),
                _cell(_uses(info, short=True), 20),
                _cell(info.code, 20),
                key=str(i),
            )
        where = (
            f"offline copy (synced {_clock(result.synced)})"
            if result.source == "offline copy"
            else "PassQR"
        )
        found = f"{result.matched} of {result.examined} passes match"
        if result.matched > len(result.passes):
            found += f" (first {len(result.passes)} shown)"
        self.source_line.update(Content.assemble(f"From {where}: ", (found, "bold")))
        if result.passes:
            table.focus()

    @on(DataTable.RowSelected, "#results")
    def _selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if self.result is None or event.row_key.value is None:
            return
        info = self.result.passes[int(event.row_key.value)]
        source = self.result.source

        def answered(admit: bool | None) -> None:
            if admit and info.code:
                self.dismiss(info.code)

        detail = PassDetailScreen(self.kiosk, self.finder, info, source, templates=self.templates)
        self.app.push_screen(detail, answered)

    def action_close(self) -> None:
        self.dismiss(None)


class PassDetailScreen(ModalScreen[bool]):
    """One pass and its recent scans; dismissed with True to admit it by hand.

    "Back" has the focus: a scanner's Enter can only go back. Admitting takes F5
    (or the button), keys a scanner never sends.
    """

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("f4", "back", show=False),
        Binding("f5", "admit", "Admit"),
    ]
    SCAN_LIMIT = 10
    COLUMNS = ("Time", "Gate", "Source", "Decision", "Reason", "How")

    def __init__(
        self,
        kiosk: Kiosk,
        finder: PassFinder,
        info: PassInfo,
        source: str,
        *,
        templates: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(id="staff-pass")
        self.kiosk = kiosk
        self.finder = finder
        self.info = info
        self.source = source
        self.templates = dict(templates or {})
        self.scans: list[dict[str, Any]] = []
        self.checked = False
        """The pass has been fetched from PassQR (or that failed): the details are final."""

    def compose(self) -> ComposeResult:
        with _full_size(Vertical(id="dialog")):
            yield Static(self._title(), classes="title", id="holder")
            yield Static(self._details(), id="details")
            yield Static("", id="scans-title", markup=False)
            yield DataTable(id="pass-scans", cursor_type="row", zebra_stripes=False)
            with Horizontal(id="buttons"):
                yield Button("Admit (F5)", id="admit", variant="success")
                yield Button("Back (Esc)", id="back", variant="primary")

    def _title(self) -> Content:
        return Content.styled(literal(self.info.holder_name or "(no name)"), "bold")

    def _details(self, note: Content | None = None) -> Content:
        info = self.info
        status = info.status or "unknown"
        status_style = GOOD if status == "active" else BAD
        kind = self.templates.get(info.template_id or "", info.template_id or "-")
        lines = [
            Content.assemble("Code     ", (literal(info.code or "?", 40), "bold")),
            Content.assemble("Type     ", (literal(kind, 60), "bold")),
            Content.assemble("Email    ", literal(info.holder_email or "-")),
            Content.assemble("Status   ", (literal(status, 20), status_style)),
            Content.assemble("Uses     ", _uses(info)),
            Content.assemble("Expires  ", _date(info.expires_at)),
        ]
        if _data(info.data):
            lines.append(Content.assemble("Data     ", _data(info.data)))
        lines.append(note or Content.styled(f"From the {self.source}; checking PassQR...", "dim"))
        if status not in ("active", "unknown"):
            lines.append(Content.styled(f"PassQR will refuse a {status} pass.", WARN))
        return Content("\n").join(lines)

    async def on_mount(self) -> None:
        table = self.query_one("#pass-scans", DataTable)
        for bar in (table.vertical_scrollbar, table.horizontal_scrollbar):
            bar.renderer = ConsoleScrollBarRender  # type: ignore[misc]  # documented per-widget
        table.add_columns(*self.COLUMNS)
        table.can_focus = False
        title = self.query_one("#scans-title", Static)
        self.query_one("#back", Button).focus()
        self.refresh_pass()
        if not self.info.code:
            title.update(Content("This pass has no code"))
            table.display = False
            return
        try:
            self.scans = await self.kiosk.journal.history(self.info.code, self.SCAN_LIMIT)
        except Exception as err:  # noqa: BLE001 - a journal fault is shown, never raised
            _log.warning("cannot read the journal: %s", err)
            title.update(Content.styled(f"Cannot read the journal: {literal(err)}", BAD))
            table.display = False
            return
        for row in self.scans:
            decision = row.get("decision") or "undecided"
            table.add_row(
                _cell(_local_time(row.get("ts")), 20),
                _cell(row.get("gate"), 20),
                _cell(row.get("source"), 20),
                _cell(decision, 12, GOOD if decision == "accepted" else BAD),
                _cell(row.get("message") or row.get("reason"), 30),
                _cell(
                    ("manual" if row.get("manual") else "scan")
                    + (", offline" if row.get("offline") else ""),
                    16,
                ),
            )
        if self.scans:
            title.update(Content.styled("Latest scans of this pass here, newest first", "bold"))
        else:
            title.update(Content("No scans of this pass at this kiosk yet"))
            table.display = False

    @work(exclusive=True, group="staff-pass", exit_on_error=False)
    async def refresh_pass(self) -> None:
        """The details as PassQR has them now; the cached ones stay if it cannot answer."""
        try:
            fresh = await self.finder.fresh(self.info)
        except APIError as err:
            note = Content.styled(
                f"From the {self.source}; PassQR: {literal(describe(err), 120)}", WARN
            )
        except Exception as err:  # noqa: BLE001 - never take the screen down
            _log.warning("cannot refresh the pass: %s", err)
            note = Content.styled(f"From the {self.source}", WARN)
        else:
            self.info = fresh
            note = Content.styled("Checked with PassQR just now", "dim")
            self.query_one("#holder", Static).update(self._title())
        self.query_one("#details", Static).update(self._details(note))
        self.checked = True

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "admit")

    def action_admit(self) -> None:
        self.dismiss(True)

    def action_back(self) -> None:
        self.dismiss(False)
