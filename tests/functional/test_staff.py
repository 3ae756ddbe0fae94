"""Staff mode (F4) driven with Pilot: search, details, manual admission, PIN.

The kiosk is the real one (journal, gate, keyboard source) talking to the project's
own PassQR server over loopback; what the screen shows is read from the app's SVG
export, as a person at the gate would see it.
"""

from __future__ import annotations

import asyncio
import html
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable, Input

from scanner.api import PassQRClient
from scanner.config import load_config
from scanner.runtime import Kiosk
from scanner.sources import KeyboardSource
from scanner.ui.app import KioskApp
from scanner.ui.pin import StaffPinScreen
from scanner.ui.staff import PassDetailScreen, StaffScreen
from tests.conftest import LocalServer
from tests.support.console_font import missing_glyphs
from tests.support.waiting import eventually

SIZE = (80, 24)


@pytest.fixture(autouse=True)
def _no_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


def make_app(
    tmp_path: Path, server: LocalServer, *, policy: str = "deny", pin: str | None = None
) -> KioskApp:
    """The kiosk as ``run`` starts it: from a config file (``[staff] pin`` among its keys)."""
    text = (
        f'[api]\nbase_url = "{server.base_url}"\ntimeout_s = 5.0\n'
        '[gate]\nname = "North gate"\nrepeat_ignore_s = 0.0\nresult_hold_s = 60.0\n'
        f'[offline]\npolicy = "{policy}"\n'
        '[relay]\ntype = "none"\npulse_ms = 50\n'
        '[journal]\npath = "journal.sqlite3"\n'
    )
    if pin is not None:
        text += f'[staff]\npin = "{pin}"\n'
    path = tmp_path / "scanner.toml"
    path.write_text(text)
    config = load_config(path)
    assert config.staff.pin == pin
    kiosk = Kiosk(config, api_key=server.api_key, sources=[KeyboardSource()])
    return KioskApp(kiosk)


_TEXT = re.compile(r'<text class="[^"]*-r\d+" x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>')


def screen_text(app: KioskApp) -> str:
    rows: dict[float, dict[int, str]] = {}
    for x, y, text in _TEXT.findall(app.export_screenshot()):
        row = rows.setdefault(float(y), {})
        col = round(float(x) / 12.2)
        for i, ch in enumerate(html.unescape(text).replace("\xa0", " ")):
            row[col + i] = ch
    return "\n".join(
        "".join(row.get(i, " ") for i in range(max(row) + 1)).rstrip()
        for _, row in sorted(rows.items())
    )


async def open_staff(pilot: Pilot[int]) -> StaffScreen:
    app = pilot.app
    assert isinstance(app, KioskApp)
    await eventually(lambda: app.started)
    await pilot.press("f4")
    await eventually(lambda: isinstance(app.screen, StaffScreen))
    screen = app.screen
    assert isinstance(screen, StaffScreen)
    await pilot.pause()
    return screen


async def search(pilot: Pilot[int], screen: StaffScreen, text: str) -> None:
    screen.result = None
    await pilot.click("#query")
    screen.query_one("#query", Input).value = ""
    await pilot.press(*text, "enter")
    await eventually(lambda: screen.result is not None and not screen.searching)
    await pilot.pause()


async def open_first(pilot: Pilot[int], screen: StaffScreen) -> PassDetailScreen:
    table = screen.query_one("#results", DataTable)
    table.focus()
    table.move_cursor(row=0)
    await pilot.press("enter")
    app = pilot.app
    await eventually(lambda: isinstance(app.screen, PassDetailScreen))
    detail = app.screen
    assert isinstance(detail, PassDetailScreen)
    await eventually(lambda: detail.checked)
    await pilot.pause()
    return detail


async def journaled(app: KioskApp, count: int) -> list[dict[str, object]]:
    """The journal's latest rows, once ``count`` scans have been decided."""
    async with asyncio.timeout(10):
        while True:
            rows = await app.kiosk.journal.recent(10)
            if len(rows) >= count and all(r["decision"] for r in rows):
                return rows
            await asyncio.sleep(0.01)


async def create_pass(server: LocalServer, **fields: Any) -> str:
    async with PassQRClient(server.base_url, server.api_key) as client:
        template = (await client.list_templates()).items[0].id
        assert template is not None
        created = await client.create_pass(template_id=template, **fields)
    assert created.code is not None
    return created.code


# -- searching ------------------------------------------------------------------------------


async def test_search_by_name_and_by_email_from_passqr(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.seed()
    app = make_app(tmp_path, local_server)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_staff(pilot)
        assert "Staff: find a pass" in screen_text(app)
        await search(pilot, screen, "grace")
        assert screen.result is not None
        assert screen.result.source == "PassQR API"
        assert [p.holder_name for p in screen.result.passes] == ["Grace Hopper"]
        text = screen_text(app)
        assert "From PassQR: 1 of 5 passes match" in text
        assert "Grace Hopper" in text and "grace@example.com" in text

        await search(pilot, screen, "ALAN@example")
        assert [p.holder_name for p in screen.result.passes] == ["Alan Turing"]

        await search(pilot, screen, "example.com")
        assert screen.result.matched == 5
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.gate_screen)


async def test_search_uses_the_offline_copy_when_there_is_one(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.seed()
    app = make_app(tmp_path, local_server)
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        # A pass only the offline copy knows: proof of where the answer came from.
        offline_only = {
            "code": "PASS-OFFL0001",
            "holder_name": "Olga Zoë Offline",
            "holder_email": "olga@example.com",
            "status": "active",
            "uses_count": 0,
            "max_uses": 1,
        }
        await app.kiosk.journal.replace_cache([offline_only], datetime.now(UTC))
        screen = await open_staff(pilot)
        await search(pilot, screen, "zoe OLGA")
        assert screen.result is not None
        assert screen.result.source == "offline copy"
        assert [p.code for p in screen.result.passes] == ["PASS-OFFL0001"]
        assert "From offline copy (synced " in screen_text(app)
        await pilot.press("f6")  # ask PassQR itself
        await eventually(
            lambda: screen.result is not None and screen.result.source != "offline copy"
        )
        await pilot.pause()
        assert screen.result.passes == []
        assert "From PassQR: 0 of 5 passes match" in screen_text(app)


async def test_allow_known_kiosk_searches_its_synced_copy(
    tmp_path: Path, local_server: LocalServer
) -> None:
    codes = local_server.seed()
    app = make_app(tmp_path, local_server, policy="allow-known")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.kiosk.catalog.last_sync is not None)
        screen = await open_staff(pilot)
        await search(pilot, screen, codes["revoked"].lower())  # a scanned or typed code
        assert screen.result is not None
        assert screen.result.source == "offline copy"
        assert [p.holder_name for p in screen.result.passes] == ["Margaret Hamilton"]


async def test_a_name_with_markup_is_shown_literally(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.seed()
    code = await create_pass(local_server, holder_name="[bold]Eve[/][@click=app.quit]")
    app = make_app(tmp_path, local_server)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_staff(pilot)
        await search(pilot, screen, "eve")
        assert "[bold]Eve[/][@click=app.quit]" in screen_text(app)
        detail = await open_first(pilot, screen)
        assert detail.info.code == code
        text = screen_text(app)
        assert "[bold]Eve[/][@click=app.quit]" in text
        assert app.return_code is None


# -- details and manual admission ---------------------------------------------------------


async def test_admit_by_hand_is_a_journaled_manual_validation(
    tmp_path: Path, local_server: LocalServer
) -> None:
    codes = local_server.seed()
    app = make_app(tmp_path, local_server)
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        await pilot.press(*codes["season"], "enter")  # scanned once at the gate
        await journaled(app, 1)

        screen = await open_staff(pilot)
        await search(pilot, screen, "hopper")
        detail = await open_first(pilot, screen)
        text = screen_text(app)
        assert "Grace Hopper" in text
        assert f"Code     {codes['season']}" in text
        assert "Uses     1 of unlimited" in text  # fresh from PassQR
        assert "Checked with PassQR just now" in text
        assert "accepted" in text and "keyboard" in text  # the scan a minute ago
        assert len(detail.scans) == 1

        # A scanner's Enter only goes back; F5 admits.
        await pilot.press("enter")
        await eventually(lambda: app.screen is screen)
        detail = await open_first(pilot, screen)
        await pilot.press("f5")
        await eventually(lambda: app.screen is app.gate_screen)
        rows = await journaled(app, 2)
        decision = app.kiosk.gate.status.last
        assert decision is not None and decision.accepted
        assert decision.holder == "Grace Hopper"
        assert app.gate_screen.panel.decision is decision
        assert "Grace Hopper" in screen_text(app)

    latest = rows[0]
    assert latest["code"] == codes["season"]
    assert latest["manual"] is True
    assert latest["source"] == "staff"
    assert latest["decision"] == "accepted"


async def test_admitting_a_used_pass_is_refused_by_passqr(
    tmp_path: Path, local_server: LocalServer
) -> None:
    codes = local_server.seed()
    app = make_app(tmp_path, local_server)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_staff(pilot)
        await search(pilot, screen, codes["used"])
        await open_first(pilot, screen)
        assert "PassQR will refuse a used pass." in screen_text(app)
        await pilot.click("#admit")
        await eventually(lambda: app.screen is app.gate_screen)
        rows = await journaled(app, 1)
        assert rows[0]["decision"] == "rejected" and rows[0]["reason"] == "used"
        assert rows[0]["manual"] is True


# -- the PIN --------------------------------------------------------------------------------


async def test_staff_pin(tmp_path: Path, local_server: LocalServer) -> None:
    app = make_app(tmp_path, local_server, pin="2468")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        await pilot.press("f4")
        await eventually(lambda: isinstance(app.screen, StaffPinScreen))
        await pilot.press(*"1111", "enter")
        await pilot.pause()
        text = screen_text(app)
        assert "Wrong PIN" in text
        assert "1111" not in text
        await pilot.press(*"2468", "enter")
        await eventually(lambda: isinstance(app.screen, StaffScreen))
        await pilot.press("f4")
        await eventually(lambda: app.screen is app.gate_screen)

        # Three wrong PINs lock staff mode for a while (tests/functional/test_staff_pin.py).
        await pilot.press("f4")
        await eventually(lambda: isinstance(app.screen, StaffPinScreen))
        for _ in range(3):
            await pilot.press(*"0000", "enter")
        await eventually(app.pin_lock.locked)
        app.pin_lock.locked_until = 0.0
        await eventually(lambda: app.screen is app.gate_screen)
        await pilot.press("f4")
        await eventually(lambda: isinstance(app.screen, StaffPinScreen))
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.gate_screen)


# -- the Linux console ----------------------------------------------------------------------


async def test_staff_screens_fit_the_linux_console(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.seed()
    app = make_app(tmp_path, local_server)
    async with app.run_test(size=SIZE) as pilot:
        texts = [screen_text(app)]
        screen = await open_staff(pilot)
        await search(pilot, screen, "example")
        texts.append(screen_text(app))
        await open_first(pilot, screen)
        texts.append(screen_text(app))
    # The font the deploy guide installs, read from its own Unicode table (not CP437,
    # which has the half blocks that font lacks).
    assert not missing_glyphs(texts), "glyphs the console font lacks"
    assert "F4  Staff" in texts[0]


async def test_search_says_when_passqr_cannot_be_asked(tmp_path: Path) -> None:
    down = LocalServer(base_url="http://127.0.0.1:9/api/v1", api_key="pqr_live_x", db_path=tmp_path)
    app = make_app(tmp_path, down)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_staff(pilot)
        await pilot.press(*"ada", "enter")
        await eventually(lambda: "Cannot search PassQR" in screen_text(app), 10)
        assert "server unreachable" in screen_text(app)
        assert screen.result is None
        assert app.return_code is None


# -- what stewards expect at the door (issue 13) ---------------------------------------------


async def test_search_shows_whole_emails_at_80_columns(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.seed()
    email = "katherine.johnson@langley.example"
    await create_pass(local_server, holder_name="Katherine Johnson", holder_email=email)
    app = make_app(tmp_path, local_server)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_staff(pilot)
        await search(pilot, screen, "langley")
        text = screen_text(app)
        assert email in text
        assert "Katherine Johnson" in text


async def test_details_show_the_pass_type_a_readable_expiry_and_the_data(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.seed()
    await create_pass(
        local_server,
        holder_name="Dorothy Vaughan",
        expires_at="2031-12-31T23:59:00Z",
        data={"seat": "12A"},
    )
    app = make_app(tmp_path, local_server)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_staff(pilot)
        await eventually(lambda: bool(screen.templates))
        await search(pilot, screen, "dorothy")
        await open_first(pilot, screen)
        text = screen_text(app)
        assert "Type     Demo Festival" in text
        expected = datetime(2031, 12, 31, 23, 59, tzinfo=UTC).astimezone()
        assert f"Expires  {expected:%d %b %Y %H:%M}" in text
        assert "2031-12-31T" not in text
        assert "Seat 12A" in text


async def test_venue_counts_from_passqr_per_pass_type(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.seed()  # five passes, one used
    app = make_app(tmp_path, local_server)
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_staff(pilot)
        await eventually(lambda: screen.attendance is not None, 10)
        await pilot.pause()
        text = screen_text(app)
        assert "Checked in 1 of 5 (PassQR, just now)" in text
        assert "Demo Festival 1 of 5" in text


async def test_venue_counts_from_the_offline_copy(
    tmp_path: Path, local_server: LocalServer
) -> None:
    local_server.seed()
    app = make_app(tmp_path, local_server, policy="allow-known")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.kiosk.catalog.last_sync is not None)
        synced = app.kiosk.catalog.last_sync
        assert synced is not None
        screen = await open_staff(pilot)
        await eventually(lambda: screen.attendance is not None, 10)
        await pilot.pause()
        assert screen.attendance is not None
        assert screen.attendance.source == "offline copy"
        text = screen_text(app)
        assert f"Checked in 1 of 5 (offline copy, synced {synced.astimezone():%H:%M})" in text


async def test_let_in_asks_for_the_staff_pin(tmp_path: Path, local_server: LocalServer) -> None:
    codes = local_server.seed()
    app = make_app(tmp_path, local_server, pin="2468")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        await pilot.press(*codes["used"], "enter")
        await eventually(lambda: app.kiosk.gate.status.rejected_today == 1)
        await pilot.press("f5")
        await eventually(lambda: isinstance(app.screen, StaffPinScreen))
        await pilot.press(*"2468", "enter")
        await eventually(lambda: app.kiosk.gate.status.accepted_today == 1)
        rows = await journaled(app, 2)
        assert rows[0]["decision"] == "accepted" and rows[0]["source"] == "staff"
        assert app.kiosk.relay.pulses == 1
