"""The staff PIN lock, driven with Pilot: one lock per kiosk, kept across restarts.

Wrong PINs count across dialogs (Esc does not start the count again); three lock
staff mode, and the lock is in the journal, so a restart keeps it. While the PIN
dialog is open or staff mode is locked, typed keys never reach the scan path (a
PIN typed into a locked kiosk is not journaled as a scan). Quitting asks for the
PIN when one is set.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.pilot import Pilot

from scanner.ui.app import KioskApp
from scanner.ui.pin import PIN_TRIES, PinLock, StaffPinScreen
from scanner.ui.screens import ConfirmQuitScreen
from scanner.ui.staff import StaffScreen
from tests.conftest import LocalServer
from tests.functional.test_staff import SIZE, make_app, screen_text
from tests.support.waiting import eventually


@pytest.fixture(autouse=True)
def _no_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


async def pin_dialog(pilot: Pilot[int]) -> StaffPinScreen:
    app = pilot.app
    await pilot.press("f4")
    await eventually(lambda: isinstance(app.screen, StaffPinScreen))
    dialog = app.screen
    assert isinstance(dialog, StaffPinScreen)
    return dialog


def _counted(lock: PinLock) -> int:
    return lock.wrong + PIN_TRIES * lock.lockouts


async def wrong(pilot: Pilot[int], dialog: StaffPinScreen, times: int) -> None:
    for _ in range(times):
        before = _counted(dialog.pin_lock)
        await pilot.press(*"0000", "enter")
        await eventually(lambda before=before: _counted(dialog.pin_lock) > before)  # type: ignore[misc]


async def scans_journaled(app: KioskApp) -> int:
    return len(await app.kiosk.journal.recent(50))


async def test_wrong_pins_count_across_dialogs(tmp_path: Path, local_server: LocalServer) -> None:
    app = make_app(tmp_path, local_server, pin="2468")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        dialog = await pin_dialog(pilot)
        await wrong(pilot, dialog, 2)
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.gate_screen)
        # Esc and F4 again: the third wrong PIN locks, whatever dialog it was typed in.
        dialog = await pin_dialog(pilot)
        await wrong(pilot, dialog, 1)
        assert app.pin_lock.locked()
        await pilot.pause()
        assert "Locked" in screen_text(app)
        # Locked: the dialog stays, Esc does not let the keys reach the gate.
        await pilot.press("escape", *"2468", "enter")
        await pilot.pause()
        assert app.screen is dialog
        assert app.kiosk.keyboard is not None and app.kiosk.keyboard.count == 0
        assert await scans_journaled(app) == 0
        assert not isinstance(app.screen, StaffScreen)


async def test_the_lock_ends_and_doubles(
    tmp_path: Path, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(KioskApp, "STAFF_LOCK_S", 0.3)
    app = make_app(tmp_path, local_server, pin="2468")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        dialog = await pin_dialog(pilot)
        await wrong(pilot, dialog, 3)
        assert 0 < app.pin_lock.remaining() <= 0.3
        # The dialog closes itself when the lock ends.
        await eventually(lambda: app.screen is app.gate_screen)
        dialog = await pin_dialog(pilot)
        await wrong(pilot, dialog, 3)
        assert 0.3 < app.pin_lock.remaining() <= 0.6
        await eventually(lambda: app.screen is app.gate_screen)
        # The right PIN forgives everything.
        dialog = await pin_dialog(pilot)
        await pilot.press(*"2468", "enter")
        await eventually(lambda: isinstance(app.screen, StaffScreen))
        assert app.pin_lock.wrong == 0 and app.pin_lock.lockouts == 0


async def test_the_lock_survives_a_restart(tmp_path: Path, local_server: LocalServer) -> None:
    app = make_app(tmp_path, local_server, pin="2468")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        dialog = await pin_dialog(pilot)
        await wrong(pilot, dialog, 2)
    # Restarted (systemd's Restart=always): the two wrong PINs still count.
    app = make_app(tmp_path, local_server, pin="2468")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        assert app.pin_lock.wrong == 2
        dialog = await pin_dialog(pilot)
        await wrong(pilot, dialog, 1)
        assert app.pin_lock.locked()
    # Restarted while locked: it starts locked, the lock on screen, keys kept from the gate.
    app = make_app(tmp_path, local_server, pin="2468")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        assert app.pin_lock.locked()
        await eventually(lambda: isinstance(app.screen, StaffPinScreen))
        await pilot.press(*"2468", "enter", "f4", *"2468", "enter")
        await pilot.pause()
        assert isinstance(app.screen, StaffPinScreen)
        assert app.kiosk.keyboard is not None and app.kiosk.keyboard.count == 0
        assert await scans_journaled(app) == 0


async def test_typed_pin_never_reaches_the_scan_path(
    tmp_path: Path, local_server: LocalServer
) -> None:
    app = make_app(tmp_path, local_server, pin="2468")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        dialog = await pin_dialog(pilot)
        dialog.query_one("#pin").blur()  # even with no field focused
        await pilot.press(*"1357", "enter")
        await pilot.pause()
        await pilot.press("escape")
        await eventually(lambda: app.screen is app.gate_screen)
        assert app.kiosk.keyboard is not None and app.kiosk.keyboard.count == 0
        assert await scans_journaled(app) == 0


async def test_quitting_asks_for_the_pin(tmp_path: Path, local_server: LocalServer) -> None:
    app = make_app(tmp_path, local_server, pin="2468")
    async with app.run_test(size=SIZE) as pilot:
        await eventually(lambda: app.started)
        await pilot.press("ctrl+q")
        await eventually(lambda: isinstance(app.screen, ConfirmQuitScreen))
        await pilot.press("ctrl+q")
        await eventually(lambda: isinstance(app.screen, StaffPinScreen))
        await pilot.press("ctrl+q", "f10")  # more quit keys do not get past the PIN
        await pilot.pause()
        assert isinstance(app.screen, StaffPinScreen) and app.is_running
        await pilot.press(*"0000", "enter")
        await pilot.pause()
        assert app.is_running
        await pilot.press(*"2468", "enter")
        await eventually(lambda: not app.is_running)
    assert app.return_code == 0


def test_pin_lock_alone() -> None:
    now = [1000.0]
    lock = PinLock(lock_s=30.0, max_lock_s=120.0, clock=lambda: now[0])
    assert not lock.wrong_pin() and not lock.wrong_pin()
    assert lock.wrong_pin() and lock.remaining() == 30.0
    now[0] += 31
    assert not lock.locked() and lock.wrong == 0
    for _ in range(3):
        lock.wrong_pin()
    assert lock.remaining() == 60.0
    now[0] += 61
    for _ in range(6):
        lock.wrong_pin()
        now[0] += 1000
    assert lock.lockouts == 4
    for _ in range(3):
        lock.wrong_pin()
    assert lock.remaining() == 120.0  # doubling stops at max_lock_s
    # Kept as text: a clock set back cannot stretch the lock beyond max_lock_s.
    again = PinLock.loads(lock.dumps(), lock_s=30.0, max_lock_s=120.0, clock=lambda: now[0] - 9999)
    assert again.remaining() == 120.0 and again.lockouts == 5
    broken = PinLock.loads("{not json", lock_s=30.0, max_lock_s=120.0, clock=lambda: now[0])
    assert broken.wrong == 0 and not broken.locked()
    lock.right_pin()
    assert lock.wrong == 0 and lock.lockouts == 0 and not lock.locked()
