"""Every character the kiosk draws is in the console font the deploy guide installs.

The font's own Unicode table is read (:mod:`tests.support.console_font`): a code point
missing there is drawn by the kernel as a diamond, so a test that trusted CP437 (which
has the half blocks) passed while the real console showed ``♦♦♦`` under REJECTED.
The walk covers the gate in every state, a rejection for every reason, the staff
screens F2 to F5, the PIN and quit dialogs and the startup error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from scanner.config import ApiConfig, Config, GateConfig, JournalConfig, RelayConfig, StaffConfig
from scanner.models import REASON_TEXT, Decision, Reason
from scanner.pipeline import DOOR_FAULT_TEXT
from scanner.runtime import Kiosk
from scanner.sources import KeyboardSource
from scanner.ui import bigtext
from scanner.ui.app import KioskApp
from scanner.ui.pin import StaffPinScreen
from scanner.ui.screens import (
    ConfirmQuitScreen,
    ManualEntryScreen,
    RecentScansScreen,
    StartupErrorScreen,
)
from scanner.ui.staff import PassDetailScreen, StaffScreen
from tests.conftest import LocalServer
from tests.functional.test_ui import decision_with, panel_of, screen_text, shows_big
from tests.support.console_font import DEPLOY_FONT, console_fonts, missing_glyphs
from tests.support.waiting import eventually

SIZES = [(80, 24), (64, 18)]


@pytest.fixture(autouse=True)
def _no_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


def make_app(tmp_path: Path, server: LocalServer, *, pin: str | None = None) -> KioskApp:
    config = Config(
        api=ApiConfig(base_url=server.base_url, timeout_s=5.0),
        gate=GateConfig(name="North gate", repeat_ignore_s=0.0, result_hold_s=3600.0),
        relay=RelayConfig(type="none", pulse_ms=50),
        journal=JournalConfig(path=tmp_path / "journal.sqlite3"),
        staff=StaffConfig(pin=pin),
    )
    return KioskApp(Kiosk(config, api_key=server.api_key, sources=[KeyboardSource()]))


def every_decision() -> list[Decision]:
    """A rejection for each reason a person can read, and each kind of admission."""
    out = [decision_with(reason=reason, message=text) for reason, text in REASON_TEXT.items()]
    out += [
        decision_with(message="Possibly admitted on the first try", reason=Reason.USED),
        decision_with(message="Scanner out of service"),
        decision_with(message="Interrupted: pass may have been used"),
        decision_with(accepted=True, reason=Reason.VALID, message="Welcome", template="Day"),
        decision_with(accepted=True, reason=Reason.VALID, message="Welcome (offline)"),
        decision_with(accepted=True, reason=Reason.VALID, message="ADMITTED OFFLINE - NOT CHECKED"),
        decision_with(
            accepted=True, reason=Reason.VALID, message=DOOR_FAULT_TEXT, relay_fault="gone"
        ),
    ]
    return out


async def show(pilot: Pilot[int], decision: Decision) -> str:
    app = pilot.app
    assert isinstance(app, KioskApp)
    app.post_message(KioskApp.DecisionMade(decision))
    await eventually(lambda: panel_of(app).decision is decision)
    await pilot.pause()
    return screen_text(app)


def test_the_checked_font_is_the_deploy_guides() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    for setting in ('CODESET="Lat15"', 'FONTFACE="Terminus"', 'FONTSIZE="16x32"'):
        assert setting in guide, f"docs/deploy.md no longer sets {setting}: check another font"
    assert DEPLOY_FONT.name == "Lat15-Terminus32x16.psf.gz"


def test_the_fonts_are_read() -> None:
    fonts = console_fonts()
    for name, chars in fonts:
        assert "\u2588" in chars, name  # the full block the big letters are made of
        assert "\u2580" not in chars and "\u2584" not in chars, name  # the half blocks are not
        assert "A" in chars and "\u2500" in chars, name


def test_the_block_letters_use_only_the_font() -> None:
    every = "".join(sorted(bigtext.GLYPHS))
    assert not missing_glyphs(bigtext.render(every))


@pytest.mark.parametrize("size", SIZES)
async def test_every_gate_state_draws_with_the_console_font(
    tmp_path: Path, local_server: LocalServer, size: tuple[int, int]
) -> None:
    console_fonts()
    local_server.seed()
    app = make_app(tmp_path, local_server)
    texts: list[str] = []
    async with app.run_test(size=size) as pilot:
        await eventually(lambda: app.started)
        await pilot.pause()
        texts.append(screen_text(app))
        for decision in every_decision():
            texts.append(await show(pilot, decision))
        app.gate_screen.show_idle()
        app.kiosk.gate.status.halted = "API key rejected: key revoked"
        app.gate_screen.refresh_status()
        await pilot.pause()
        texts.append(screen_text(app))
    assert not missing_glyphs(texts)


async def test_every_staff_screen_draws_with_the_console_font(
    tmp_path: Path, local_server: LocalServer
) -> None:
    console_fonts()
    codes = local_server.seed()
    app = make_app(tmp_path, local_server, pin="1234")
    texts: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: app.started)
        await pilot.press(*codes["season"], "enter")
        await pilot.press(*"not a pass", "enter")
        await eventually(lambda: app.kiosk.gate.status.rejected_today == 1)
        await pilot.press("f2")
        await eventually(lambda: isinstance(app.screen, ManualEntryScreen))
        app.screen.query_one(Input).cursor_blink = False
        await pilot.press(*"PASS-AB")
        await pilot.pause()
        texts.append(screen_text(app))
        await pilot.press("escape", "f3")
        await eventually(lambda: isinstance(app.screen, RecentScansScreen))
        await eventually(lambda: app.screen.query_one(DataTable).row_count >= 2)
        await pilot.pause()
        texts.append(screen_text(app))
        await pilot.press("escape", "f4")
        await eventually(lambda: isinstance(app.screen, StaffPinScreen))
        await pilot.press(*"0000", "enter")
        await pilot.pause()
        texts.append(screen_text(app))
        await pilot.press(*"1234", "enter")
        await eventually(lambda: isinstance(app.screen, StaffScreen))
        staff = app.screen
        assert isinstance(staff, StaffScreen)
        await pilot.press(*"example", "enter")
        await eventually(lambda: staff.result is not None and not staff.searching)
        await pilot.pause()
        texts.append(screen_text(app))
        # A scan decided while staff are busy shows over their screen.
        texts.append(await show(pilot, decision_with(reason=Reason.USED)))
        assert shows_big(texts[-1], "REJECTED")
        await pilot.press("enter")
        await eventually(lambda: isinstance(app.screen, PassDetailScreen))
        detail = app.screen
        assert isinstance(detail, PassDetailScreen)
        await eventually(lambda: detail.checked)
        await pilot.pause()
        texts.append(screen_text(app))
        await pilot.press("escape", "escape")
        await eventually(lambda: app.screen is app.gate_screen)
        await pilot.press("f10")
        await eventually(lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.pause()
        texts.append(screen_text(app))
    assert not missing_glyphs(texts)


async def test_the_startup_error_draws_with_the_console_font(tmp_path: Path) -> None:
    console_fonts()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    down = LocalServer(base_url="http://127.0.0.1:9/api/v1", api_key="pqr_live_x", db_path=tmp_path)
    app = make_app(tmp_path, down)
    app.kiosk.journal.path = blocker / "journal.sqlite3"
    app.ERROR_EXIT_S = 3600.0
    texts: list[Any] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: isinstance(app.screen, StartupErrorScreen))
        await pilot.pause()
        texts.append(screen_text(app))
    assert "CANNOT START" not in texts[0]  # drawn in block letters
    assert not missing_glyphs(texts)
