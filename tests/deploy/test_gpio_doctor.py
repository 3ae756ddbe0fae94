"""``passqr-scanner doctor`` for a gate on the Pi's own pins (issue 16), on gpiozero's mock pins:
each pin exists and can be claimed, the relay line reads back OFF, a contact is not triggered
at rest, and ``/dev/gpiochip*`` can be opened by the service user."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gpiozero import DigitalInputDevice
from gpiozero.pins.mock import MockFactory, MockPin

from scanner.doctor import Check, Status, diagnose
from scanner.doctor.gpio import check_gpiochips
from tests.conftest import LocalServer
from tests.support.gpio_pins import BrokenFactory, levels, mock_factory

RELAY, PASSAGE, EXIT = 17, 27, 22


class StuckLowPin(MockPin):  # type: ignore[misc]  # gpiozero is untyped
    """A line that reads low whatever is written: a shorted output or a broken driver."""

    def _change_state(self, value: bool) -> bool:
        return bool(super()._change_state(False))


class ClosedContactPin(MockPin):  # type: ignore[misc]
    """An input whose contact to ground is closed: the pull-up cannot lift it."""

    def _set_pull(self, value: str) -> None:
        super()._set_pull(value)
        self._change_state(False)


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    with mock_factory() as factory:
        yield factory


def write_config(tmp_path: Path, server: LocalServer, relay_pin: int = RELAY) -> Path:
    (tmp_path / "state").mkdir(exist_ok=True)
    path = tmp_path / "gate.toml"
    path.write_text(f"""
[api]
base_url = "{server.base_url}"

[relay]
type = "gpio"
pin = {relay_pin}
active_low = true
lock = "fail-safe"

[[inputs]]
type = "gpio"
pin = {PASSAGE}
role = "passage"
name = "rotation"

[[inputs]]
type = "gpio"
pin = {EXIT}
role = "exit"

[journal]
path = "{tmp_path / "state" / "journal.sqlite3"}"
""")
    return path


async def run(
    tmp_path: Path, server: LocalServer, *, click: bool = False, **options: Any
) -> dict[str, Check]:
    checks = await diagnose(
        write_config(tmp_path, server, **options),
        relay_click=click,
        environ={"PASSQR_API_KEY": server.api_key},
        credential_file=tmp_path / "no-such-key",
    )
    return {c.name: c for c in checks}


async def test_a_ready_gpio_gate(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory
) -> None:
    checks = await run(tmp_path, local_server)
    relay = checks["relay"]
    assert relay.status is Status.OK, relay
    assert "GPIO17 active-low, fail-safe" in relay.detail
    assert "reads back high (OFF)" in relay.detail and "nothing switched" in relay.detail
    assert levels(pins.pin(RELAY)) == [False, True], "claimed straight to OFF (high), no pulse"
    passage, exit_ = checks["input 1 (passage)"], checks["input 2 (exit)"]
    assert passage.status is Status.OK and exit_.status is Status.OK, (passage, exit_)
    assert "GPIO27 pull up, idle (high)" in passage.detail
    assert pins.pin(PASSAGE).function == "input"
    assert "gpio" in checks
    assert not [c for c in checks.values() if c.status is Status.FAIL and "api" not in c.name]


async def test_relay_click_pulses_the_line_once(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory
) -> None:
    checks = await run(tmp_path, local_server, click=True)
    assert checks["relay"].status is Status.OK, checks["relay"]
    assert "clicked" in checks["relay"].detail
    assert levels(pins.pin(RELAY)) == [False, True, False, True]  # active low: OFF ON OFF


async def test_a_pin_held_by_another_program_is_a_warning(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory
) -> None:
    squatter = DigitalInputDevice(PASSAGE)
    try:
        checks = await run(tmp_path, local_server)
    finally:
        squatter.close()
    check = checks["input 1 (passage)"]
    assert check.status is Status.WARN and "in use" in check.detail, check
    assert "systemctl stop passqr-scanner" in check.fix


async def test_a_pin_that_does_not_exist(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory
) -> None:
    checks = await run(tmp_path, local_server, relay_pin=40)  # a Pi 3's header ends at GPIO27
    assert checks["relay"].status is Status.FAIL
    assert "GPIO40" in checks["relay"].detail
    assert "BCM number" in checks["relay"].fix


async def test_a_relay_line_that_reads_back_on_fails(
    tmp_path: Path, local_server: LocalServer
) -> None:
    with mock_factory(MockFactory(pin_class=StuckLowPin)):
        checks = await run(tmp_path, local_server)
    relay = checks["relay"]
    assert relay.status is Status.FAIL and "reads back low (ON)" in relay.detail, relay
    assert "active_low" in relay.fix


async def test_a_contact_triggered_at_rest_is_a_warning(
    tmp_path: Path, local_server: LocalServer
) -> None:
    with mock_factory(MockFactory(pin_class=ClosedContactPin)):
        checks = await run(tmp_path, local_server)
    check = checks["input 1 (passage)"]
    assert check.status is Status.WARN and "triggered now" in check.detail, check
    assert "normally open" in check.fix


async def test_no_pin_factory(tmp_path: Path, local_server: LocalServer) -> None:
    with mock_factory(BrokenFactory()):
        checks = await run(tmp_path, local_server)
    for name in ("relay", "input 1 (passage)", "input 2 (exit)"):
        assert checks[name].status is Status.FAIL, checks[name]
        assert "lgpio" in checks[name].fix


async def test_gpiozero_not_installed(
    tmp_path: Path, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gpiozero", None)
    checks = await run(tmp_path, local_server)
    assert checks["relay"].status is Status.FAIL
    assert "gpiozero is not installed" in checks["relay"].detail
    assert "passqr-scanner[gpio]" in checks["relay"].fix


def test_gpiochips(tmp_path: Path) -> None:
    none = check_gpiochips(tmp_path)
    assert none.status is Status.WARN and "no /dev/gpiochip" in none.detail.replace(
        str(tmp_path), "/dev"
    )
    (tmp_path / "gpiochip0").touch()
    (tmp_path / "gpiochip4").touch()
    found = check_gpiochips(tmp_path)
    assert found.status is Status.OK, found
    assert "gpiochip0" in found.detail and "gpiochip4" in found.detail
