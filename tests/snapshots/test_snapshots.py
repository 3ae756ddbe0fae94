"""One SVG per kiosk state, at 80x24, and the guest's states again at 64x18 (a 1024x600
panel with the deploy guide's 16x32 console font). ``pytest --snapshot-update`` rewrites them.

Deterministic by construction: a fixed gate name and holder names, a fresh
journal (so fixed counts), a fake PassQR client (so a fixed server state and
no network), no clock on screen, a result hold of an hour (the idle timer
never fires during a snapshot) and no blinking cursor.

The ``linux_console`` snapshots show what a 16-colour terminal (``TERM=linux``)
makes of the screen: Textual draws in true colour and the terminal's Rich
console downgrades each colour to the 16-colour palette on output; the export
always writes true colour, so a line filter does that same downgrade first.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style
from textual.color import Color
from textual.filter import LineFilter
from textual.pilot import Pilot
from textual.widgets import Input

from scanner.config import ApiConfig, Config, GateConfig, JournalConfig, RelayConfig
from scanner.errors import NetworkError
from scanner.models import (
    PassInfo,
    RawScan,
    Reason,
    TemplateInfo,
    ValidationOutcome,
    ValidationResult,
)
from scanner.relay import NoRelay
from scanner.runtime import Kiosk
from scanner.sources import KeyboardSource
from scanner.status import ServerState
from scanner.ui.app import KioskApp
from scanner.ui.screens import ConfirmQuitScreen, ManualEntryScreen, StartupErrorScreen
from scanner.ui.staff import StaffScreen
from scanner.ui.widgets import DecisionBar
from tests.support.fakes import FakeClient
from tests.support.waiting import eventually

SIZE = (80, 24)
SMALL = (64, 18)

SnapCompare = Callable[..., bool]
RunBefore = Callable[[Pilot[int]], Awaitable[None]]

ANSWERS: dict[str, Any] = {
    "PASS-GOOD0001": ValidationResult(
        outcome=ValidationOutcome.VALID,
        result="valid",
        message="",
        pass_=PassInfo(
            code="PASS-GOOD0001",
            holder_name="Ada Lovelace",
            max_uses=5,
            uses_count=2,
            data={"seat": "12A", "table": 4},
        ),
        template=TemplateInfo(name="Demo Festival"),
    ),
    "PASS-USED0001": ValidationResult(
        outcome=ValidationOutcome.USED,
        result="used",
        message="pass has no uses left",
        pass_=PassInfo(code="PASS-USED0001", holder_name="Alan Turing", max_uses=1, uses_count=1),
        template=TemplateInfo(name="Demo Festival"),
    ),
    "PASS-DOWN0001": NetworkError("cannot connect to the server: connection refused"),
}

DEMO_CODES = {"season": "PASS-SEAS0001", "valid": "PASS-GOOD0001", "expired": "PASS-EXPD0001"}


@pytest.fixture(autouse=True)
def _no_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


SEAT_PASSES = tuple(
    PassInfo(code=f"PASS-SEAT000{i}", template_id="t1", uses_count=int(i < 3)) for i in range(8)
)
TEMPLATES = (TemplateInfo(id="t1", name="Demo Festival"),)


class SixteenColours(LineFilter):
    """Each colour as a 16-colour terminal shows it (Rich's own downgrade)."""

    def apply(self, segments: list[Segment], background: Color) -> list[Segment]:
        out = []
        for text, style, control in segments:
            if style is not None:
                fg = style.color.downgrade(ColorSystem.STANDARD) if style.color else None
                bg = style.bgcolor.downgrade(ColorSystem.STANDARD) if style.bgcolor else None
                style = style + Style(color=fg, bgcolor=bg)
            out.append(Segment(text, style, control))
        return out


class LinuxConsoleApp(KioskApp):
    def get_line_filters(self) -> list[LineFilter]:
        return [*super().get_line_filters(), SixteenColours()]


def build(
    tmp_path: Path,
    *,
    app_class: type[KioskApp] = KioskApp,
    demo_codes: dict[str, str] | None = None,
    journal: Path | None = None,
) -> KioskApp:
    config = Config(
        api=ApiConfig(base_url="http://127.0.0.1:9/api/v1"),
        gate=GateConfig(
            name="Main entrance",
            repeat_ignore_s=0.0,
            result_hold_s=3600.0,
            show_data=["seat", "table"],
        ),
        relay=RelayConfig(type="none", pulse_ms=50),
        journal=JournalConfig(path=journal or tmp_path / "journal.sqlite3"),
    )
    kiosk = Kiosk(
        config,
        api_key="pqr_live_test",
        client=FakeClient(ANSWERS, passes=SEAT_PASSES, templates=TEMPLATES),
        sources=[KeyboardSource()],
        relay=NoRelay(pulse_ms=50),
    )
    return app_class(kiosk, demo_codes=demo_codes)


async def ready(pilot: Pilot[int]) -> KioskApp:
    """The kiosk is up and the first server probe has answered."""
    app = pilot.app
    assert isinstance(app, KioskApp)
    await eventually(lambda: app.kiosk.gate.status.server is ServerState.OK)
    app.gate_screen.refresh_status()
    await pilot.pause()
    return app


async def shown(app: KioskApp, count: int) -> None:
    """Wait until the screen shows the ``count``-th decision."""
    status = app.kiosk.gate.status
    await eventually(
        lambda: (
            status.accepted_today + status.rejected_today == count
            and app.gate_screen.panel.decision is status.last
        )
    )


def scanning(*codes: str) -> RunBefore:
    """Scan ``codes`` one after another; the snapshot shows the last decision."""

    async def run_before(pilot: Pilot[int]) -> None:
        app = await ready(pilot)
        for n, code in enumerate(codes, 1):
            app.kiosk.submit(RawScan(source="keyboard", text=code, at=time.monotonic()))
            await shown(app, n)
        panel = app.gate_screen.panel
        if panel.decision is not None and panel.decision.reason is Reason.USED:
            await eventually(lambda: bool(panel.note))  # "Used before": no admission here
        app.gate_screen.refresh_status()
        await pilot.pause()

    return run_before


async def out_of_service(pilot: Pilot[int]) -> None:
    app = await ready(pilot)
    app.kiosk.gate.status.halted = "API key rejected: key revoked"
    app.kiosk.gate.status.server = ServerState.REJECTED_KEY
    await eventually(lambda: app.gate_screen.panel.out_of_service)
    app.gate_screen.refresh_status()
    await pilot.pause()


async def idle(pilot: Pilot[int]) -> None:
    await ready(pilot)


def test_idle(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(build(tmp_path), run_before=idle, terminal_size=SIZE)


def test_idle_demo(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = build(tmp_path, demo_codes=DEMO_CODES)
    assert snap_compare(app, run_before=idle, terminal_size=SIZE)


def test_accepted(snap_compare: SnapCompare, tmp_path: Path) -> None:
    run_before = scanning("PASS-GOOD0001")
    assert snap_compare(build(tmp_path), run_before=run_before, terminal_size=SIZE)


def test_rejected(snap_compare: SnapCompare, tmp_path: Path) -> None:
    run_before = scanning("PASS-GOOD0001", "PASS-USED0001")
    assert snap_compare(build(tmp_path), run_before=run_before, terminal_size=SIZE)


def test_server_unreachable(snap_compare: SnapCompare, tmp_path: Path) -> None:
    run_before = scanning("PASS-DOWN0001")
    assert snap_compare(build(tmp_path), run_before=run_before, terminal_size=SIZE)


def test_out_of_service(snap_compare: SnapCompare, tmp_path: Path) -> None:
    assert snap_compare(build(tmp_path), run_before=out_of_service, terminal_size=SIZE)


def test_scan_during_staff_mode(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        app = await ready(pilot)
        await pilot.press("f4")
        await eventually(lambda: isinstance(app.screen, StaffScreen))
        staff = app.screen
        assert isinstance(staff, StaffScreen)
        staff.query_one(Input).cursor_blink = False
        await eventually(lambda: staff.attendance is not None)
        app.kiosk.submit(RawScan(source="serial", text="PASS-USED0001", at=time.monotonic()))
        await shown(app, 1)
        await eventually(lambda: bool(staff.query_one(DecisionBar).note))
        await pilot.pause()

    assert snap_compare(build(tmp_path), run_before=run_before, terminal_size=SIZE)


# -- a 7-inch panel: 64x18 with the deploy guide's font --------------------------------------


def test_idle_small_panel(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = build(tmp_path, app_class=LinuxConsoleApp)
    assert snap_compare(app, run_before=idle, terminal_size=SMALL)


def test_accepted_small_panel(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = build(tmp_path, app_class=LinuxConsoleApp)
    assert snap_compare(app, run_before=scanning("PASS-GOOD0001"), terminal_size=SMALL)


def test_rejected_small_panel(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = build(tmp_path, app_class=LinuxConsoleApp)
    assert snap_compare(app, run_before=scanning("PASS-USED0001"), terminal_size=SMALL)


def test_server_unreachable_small_panel(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = build(tmp_path, app_class=LinuxConsoleApp)
    assert snap_compare(app, run_before=scanning("PASS-DOWN0001"), terminal_size=SMALL)


def test_out_of_service_small_panel(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = build(tmp_path, app_class=LinuxConsoleApp)
    assert snap_compare(app, run_before=out_of_service, terminal_size=SMALL)


def test_idle_linux_console_16_colours(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = build(tmp_path, app_class=LinuxConsoleApp)
    assert snap_compare(app, run_before=idle, terminal_size=SIZE)


def test_accepted_linux_console_16_colours(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = build(tmp_path, app_class=LinuxConsoleApp)
    assert snap_compare(app, run_before=scanning("PASS-GOOD0001"), terminal_size=SIZE)


def test_rejected_linux_console_16_colours(snap_compare: SnapCompare, tmp_path: Path) -> None:
    app = build(tmp_path, app_class=LinuxConsoleApp)
    assert snap_compare(app, run_before=scanning("PASS-USED0001"), terminal_size=SIZE)


def test_manual_entry(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        app = await ready(pilot)
        await pilot.press("f2")
        await eventually(lambda: isinstance(app.screen, ManualEntryScreen))
        app.screen.query_one(Input).cursor_blink = False
        await pilot.press(*"PASS-AB")
        await pilot.pause()

    assert snap_compare(build(tmp_path), run_before=run_before, terminal_size=SIZE)


def test_confirm_quit(snap_compare: SnapCompare, tmp_path: Path) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        app = await ready(pilot)
        await pilot.press("f10")
        await eventually(lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.pause()

    assert snap_compare(build(tmp_path), run_before=run_before, terminal_size=SIZE)


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_startup_error(snap_compare: SnapCompare, tmp_path: Path) -> None:
    # A fixed path that can never be a directory: the message is the same on every machine.
    app = build(tmp_path, journal=Path("/dev/null/journal.sqlite3"))
    app.ERROR_EXIT_S = 3600.0

    async def run_before(pilot: Pilot[int]) -> None:
        await eventually(lambda: isinstance(pilot.app.screen, StartupErrorScreen))
        await pilot.pause()

    assert snap_compare(app, run_before=run_before, terminal_size=SIZE)
