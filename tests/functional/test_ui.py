"""The Textual kiosk, driven with Pilot at 80x24.

Most tests run the real kiosk (journal, gate pipeline, keyboard source, relay
driver) with a fake PassQR client that answers from a table, so every answer a
gate can get is at hand; the end-to-end tests use the project's own server over
loopback HTTP. What the screen shows is read back from the app's own SVG
export, so the tests see what a person at the gate would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from scanner.config import ApiConfig, Config, GateConfig, JournalConfig, RelayConfig
from scanner.errors import NetworkError
from scanner.models import (
    Decision,
    PassInfo,
    RawScan,
    Reason,
    Scan,
    TemplateInfo,
    ValidationOutcome,
    ValidationResult,
    utcnow,
)
from scanner.relay import NoRelay, RelayState
from scanner.runtime import Kiosk
from scanner.sources import KeyboardSource, Source, SourceState
from scanner.ui import bigtext
from scanner.ui.app import EXIT_CONFIG, KioskApp
from scanner.ui.screens import (
    ConfirmQuitScreen,
    ManualEntryScreen,
    RecentScansScreen,
    StartupErrorScreen,
)
from scanner.ui.widgets import ResultPanel
from tests.conftest import LocalServer
from tests.support.console_font import missing_glyphs
from tests.support.fakes import FakeClient
from tests.support.waiting import eventually

SIZE = (80, 24)
PANEL_WIDTH = 76  # 80 columns less the panel's padding


@pytest.fixture(autouse=True)
def _no_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test run under systemd must not notify it."""
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


# -- fakes -------------------------------------------------------------------------------


def valid(holder: str | None = "Ada Lovelace", uses_left: int | None = 2, **kw: Any) -> Any:
    max_uses = None if uses_left is None else uses_left + 1
    return ValidationResult(
        outcome=ValidationOutcome.VALID,
        result="valid",
        message=kw.get("message", "Pass is valid"),
        pass_=PassInfo(code="x", holder_name=holder, max_uses=max_uses, uses_count=1),
        template=TemplateInfo(name=kw.get("template", "Day pass")),
    )


def refused(outcome: ValidationOutcome, holder: str | None = "Alan Turing") -> Any:
    return ValidationResult(
        outcome=outcome,
        result=outcome.value,
        message=f"pass is {outcome.value}",
        pass_=PassInfo(code="x", holder_name=holder),
        template=TemplateInfo(name="Day pass"),
    )


def fake(app: KioskApp) -> FakeClient:
    """The kiosk's client, which :func:`make_app` made a fake."""
    client = app.kiosk.client
    assert isinstance(client, FakeClient)
    return client


def make_config(
    tmp_path: Path,
    *,
    hold: float = 60.0,
    name: str = "North gate",
    base_url: str = "http://127.0.0.1:9/api/v1",
    journal: Path | None = None,
) -> Config:
    return Config(
        api=ApiConfig(base_url=base_url, timeout_s=2.0),
        gate=GateConfig(name=name, repeat_ignore_s=0.0, result_hold_s=hold),
        relay=RelayConfig(type="none", pulse_ms=50),
        journal=JournalConfig(path=journal or tmp_path / "journal.sqlite3"),
    )


def make_app(
    tmp_path: Path,
    answers: dict[str, Any] | None = None,
    *,
    keyboard: bool = True,
    demo_codes: dict[str, str] | None = None,
    **config: Any,
) -> KioskApp:
    sources: list[Source] = [KeyboardSource()] if keyboard else []
    kiosk = Kiosk(
        make_config(tmp_path, **config),
        api_key="pqr_live_test",
        client=FakeClient(answers, default=refused(ValidationOutcome.NOT_FOUND, None)),
        sources=sources,
        relay=NoRelay(pulse_ms=50),
    )
    return KioskApp(kiosk, demo_codes=demo_codes)


# -- reading the screen ------------------------------------------------------------------

_TEXT = re.compile(r'<text class="[^"]*-r\d+" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>')
_CELL_W = 12.2  # the SVG export's character width


def screen_text(app: KioskApp) -> str:
    """The screen as plain text lines, from the app's own SVG export."""
    rows: dict[float, dict[int, str]] = {}
    for x, y, text in _TEXT.findall(app.export_screenshot()):
        row = rows.setdefault(float(y), {})
        col = round(float(x) / _CELL_W)
        for i, ch in enumerate(html.unescape(text).replace("\xa0", " ")):
            row[col + i] = ch
    return "\n".join(
        "".join(row.get(i, " ") for i in range(max(row) + 1)).rstrip()
        for _, row in sorted(rows.items())
    )


def shows_big(text: str, word: str, *, width: int = PANEL_WIDTH) -> bool:
    """Whether ``word`` is on screen in block letters (wrapped as the panel wraps it)."""
    lines = bigtext.wrap(word, width)
    assert lines is not None, word
    rows = [row.rstrip() for line in lines for row in bigtext.render(line)]
    return all(row in text for row in rows if row)


def shows_reason(text: str, reason: str, *, width: int = PANEL_WIDTH) -> bool:
    """The reason is on screen: in block letters, or in plain words on its bar."""
    if reason in {line.strip() for line in text.splitlines()}:
        return True
    return bigtext.wrap(reason, width) is not None and shows_big(text, reason, width=width)


def panel_of(app: KioskApp) -> ResultPanel:
    return app.gate_screen.panel


async def decided(pilot: Pilot[int], count: int = 1, within_s: float = 5.0) -> Decision:
    """Wait until the screen shows the ``count``-th decision of this run; return it."""
    app = pilot.app
    assert isinstance(app, KioskApp)
    status = app.kiosk.gate.status
    await eventually(
        lambda: (
            status.accepted_today + status.rejected_today >= count
            and panel_of(app).decision is status.last
        ),
        within_s,
    )
    await pilot.pause()
    decision = panel_of(app).decision
    assert decision is not None
    return decision


def scan(app: KioskApp, text: str) -> None:
    app.kiosk.submit(RawScan(source="test", text=text, at=time.monotonic()))


# -- idle --------------------------------------------------------------------------------


async def test_idle_shows_gate_name_and_scan_your_pass(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        assert app.started
        await eventually(lambda: app.kiosk.gate.status.server.value == "ok")
        app.gate_screen.refresh_status()
        await pilot.pause()
        text = screen_text(app)
        assert text.splitlines()[0].strip() == "North gate"
        assert shows_big(text, "Scan your pass")
        assert "Hold your pass code to the scanner" in text
        assert "Server ok" in text
        assert "Relay none" in text
        assert "keyboard ready" in text
        assert "Today 0 accepted, 0 rejected" in text
        assert "F2  Enter code" in text and "F3  Recent scans" in text and "F10  Quit" in text
        assert panel_of(app).has_class("-idle")


async def test_demo_hint_shows_codes_literally(tmp_path: Path) -> None:
    app = make_app(tmp_path, demo_codes={"season": "PASS-SEAS0001", "valid": "[b]PASS[/b]"})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "PASS-SEAS0001 (season)" in text
        assert "[b]PASS[/b] (valid)" in text


async def test_no_demo_hint_outside_the_demo(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert "Demo" not in screen_text(app)


# -- results -----------------------------------------------------------------------------


async def test_accepted_shows_holder_template_and_uses_left(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-AAAA0001": valid(uses_left=2)})
    async with app.run_test(size=SIZE) as pilot:
        scan(app, "PASS-AAAA0001")
        decision = await decided(pilot)
        assert decision.accepted
        text = screen_text(app)
        assert shows_big(text, "ACCEPTED")
        assert "Ada Lovelace" in text
        assert "Pass: Day pass" in text
        assert "Uses left: 2" in text
        assert "Today 1 accepted, 0 rejected" in text
        assert panel_of(app).has_class("-accepted")
        assert panel_of(app).headline == "ACCEPTED"


async def test_unlimited_pass_says_unlimited(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-AAAA0002": valid(uses_left=None)})
    async with app.run_test(size=SIZE) as pilot:
        scan(app, "PASS-AAAA0002")
        await decided(pilot)
        assert "Uses left: unlimited" in screen_text(app)


@pytest.mark.parametrize(
    ("answer", "text", "reason"),
    [
        (refused(ValidationOutcome.USED), "PASS-BBBB0001", "Already used"),
        (refused(ValidationOutcome.EXPIRED), "PASS-BBBB0001", "Expired"),
        (refused(ValidationOutcome.REVOKED), "PASS-BBBB0001", "Pass revoked"),
        (refused(ValidationOutcome.NOT_FOUND, None), "PASS-BBBB0001", "Unknown pass"),
        (None, "not a pass at all", "Not a pass code"),
        (NetworkError("cannot connect: refused"), "PASS-BBBB0001", "Server unreachable"),
    ],
)
async def test_rejected_shows_the_reason(
    tmp_path: Path, answer: Any, text: str, reason: str
) -> None:
    app = make_app(tmp_path, {"PASS-BBBB0001": answer} if answer is not None else {})
    async with app.run_test(size=SIZE) as pilot:
        scan(app, text)
        decision = await decided(pilot)
        assert not decision.accepted
        assert decision.message == reason
        shown = screen_text(app)
        assert shows_big(shown, "REJECTED")
        assert shows_reason(shown, reason)
        assert panel_of(app).has_class("-rejected")
        assert "Today 0 accepted, 1 rejected" in shown


async def test_unreachable_server_shows_in_the_status_line(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-BBBB0002": NetworkError("cannot connect: refused")})
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.kiosk.gate.status.server.value == "ok")
        scan(app, "PASS-BBBB0002")
        await decided(pilot)
        text = screen_text(app)
        assert "Server unreachable  |  Today 0 accepted, 1 rejected" in text
        assert " OFFLINE " in text


async def test_long_reason_falls_back_to_one_bold_line(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    long_reason = "Cannot check pass, please see staff"
    async with app.run_test(size=SIZE) as pilot:
        app.post_message(KioskApp.DecisionMade(decision_with(message=long_reason)))
        await eventually(lambda: panel_of(app).decision is not None)
        await pilot.pause()
        assert long_reason in screen_text(app)


async def test_back_to_idle_after_result_hold(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-AAAA0003": valid()}, hold=0.05)
    async with app.run_test(size=SIZE) as pilot:
        scan(app, "PASS-AAAA0003")
        await eventually(lambda: app.kiosk.gate.status.accepted_today == 1)
        await eventually(
            lambda: panel_of(app).decision is None and panel_of(app).has_class("-idle")
        )
        # The panel's state changes before the frame is drawn: wait for the frame too
        # (a busy machine drew it a tick late and failed a single pause).
        await pilot.pause()
        await eventually(lambda: shows_big(screen_text(app), "Scan your pass"))


async def test_a_new_decision_restarts_the_hold(tmp_path: Path) -> None:
    hold = 0.6
    app = make_app(tmp_path, hold=hold)
    async with app.run_test(size=SIZE) as pilot:
        first, second = decision_with(holder="First"), decision_with(holder="Second")
        app.post_message(KioskApp.DecisionMade(first))
        await eventually(lambda: panel_of(app).decision is first)
        await asyncio.sleep(hold / 2)
        app.post_message(KioskApp.DecisionMade(second))
        await eventually(lambda: panel_of(app).decision is second)
        shown_at = time.monotonic()
        await eventually(lambda: panel_of(app).decision is None)
        # Timers never fire early: had the first hold not been cancelled, the idle
        # screen would be back about hold/2 after the second decision.
        assert time.monotonic() - shown_at >= hold - 0.05
        await pilot.pause()


class BoardRelay(NoRelay):
    """A relay that reports like a real board (its kind is not "none")."""

    kind = "board"


class BrokenSource(Source):
    async def run(self, emit: Any) -> None:
        self.state, self.detail = SourceState.DEGRADED, "[red]port vanished[/]"
        await asyncio.Event().wait()


async def test_status_line_shows_device_faults(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    kiosk = app.kiosk
    kiosk.relay = kiosk.gate.relay = BoardRelay(pulse_ms=50)
    kiosk.sources.append(BrokenSource("serial:/dev/ttyACM0"))
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: kiosk.sources[-1].state is SourceState.DEGRADED)
        app.gate_screen.refresh_status()
        await pilot.pause()
        text = screen_text(app)
        assert "Relay OFF" in text
        assert "serial:/dev/ttyACM0 degraded ([red]port vanished[/])" in text
        kiosk.relay.state, kiosk.relay.fault = RelayState.FAULT, "SerialException: gone"
        app.gate_screen.refresh_status()
        await pilot.pause()
        assert "Relay FAULT (SerialException: gone)" in screen_text(app)


# -- keyboard-wedge scanner --------------------------------------------------------------


async def test_typed_code_and_enter_reach_the_pipeline(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-QWERTY12": valid(holder="Typed In")})
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"pass-qwerty12", "enter")
        decision = await decided(pilot)
        assert fake(app).codes == ["PASS-QWERTY12"]
        assert decision.scan.source == "keyboard"
        assert decision.scan.code == "PASS-QWERTY12"
        assert "Typed In" in screen_text(app)
        # Letters typed by a scanner never open anything.
        assert app.screen is app.gate_screen


async def test_line_feed_and_crlf_terminators(tmp_path: Path) -> None:
    answers = {"PASS-LFLF0001": valid(), "PASS-CRLF0001": valid()}
    app = make_app(tmp_path, answers)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"PASS-LFLF0001", "ctrl+j")
        await decided(pilot, 1)
        await pilot.press(*"PASS-CRLF0001", "enter", "ctrl+j")
        await decided(pilot, 2)
        await pilot.pause(0.05)
        assert fake(app).codes == ["PASS-LFLF0001", "PASS-CRLF0001"]


async def test_scanner_letters_trigger_no_binding(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"qQpPrRyYnN?! 0123456789", "tab")
        await pilot.pause()
        assert app.screen is app.gate_screen
        assert app.return_code is None


async def test_keys_are_ignored_without_a_keyboard_source(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-AAAA0004": valid()}, keyboard=False)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press(*"PASS-AAAA0004", "enter")
        await pilot.pause(0.1)
        assert fake(app).codes == []
        assert panel_of(app).decision is None


# -- staff keys --------------------------------------------------------------------------


@pytest.mark.parametrize(("keyboard", "source"), [(True, "keyboard"), (False, "manual")])
async def test_f2_manual_entry(tmp_path: Path, keyboard: bool, source: str) -> None:
    app = make_app(tmp_path, {"PASS-MANU0001": valid(holder="By Hand")}, keyboard=keyboard)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await eventually(lambda: isinstance(app.screen, ManualEntryScreen))
        assert isinstance(app.focused, Input)
        await pilot.press(*"PASS-MANU0001")
        # The typed keys went to the input, not to the wedge source.
        assert fake(app).codes == []
        await pilot.press("enter")
        decision = await decided(pilot)
        assert app.screen is app.gate_screen
        assert decision.scan.manual
        assert decision.scan.source == source
        assert "By Hand" in screen_text(app)


async def test_f2_escape_cancels(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await eventually(lambda: isinstance(app.screen, ManualEntryScreen))
        await pilot.press(*"PASS-X", "escape")
        await eventually(lambda: app.screen is app.gate_screen)
        await pilot.pause(0.05)
        assert fake(app).codes == []


async def test_f3_recent_scans_lists_rows_literally(tmp_path: Path) -> None:
    answers = {"PASS-RECE0001": valid(holder="[bold]Eve[/]", message="[red]ok[/]")}
    app = make_app(tmp_path, answers)
    async with app.run_test(size=SIZE) as pilot:
        scan(app, "PASS-RECE0001")
        await decided(pilot)

        async def journaled() -> None:
            """The decision is journaled just after it is shown."""
            while True:
                rows = await app.kiosk.journal.recent(1)
                if rows and rows[0]["decision"]:
                    return
                await asyncio.sleep(0.01)

        await asyncio.wait_for(journaled(), 5)
        await pilot.press("f3")
        await eventually(lambda: isinstance(app.screen, RecentScansScreen))
        screen = app.screen
        assert isinstance(screen, RecentScansScreen)
        table = screen.query_one(DataTable)
        await eventually(lambda: table.row_count == 1)
        await pilot.pause()
        text = screen_text(app)
        assert "PASS-RECE0001" in text
        assert "accepted" in text
        assert "[bold]Eve[/]" in text
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.gate_screen)
        await pilot.press("f3")
        await eventually(lambda: isinstance(app.screen, RecentScansScreen))
        await pilot.press("f3")
        await eventually(lambda: app.screen is app.gate_screen)


async def test_quit_asks_first_and_scanner_enter_only_cancels(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f10")
        await eventually(lambda: isinstance(app.screen, ConfirmQuitScreen))
        assert "Stop the gate scanner?" in screen_text(app)
        # A scanner typing while the dialog is open: letters do nothing, Enter cancels.
        await pilot.press(*"PASS-YYYY0001", "enter")
        await eventually(lambda: app.screen is app.gate_screen)
        assert app.return_code is None
        await pilot.press("ctrl+q")
        await eventually(lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.gate_screen)
        assert app.return_code is None
        await pilot.press("f10")
        await eventually(lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.press("f10")
        await eventually(lambda: app.return_code == 0)
    assert app.stopped


async def test_quit_button(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f10")
        await eventually(lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.click("#quit")
        await eventually(lambda: app.return_code == 0)


# -- what a pass carries is shown literally --------------------------------------------


def decision_with(**fields: Any) -> Decision:
    scan_ = Scan(
        id="00000000-0000-0000-0000-000000000000",
        ts=utcnow(),
        gate="North gate",
        source="test",
        raw="PASS-AAAA0000",
        code="PASS-AAAA0000",
    )
    values: dict[str, Any] = {
        "scan": scan_,
        "accepted": False,
        "reason": Reason.ERROR,
        "message": "Already used",
    }
    values.update(fields)
    return Decision(**values)


async def test_markup_in_a_pass_is_shown_literally(tmp_path: Path) -> None:
    answers = {
        "PASS-MARK0001": valid(holder="[bold]Eve[/]", template="[red]VIP[/red]", message="[b]x")
    }
    app = make_app(tmp_path, answers)
    async with app.run_test(size=SIZE) as pilot:
        scan(app, "PASS-MARK0001")
        await decided(pilot)
        text = screen_text(app)
        assert "[bold]Eve[/]" in text
        assert "Pass: [red]VIP[/red]" in text
        assert "[b]x" not in text  # the server's message is for staff (F3), not guests


@pytest.mark.parametrize(
    "fields",
    [
        {"holder": "\x1b[31mred\x1b[0m\r\nnext", "detail": "\x07bell\x00"},
        {"accepted": True, "holder": "x" * 5000, "template": "[" * 300, "uses_left": -1},
        {"message": "", "detail": "Traceback (most recent call last):\n  boom"},
        {"message": "Ungültig – ✗ 通行证", "holder": "Zoë 🎟"},
        {"message": "[/]", "holder": "[link=http://x]y[/link]", "detail": "[@click=app.quit]"},
        {"accepted": True, "holder": None, "template": None, "uses_left": None},
    ],
)
async def test_never_crashes_on_what_a_decision_carries(
    tmp_path: Path, fields: dict[str, Any]
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        decision = decision_with(**fields)
        app.post_message(KioskApp.DecisionMade(decision))
        await eventually(lambda: panel_of(app).decision is decision)
        await pilot.pause()
        text = screen_text(app)
        assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
        if "\x1b" in str(fields.get("holder")):
            assert "\\x1b[31mred" in text
        if "[link" in str(fields.get("holder")):
            assert "[link=http://x]y[/link]" in text
        assert app.return_code is None
    assert app.return_code is None


# -- the Linux console ------------------------------------------------------------------


class SixteenColours(LineFilter):
    """What a 16-colour terminal (``TERM=linux``) makes of each cell; records the colours."""

    def __init__(self) -> None:
        super().__init__()
        self.backgrounds: set[int] = set()

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        out = []
        for text, style, control in segments:
            if style is not None:
                fg = style.color.downgrade(ColorSystem.STANDARD) if style.color else None
                bg = style.bgcolor.downgrade(ColorSystem.STANDARD) if style.bgcolor else None
                if bg is not None and bg.number is not None:
                    self.backgrounds.add(bg.number)
                style = style + Style(color=fg, bgcolor=bg)
            out.append(Segment(text, style, control))
        return out


class LinuxConsoleApp(KioskApp):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sixteen = SixteenColours()

    def get_line_filters(self) -> list[LineFilter]:
        return [*super().get_line_filters(), self.sixteen]


async def test_gate_screens_fit_the_linux_console(tmp_path: Path) -> None:
    """Backgrounds only from the 8 basic colours, glyphs only from a 256-glyph font."""
    answers = {"PASS-LINU0001": valid(), "PASS-LINU0002": refused(ValidationOutcome.USED)}
    kiosk_app = make_app(tmp_path, answers)
    app = LinuxConsoleApp(kiosk_app.kiosk)
    async with app.run_test(size=SIZE) as pilot:
        texts = [screen_text(app)]
        scan(app, "PASS-LINU0001")
        await decided(pilot, 1)
        texts.append(screen_text(app))
        scan(app, "PASS-LINU0002")
        await decided(pilot, 2)
        texts.append(screen_text(app))
        await pilot.press("f10")
        await eventually(lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.pause()
        texts.append(screen_text(app))
        await pilot.press("escape", "f2")
        await eventually(lambda: isinstance(app.screen, ManualEntryScreen))
        await pilot.pause()
        texts.append(screen_text(app))
        await pilot.press("escape")
        await pilot.press("f3")
        await eventually(lambda: isinstance(app.screen, RecentScansScreen))
        await pilot.pause()
        texts.append(screen_text(app))
    # The font the deploy guide installs, read from its own Unicode table (not CP437,
    # which has the half blocks that font lacks).
    assert not missing_glyphs(texts), "glyphs the console font lacks"
    assert app.sixteen.backgrounds, "the filter saw no colours"
    assert app.sixteen.backgrounds <= set(range(8)), sorted(app.sixteen.backgrounds)
    assert {2, 1, 4} <= app.sixteen.backgrounds  # green, red and blue panels


# -- lifecycle ---------------------------------------------------------------------------


async def test_kiosk_stops_when_the_app_ends(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-STOP0001": valid()})
    kiosk = app.kiosk
    async with app.run_test(size=SIZE) as pilot:
        scan(app, "PASS-STOP0001")
        await decided(pilot)
        assert kiosk.relay.pulses == 1
        assert not app.stopped
    assert app.stopped
    assert kiosk.relay.state is RelayState.OFF
    assert fake(app).closed
    with pytest.raises(RuntimeError):  # the journal is closed
        await kiosk.journal.recent(1)


@pytest.fixture
def sigterm_guard() -> Iterator[list[int]]:
    """If the app failed to take SIGTERM over, record it instead of killing pytest."""
    caught: list[int] = []

    def fallback(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    old = signal.signal(signal.SIGTERM, fallback)
    try:
        yield caught
    finally:
        signal.signal(signal.SIGTERM, old)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
async def test_signal_exits_cleanly_with_the_relay_off(
    tmp_path: Path, sigterm_guard: list[int], sig: signal.Signals
) -> None:
    old_hup = signal.signal(signal.SIGHUP, lambda s, f: sigterm_guard.append(s))
    try:
        app = make_app(tmp_path)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            os.kill(os.getpid(), sig)
            await eventually(lambda: app.return_code is not None or bool(sigterm_guard))
            assert not sigterm_guard, "the app did not handle the signal"
            assert app.return_code == 0
    finally:
        signal.signal(signal.SIGHUP, old_hup)
    assert app.stopped
    assert app.kiosk.relay.state is RelayState.OFF


async def test_startup_error_is_shown_and_exits_non_zero(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    app = make_app(tmp_path, journal=blocker / "journal.sqlite3")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: isinstance(app.screen, StartupErrorScreen))
        assert not app.started
        await pilot.pause()
        text = screen_text(app)
        assert "journal" in text
        assert "Traceback" not in text
        assert "The door stays locked" in text
        await pilot.press(*"PASS-AAAA0001")  # a scanner typing changes nothing
        assert app.return_code is None
        await pilot.press("enter")
        await eventually(lambda: app.return_code is not None)
    assert app.return_code == EXIT_CONFIG
    assert app.stopped
    assert app.kiosk.relay.state is RelayState.OFF


async def test_startup_error_exits_by_itself(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    app = make_app(tmp_path, journal=blocker / "journal.sqlite3")
    app.ERROR_EXIT_S = 0.05
    async with app.run_test(size=SIZE):
        await eventually(lambda: app.return_code is not None)
    assert app.return_code == EXIT_CONFIG


async def test_systemd_ready_watchdog_and_stopping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    messages: list[str] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)

        def received(text: str) -> bool:
            with contextlib.suppress(BlockingIOError):
                while True:
                    messages.append(sock.recv(4096).decode())
            return text in messages

        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        monkeypatch.setenv("WATCHDOG_USEC", "200000")
        app = make_app(tmp_path)
        async with app.run_test(size=SIZE):
            await eventually(lambda: received("WATCHDOG=1"))
            assert messages[0] == "READY=1"
            assert app.started
        assert received("STOPPING=1")
    assert messages[-1] == "STOPPING=1"


async def test_no_ready_when_the_kiosk_cannot_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "notify.sock"
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        app = make_app(tmp_path, journal=blocker / "journal.sqlite3")
        app.ERROR_EXIT_S = 0.05
        async with app.run_test(size=SIZE):
            await eventually(lambda: app.return_code is not None)
        with pytest.raises(BlockingIOError):
            sock.recv(4096)


# -- end to end: the project's own PassQR server over loopback HTTP ----------------------


async def test_end_to_end_with_the_local_server(tmp_path: Path, local_server: LocalServer) -> None:
    codes = local_server.seed()
    config = make_config(tmp_path, base_url=local_server.base_url)
    kiosk = Kiosk(config, api_key=local_server.api_key, sources=[KeyboardSource()])
    app = KioskApp(kiosk)
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: kiosk.gate.status.server.value == "ok")
        await pilot.press(*codes["season"], "enter")
        decision = await decided(pilot, 1)
        assert decision.accepted
        text = screen_text(app)
        assert shows_big(text, "ACCEPTED")
        assert "Grace Hopper" in text
        assert "Pass: Demo Festival" in text
        assert "Uses left: unlimited" in text
        await pilot.press("f2")
        await eventually(lambda: isinstance(app.screen, ManualEntryScreen))
        await pilot.press(*codes["used"], "enter")
        decision = await decided(pilot, 2)
        assert not decision.accepted
        text = screen_text(app)
        assert shows_reason(text, "Already used")
        assert "Alan Turing" in text
        assert "Server ok" in text
        assert "Today 1 accepted, 1 rejected" in text
    assert app.stopped


async def test_the_demo_environment_end_to_end(tmp_path: Path) -> None:
    """What ``passqr-scanner demo`` builds: a seeded server, a simulated scanner, a keyboard."""
    from scanner.demo import demo_environment

    with demo_environment(interval_s=60.0, loop=False) as env:
        app = KioskApp(Kiosk(env.config, api_key=env.api_key), demo_codes=env.codes)
        async with app.run_test(size=SIZE) as pilot:
            assert env.codes["season"] in screen_text(app)
            # The demo's own scanner plays the valid pass first (after its start delay).
            decision = await decided(pilot, 1, within_s=15)
            assert decision.accepted
            assert "Ada Lovelace" in screen_text(app)
            await pilot.press(*env.codes["revoked"], "enter")
            decision = await decided(pilot, 2)
            assert decision.message == "Pass revoked"
            text = screen_text(app)
            assert all(source.name in text for source in app.kiosk.sources)
        assert app.stopped
