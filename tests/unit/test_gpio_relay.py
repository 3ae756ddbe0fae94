"""``[relay] type = "gpio"`` on gpiozero's mock pins: the same safety as the serial boards.

OFF at start, OFF after every pulse, OFF on every way out (close, ``off_now``, ``relay off``),
and a pin that cannot be had is a FAULT that heals, never an exception.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
from gpiozero import DigitalOutputDevice
from gpiozero.pins.mock import MockFactory

from scanner.config import RelayConfig
from scanner.relay import RelayState, build_relay
from scanner.relay import base as relay_base
from scanner.relay.check import relay_off, relay_test
from scanner.relay.gpio import GpioRelay
from tests.support.gpio_pins import BrokenFactory, levels, mock_factory
from tests.support.waiting import eventually

PIN = 17


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    with mock_factory() as factory:
        yield factory


def relay(active_low: bool = False, pulse_ms: int = 100) -> GpioRelay:
    built = build_relay(RelayConfig(type="gpio", pin=PIN, active_low=active_low, pulse_ms=pulse_ms))
    assert isinstance(built, GpioRelay)
    return built


@pytest.mark.parametrize("active_low", [False, True])
async def test_a_pulse_drives_the_line_on_then_off(pins: MockFactory, active_low: bool) -> None:
    on, off = (False, True) if active_low else (True, False)
    door = relay(active_low, pulse_ms=150)
    await door.start()
    line = pins.pin(PIN)
    assert line.function == "output" and line.state == off, "OFF at start"
    assert door.state is RelayState.OFF
    line.clear_states()
    assert await door.pulse()
    assert line.state == on
    assert door.state is RelayState.ON  # type: ignore[comparison-overlap]  # changed by pulse()
    await eventually(lambda: door.state is RelayState.OFF)
    assert line.state == off
    assert levels(line) == [off, on, off]
    assert 0.13 <= line.states[2].timestamp <= 1.0, "ON for pulse_ms"
    await door.close()
    assert line.state == off
    assert door.description == f"gpio GPIO{PIN}" + (" active-low" if active_low else "")


@pytest.mark.parametrize("active_low", [False, True])
async def test_close_mid_pulse_leaves_it_off(pins: MockFactory, active_low: bool) -> None:
    off = active_low
    door = relay(active_low, pulse_ms=10_000)
    await door.start()
    assert await door.pulse()
    await door.close()
    line = pins.pin(PIN)
    assert line.state == off
    assert line.function == "input", "released: the pin is back to what it is at boot"


@pytest.mark.parametrize("active_low", [False, True])
async def test_off_now_from_another_thread(pins: MockFactory, active_low: bool) -> None:
    off = active_low
    door = relay(active_low, pulse_ms=10_000)
    await door.start()
    assert await door.pulse()
    worker = threading.Thread(target=door.off_now)
    worker.start()
    worker.join()
    assert pins.pin(PIN).state == off and door.state is RelayState.OFF
    await door.close()


@pytest.mark.parametrize("active_low", [False, True])
def test_relay_off_switches_off_a_line_left_on(pins: MockFactory, active_low: bool) -> None:
    """``relay off`` (ExecStopPost=): the kiosk died with the line ON."""
    line = pins.pin(PIN)
    line.function = "output"
    line.state = not active_low  # ON, left by a process that no longer exists
    said: list[str] = []
    config = RelayConfig(type="gpio", pin=PIN, active_low=active_low)
    assert relay_off(config, said.append) == 0
    assert line.state == active_low
    assert said[-1] == f"relay gpio GPIO{PIN}{' active-low' if active_low else ''}: OFF"
    assert any("reads back" in s for s in said), said


async def test_relay_test_pulses_once_and_says_so(pins: MockFactory) -> None:
    said: list[str] = []
    config = RelayConfig(type="gpio", pin=PIN, pulse_ms=50)
    assert await relay_test(config, said.append) == 0
    assert levels(pins.pin(PIN))[-3:] == [False, True, False]
    assert "ON" in said and said[-1] == "OFF"
    assert not any("no board" in s for s in said), said


async def test_a_pin_in_use_is_a_fault_that_heals(
    pins: MockFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_base, "RECONNECT_S", 0.05)
    squatter = DigitalOutputDevice(PIN)  # another device holds the line
    door = relay()
    await door.start()
    assert door.state is RelayState.FAULT
    assert "in use" in door.fault
    assert not await door.pulse(), "no exception: the pulse says it failed"
    assert door.pulse_fault
    squatter.close()
    await eventually(lambda: door.state is RelayState.OFF)
    assert await door.pulse()
    await door.close()
    assert pins.pin(PIN).state is False


async def test_a_factory_that_fails_is_a_fault() -> None:
    with mock_factory(BrokenFactory()):
        door = relay()
        await door.start()
        assert door.state is RelayState.FAULT
        assert "pin factory" in door.fault.lower()
        assert not await door.pulse()
        await door.close()  # no exception on the way out either
        door.off_now()


async def test_relay_test_on_a_broken_factory_gives_a_fix() -> None:
    with mock_factory(BrokenFactory()):
        said: list[str] = []
        assert await relay_test(RelayConfig(type="gpio", pin=PIN), said.append) == 1
    assert any(s.startswith("fix: ") and "lgpio" in s for s in said), said


def test_the_pulse_is_timed_on_the_loop_not_the_pin_thread(pins: MockFactory) -> None:
    """Overlapping pulses extend the one running, as for every board."""

    async def scenario() -> list[bool]:
        door = relay(pulse_ms=200)
        await door.start()
        line = pins.pin(PIN)
        line.clear_states()
        await door.pulse()
        await asyncio.sleep(0.1)
        await door.pulse()
        await eventually(lambda: door.state is RelayState.OFF)
        await door.close()
        return levels(line)

    assert asyncio.run(scenario()) == [False, True, False]
