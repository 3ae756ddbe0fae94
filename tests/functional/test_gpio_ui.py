"""Issue 16 on the gate screen: the turnstile's counts and a forced passage on the status line,
forced passages and exits in the F3 list. (The UI's own gate-floor screens come separately;
this is the one status-line element and the F3 rows.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from textual.widgets import DataTable

from scanner.config import (
    ApiConfig,
    Config,
    GateConfig,
    GpioInputConfig,
    JournalConfig,
    RelayConfig,
)
from scanner.relay import NoRelay
from scanner.runtime import Kiosk
from scanner.sources import SourceState
from scanner.status import GateStatus, ServerState
from scanner.turnstile import TurnstileStatus
from scanner.ui.app import KioskApp
from scanner.ui.screens import RecentScansScreen
from scanner.ui.widgets import status_content, turnstile_content
from tests.functional.test_ui import screen_text
from tests.support.fakes import FakeClient
from tests.support.gpio_pins import mock_factory, press
from tests.support.waiting import eventually

PASSAGE = 27


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    with mock_factory() as factory:
        yield factory


def test_the_element_counts_passages_against_admissions() -> None:
    status = TurnstileStatus(admissions=3, passed=2, not_passed=1, passages=2)
    assert turnstile_content(status, []).plain == "Turnstile 2 passed of 3 admitted, 1 not passed"


def test_a_forced_passage_tamper_and_alarm_stand_out() -> None:
    status = TurnstileStatus(admissions=1, passed=1, passages=3, forced=2, tamper=1, alarms=1)
    content = turnstile_content(status, [])
    assert content.plain == ("Turnstile 1 passed of 1 admitted,  2 FORCED ,  TAMPER 1 ,  ALARM 1 ")
    assert any("reverse" in str(span.style) for span in content.spans)


def test_the_status_line_shows_it_only_for_a_turnstile() -> None:
    plain = status_content(GateStatus(server=ServerState.OK), [], NoRelay(pulse_ms=10)).plain
    assert "Turnstile" not in plain


async def test_a_forced_passage_reaches_the_status_line_and_f3(
    tmp_path: Path, pins: MockFactory
) -> None:
    config = Config(
        api=ApiConfig(base_url="http://127.0.0.1:9/api/v1"),
        gate=GateConfig(name="Turnstile 1", passage_window_s=5),
        relay=RelayConfig(type="gpio", pin=17),
        inputs=[GpioInputConfig(type="gpio", pin=PASSAGE, role="passage", name="rotation")],
        journal=JournalConfig(path=tmp_path / "journal.sqlite3"),
    )
    kiosk = Kiosk(config, api_key="pqr_test_x", client=FakeClient(), sources=[])
    events: list[object] = []
    kiosk.turnstile.subscribe(events.append)
    app = KioskApp(kiosk)
    async with app.run_test(size=(120, 24)) as pilot:
        await eventually(lambda: kiosk.turnstile.inputs[0].state is SourceState.READY)
        press(pins.pin(PASSAGE))
        await eventually(lambda: kiosk.turnstile.status.forced == 1)
        app.gate_screen.refresh_status()
        await pilot.pause()
        assert "Turnstile 0 passed of 0 admitted,  1 FORCED" in screen_text(app)
        await eventually(lambda: len(events) == 1)  # journaled
        await pilot.press("f3")
        await eventually(lambda: isinstance(app.screen, RecentScansScreen))
        table = app.screen.query_one(DataTable)
        await eventually(lambda: table.row_count == 1)
        await pilot.pause()
        text = screen_text(app)
        assert "forced" in text and "rotation" in text
