"""The gate floor (issue 13): what a guest and a steward see, and can do, under pressure.

Tried as a venue would: a 7" panel (64x18 with the deploy guide's font), a wedge
scanner typing into the kiosk, stray keys, staff screens open while guests scan, a
server that comes back, a pass used twice. The kiosk is the real one (journal, gate,
keyboard source, relay driver) with a fake PassQR client; what the screen shows is
read back from the app's own SVG export.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from scanner import runtime
from scanner.config import ApiConfig, Config, GateConfig, JournalConfig, RelayConfig
from scanner.errors import NetworkError
from scanner.models import REASON_TEXT, Page, RawScan, Reason, TemplateInfo
from scanner.models import ValidationOutcome as Outcome
from scanner.pipeline import LET_IN_TEXT
from scanner.relay import NoRelay
from scanner.runtime import Kiosk
from scanner.sources import KeyboardSource, Source
from scanner.status import ServerState
from scanner.ui.app import KioskApp
from scanner.ui.screens import ConfirmQuitScreen, RecentScansScreen
from scanner.ui.staff import StaffScreen
from scanner.ui.widgets import DecisionBar
from tests.functional.test_ui import (
    BrokenSource,
    decided,
    decision_with,
    panel_of,
    refused,
    scan,
    screen_text,
    shows_big,
    shows_reason,
    valid,
)
from tests.support.fakes import FakeClient
from tests.support.waiting import eventually

SMALL = (64, 18)
"""A 1024x600 panel with the deploy guide's 16x32 font."""
SIZES = [(80, 24), SMALL]


@pytest.fixture(autouse=True)
def _no_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


class Client(FakeClient):
    """The test_ui fake, with a server that can go away and come back."""

    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        super().__init__(answers)
        self.down = False
        self.probes = 0

    async def list_templates(self, *, page: int = 1, limit: int = 20) -> Page[TemplateInfo]:
        self.probes += 1
        if self.down:
            raise NetworkError("cannot reach http://127.0.0.1:8797/api/v1: connection refused")
        return await super().list_templates(page=page, limit=limit)


def make_app(
    tmp_path: Path,
    answers: dict[str, Any] | None = None,
    *,
    sources: list[Source] | None = None,
    hold: float = 60.0,
    show_data: list[str] | None = None,
) -> KioskApp:
    config = Config(
        api=ApiConfig(base_url="http://127.0.0.1:9/api/v1", timeout_s=2.0),
        gate=GateConfig(
            name="North gate", repeat_ignore_s=0.0, result_hold_s=hold, show_data=show_data or []
        ),
        relay=RelayConfig(type="none", pulse_ms=50),
        journal=JournalConfig(path=tmp_path / "journal.sqlite3"),
    )
    kiosk = Kiosk(
        config,
        api_key="pqr_live_test",
        client=Client(answers),
        sources=[KeyboardSource()] if sources is None else sources,
        relay=NoRelay(pulse_ms=50),
    )
    return KioskApp(kiosk)


def client_of(app: KioskApp) -> Client:
    client = app.kiosk.client
    assert isinstance(client, Client)
    return client


async def started(pilot: Pilot[int]) -> KioskApp:
    app = pilot.app
    assert isinstance(app, KioskApp)
    await eventually(lambda: app.started and app.kiosk.gate.status.server is ServerState.OK)
    app.gate_screen.refresh_status()
    await pilot.pause()
    return app


# -- 1. the reason and the holder, readable on the real console, at both sizes ------------

REFUSALS = [text for reason, text in REASON_TEXT.items() if reason is not Reason.VALID] + [
    "Possibly admitted on the first try",
    "Scanner out of service",
]


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "64x18"])
@pytest.mark.parametrize("reason", REFUSALS)
async def test_verdict_reason_and_holder_are_all_on_screen(
    tmp_path: Path, size: tuple[int, int], reason: str
) -> None:
    app = make_app(tmp_path)
    width = size[0] - 4
    async with app.run_test(size=size) as pilot:
        decision = decision_with(message=reason, holder="Alan Turing", template="Day pass")
        app.post_message(KioskApp.DecisionMade(decision))
        await eventually(lambda: panel_of(app).decision is decision)
        await pilot.pause()
        text = screen_text(app)
        assert shows_big(text, "REJECTED", width=width), text
        assert shows_reason(text, reason, width=width), text
        assert "Alan Turing" in text, text


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "64x18"])
async def test_admitted_shows_name_and_the_pass_data_the_venue_chose(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    answer = valid(holder="Ada Lovelace")
    answer.pass_.data.update({"seat": "12A", "table": 4, "diet": "vegan"})
    app = make_app(tmp_path, {"PASS-DATA0001": answer}, show_data=["table", "seat", "row"])
    async with app.run_test(size=size) as pilot:
        await started(pilot)
        scan(app, "PASS-DATA0001")
        await decided(pilot)
        text = screen_text(app)
        assert shows_big(text, "ACCEPTED", width=size[0] - 4)
        assert "Ada Lovelace" in text
        assert "Table 4   Seat 12A" in text  # in the configured order; no "row" in this pass
        assert "vegan" not in text  # not chosen for the door


# -- 2. staff screens and the quit dialog hide no scan ------------------------------------


async def test_a_scan_during_staff_mode_is_shown_over_it(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-STAF0001": valid(holder="Grace Hopper")}, hold=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("f4")
        await eventually(lambda: isinstance(app.screen, StaffScreen))
        scan(app, "PASS-STAF0001")
        await decided(pilot)
        bar = app.screen.query_one(DecisionBar)
        assert bar.display
        text = screen_text(app)
        assert shows_big(text, "ACCEPTED")
        assert "Grace Hopper" in text
        assert "Staff: find a pass" in text  # staff keep their screen
        await eventually(lambda: not bar.display)  # gone after result_hold_s, like the gate's


async def test_a_wedge_scan_into_the_quit_dialog_is_not_lost(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-QUIT0001": valid(holder="Typed Past Quit")})
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("f10")
        await eventually(lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.press(*"PASS-QUIT0001", "enter")
        decision = await decided(pilot)
        assert decision.scan.code == "PASS-QUIT0001"
        assert app.screen is app.gate_screen
        assert "Typed Past Quit" in screen_text(app)
        assert app.return_code is None


async def test_a_serial_scan_closes_the_quit_dialog(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-QUIT0002": refused(Outcome.EXPIRED)})
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        await pilot.press("f10")
        await eventually(lambda: isinstance(app.screen, ConfirmQuitScreen))
        scan(app, "PASS-QUIT0002")
        await decided(pilot)
        await eventually(lambda: app.screen is app.gate_screen)
        await pilot.pause()
        assert shows_reason(screen_text(app), "Expired")
        assert app.return_code is None


# -- 3. stray keys do not spoil the next wedge scan ---------------------------------------


async def test_stray_keys_before_a_scan_are_dropped(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-WEDG0001": valid()})
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        keyboard = app.kiosk.keyboard
        assert keyboard is not None
        keyboard.key_gap_s = 0.2
        await pilot.press(*"xyz")
        await asyncio.sleep(0.3)  # a person's pause: the partial code is stale
        await pilot.press(*"PASS-WEDG0001", "enter")
        decision = await decided(pilot)
        assert decision.scan.code == "PASS-WEDG0001"
        assert decision.accepted


async def test_a_stale_partial_code_is_not_sent(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        keyboard = app.kiosk.keyboard
        assert keyboard is not None
        keyboard.key_gap_s = 0.2
        await pilot.press(*"PASS-PART")
        await asyncio.sleep(0.3)
        await pilot.press("enter")
        await pilot.pause(0.1)
        assert client_of(app).codes == []
        assert app.kiosk.gate.status.rejected_today == 0
        assert keyboard.dropped == 1


def test_keyboard_source_tells_a_burst_from_a_pause() -> None:
    got: list[str] = []
    keyboard = KeyboardSource()
    keyboard._emit = lambda raw: got.append(raw.text)
    t = 100.0
    for ch in "xyz":
        keyboard.feed_key(ch, at=t)
        t += 0.15  # a person typing
    t += 2.0
    for ch in "PASS-AAAA0001":
        keyboard.feed_key(ch, at=t)
        t += 0.004  # a scanner's burst
    keyboard.feed_key(None, enter=True, at=t)
    assert got == ["PASS-AAAA0001"]


# -- 4. out of service: no invitation to scan --------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=["80x24", "64x18"])
@pytest.mark.parametrize("cause", ["key rejected", "journal refusing", "scanner missing"])
async def test_an_idle_gate_that_cannot_admit_says_out_of_service(
    tmp_path: Path, size: tuple[int, int], cause: str
) -> None:
    sources: list[Source] | None = None
    if cause == "scanner missing":
        sources = [BrokenSource("serial:/dev/ttyACM0")]
    app = make_app(tmp_path, sources=sources)
    async with app.run_test(size=size) as pilot:
        await eventually(lambda: app.started)
        status = app.kiosk.gate.status
        if cause == "key rejected":
            status.halted = "API key rejected: key revoked"
        elif cause == "journal refusing":
            status.journal_fault = "disk below the journal's reserve"
        await eventually(lambda: panel_of(app).out_of_service)
        await pilot.pause()
        text = screen_text(app)
        assert shows_big(text, "Out of service", width=size[0] - 4) or "OUT OF SERVICE" in text
        assert "Please see a steward" in text
        assert not shows_big(text, "Scan your pass", width=size[0] - 4)
        assert "Hold your pass code" not in text
        if cause != "scanner missing":
            status.halted = status.journal_fault = ""
            await eventually(lambda: not panel_of(app).out_of_service)
            await pilot.pause()
            assert "Hold your pass code to the scanner" in screen_text(app)


# -- 5. OFFLINE clears within seconds of the server's return --------------------------


async def test_offline_clears_within_seconds_of_the_server_returning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "PROBE_RETRY_S", 0.05)
    down = NetworkError("cannot reach http://127.0.0.1:8797/api/v1: connection refused")
    app = make_app(tmp_path, {"PASS-DOWN0001": down})
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)  # the first probe said OK: the next is due in a minute
        client = client_of(app)
        client.down = True
        scan(app, "PASS-DOWN0001")
        await decided(pilot)
        assert app.kiosk.gate.status.server is ServerState.UNREACHABLE
        await eventually(lambda: client.probes >= 2, 2.0)  # probed again at once
        client.down = False
        await eventually(lambda: app.kiosk.gate.status.server is ServerState.OK, 2.0)
        app.gate_screen.refresh_status()
        await pilot.pause()
        assert " OFFLINE " not in screen_text(app)


def test_the_probe_retries_within_a_few_seconds() -> None:
    assert runtime.PROBE_RETRY_S <= 5.0 < runtime.PROBE_INTERVAL_S


# -- 6. guests read plain words; staff get the detail ------------------------------------


async def test_technical_text_stays_off_the_guest_screen(tmp_path: Path) -> None:
    error = "cannot reach http://127.0.0.1:8797/api/v1: All connection attempts failed"
    app = make_app(tmp_path, {"PASS-TECH0001": NetworkError(error)})
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        scan(app, "PASS-TECH0001")
        await decided(pilot)
        app.gate_screen.refresh_status()
        await pilot.pause()
        text = screen_text(app)
        assert shows_reason(text, "Server unreachable")
        assert "http://" not in text and "All connection attempts" not in text
        assert "Server unreachable  |  Today 0 accepted, 1 rejected" in text
        await pilot.press("f4")
        await eventually(lambda: isinstance(app.screen, StaffScreen))
        await pilot.pause()
        text = screen_text(app)
        assert "http://127.0.0.1:8797/api/v1" in text
        assert "connection attempts failed" in text  # wrapped: the whole of it is there


async def test_a_rejected_key_is_said_once(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        app.kiosk.gate.status.server = ServerState.REJECTED_KEY
        app.kiosk.gate.status.server_detail = "API key rejected"
        app.gate_screen.refresh_status()
        await pilot.pause()
        text = screen_text(app)
        assert "Server key rejected  |" in text
        assert "(API key rejected)" not in text


# -- 7. "Already used": when and where; staff can let a guest in ----------------------


async def test_already_used_says_when_and_where(tmp_path: Path) -> None:
    answers = {"PASS-USED0001": valid(holder="Alan Turing")}
    app = make_app(tmp_path, answers)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        scan(app, "PASS-USED0001")
        await decided(pilot, 1)
        answers["PASS-USED0001"] = refused(Outcome.USED)
        scan(app, "PASS-USED0001")
        decision = await decided(pilot, 2)
        assert decision.reason is Reason.USED
        await eventually(lambda: bool(panel_of(app).note))
        await pilot.pause()
        text = screen_text(app)
        assert re.search(r"Used \d+ s ago at North gate", text), text
        assert shows_reason(text, "Already used")
        assert "Alan Turing" in text


async def test_used_elsewhere_says_used_before(tmp_path: Path) -> None:
    app = make_app(tmp_path, {"PASS-USED0002": refused(Outcome.USED)})
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        scan(app, "PASS-USED0002")
        await decided(pilot)
        await eventually(lambda: panel_of(app).note == "Used before")
        await pilot.pause()
        assert "Used before" in screen_text(app)


async def test_staff_let_in_a_guest_possibly_admitted(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        refusal = decision_with(
            reason=Reason.USED, message="Possibly admitted on the first try", holder="Ada"
        )
        app.post_message(KioskApp.DecisionMade(refusal))
        await eventually(lambda: panel_of(app).decision is refusal)
        await pilot.pause()
        assert "F5  Let in" in screen_text(app)
        await pilot.press("f5")
        decision = await decided(pilot, 1)
        assert decision.accepted
        assert decision.message == LET_IN_TEXT
        assert decision.scan.manual and decision.scan.source == "staff"
        assert app.kiosk.relay.pulses == 1
        assert client_of(app).codes == []  # PassQR was not asked: no second use counted
        rows = await app.kiosk.journal.recent(1)
        assert rows[0]["decision"] == "accepted" and rows[0]["manual"]
        assert "Possibly admitted on the first try" in str(rows[0]["detail"])
        text = screen_text(app)
        assert LET_IN_TEXT in text and "F5  Let in" not in text


async def test_no_let_in_for_other_refusals(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        refusal = decision_with(reason=Reason.EXPIRED, message="Expired")
        app.post_message(KioskApp.DecisionMade(refusal))
        await eventually(lambda: panel_of(app).decision is refusal)
        await pilot.pause()
        assert "F5" not in screen_text(app)
        await pilot.press("f5")
        await pilot.pause(0.1)
        assert app.kiosk.relay.pulses == 0
        assert panel_of(app).decision is refusal


# -- 12. F3 keeps the reason when a port path is long ------------------------------------


async def test_recent_scans_keep_the_reason_beside_a_long_port_path(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    port = "serial:/dev/serial/by-id/usb-Honeywell_Imaging_Mobility_1900_21010B1234-if00"
    async with app.run_test(size=(80, 24)) as pilot:
        await started(pilot)
        app.kiosk.submit(RawScan(source=port, text="not a pass", at=time.monotonic()))
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
        await eventually(lambda: bool(screen.rows))
        await pilot.pause()
        text = screen_text(app)
        assert "Not a pass code" in text
        assert "rejected" in text
