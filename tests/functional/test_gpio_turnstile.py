"""Issue 16 end to end: an in-process kiosk (real client, journal, gate) against the local
PassQR server, its relay and contacts on gpiozero's mock pins.

The relay is GPIO17; the turnstile's passage contact GPIO27, the exit button GPIO22, a tamper
switch GPIO23 and an alarm output GPIO24, all dry contacts to ground on the Pi's pull-ups.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from gpiozero import DigitalInputDevice, DigitalOutputDevice
from gpiozero.pins.mock import MockFactory, MockPin

from scanner import cli
from scanner import gpio_input as gpio_input_module
from scanner.config import (
    ApiConfig,
    Config,
    GateConfig,
    GpioInputConfig,
    JournalConfig,
    RelayConfig,
)
from scanner.errors import ConfigError
from scanner.gpio_input import GpioInput
from scanner.headless import run_headless
from scanner.models import Decision, RawScan
from scanner.pipeline import DOOR_FAULT_TEXT
from scanner.relay import RelayState
from scanner.relay import base as relay_base
from scanner.relay.check import relay_off
from scanner.runtime import Kiosk
from scanner.sources import Source, SourceState
from scanner.sources.base import Emit
from scanner.turnstile import GateEvent
from tests.conftest import LocalServer
from tests.support.gpio_pins import BrokenFactory, levels, mock_factory, press
from tests.support.waiting import eventually

RELAY, PASSAGE, EXIT, TAMPER, ALARM = 17, 27, 22, 23, 24
WINDOW_S = 0.4


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    with mock_factory() as factory:
        yield factory


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(relay_base, "RECONNECT_S", 0.05)
    monkeypatch.setattr(gpio_input_module, "RETRY_S", (0.02, 0.05))


def make_config(
    tmp_path: Path,
    server: LocalServer,
    *,
    active_low: bool = False,
    pulse_ms: int = 150,
    window_s: float = WINDOW_S,
) -> Config:
    return Config(
        api=ApiConfig(base_url=server.base_url, timeout_s=3.0),
        gate=GateConfig(name="Turnstile 1", repeat_ignore_s=0.0, passage_window_s=window_s),
        relay=RelayConfig(type="gpio", pin=RELAY, active_low=active_low, pulse_ms=pulse_ms),
        inputs=[
            GpioInputConfig(type="gpio", pin=PASSAGE, role="passage", name="rotation"),
            GpioInputConfig(type="gpio", pin=EXIT, role="exit", name="exit button"),
            GpioInputConfig(type="gpio", pin=TAMPER, role="tamper"),
            GpioInputConfig(type="gpio", pin=ALARM, role="alarm"),
        ],
        journal=JournalConfig(path=tmp_path / "journal.sqlite3"),
    )


@dataclass
class Rig:
    kiosk: Kiosk
    pins: MockFactory
    codes: dict[str, str]
    tmp_path: Path
    events: list[GateEvent] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    def pin(self, number: int) -> MockPin:
        return self.pins.pin(number)

    async def scan(self, label: str) -> Decision:
        code = self.codes.get(label, label)
        task = self.kiosk.gate.submit(RawScan(source="test", text=code, at=time.monotonic()))
        assert task is not None
        return await task

    async def wait_events(self, n: int) -> list[GateEvent]:
        await eventually(lambda: len(self.events) >= n)
        return self.events[:n]

    def rows(self, table: str) -> list[dict[str, Any]]:
        conn = sqlite3.connect(self.tmp_path / "journal.sqlite3")
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")]
        finally:
            conn.close()


async def start_rig(tmp_path: Path, server: LocalServer, pins: MockFactory, **options: Any) -> Rig:
    kiosk = Kiosk(make_config(tmp_path, server, **options), api_key=server.api_key, sources=[])
    rig = Rig(kiosk=kiosk, pins=pins, codes=server.seed(), tmp_path=tmp_path)
    kiosk.turnstile.subscribe(rig.events.append)
    kiosk.gate.subscribe(rig.decisions.append)
    await kiosk.start()
    await eventually(lambda: all(i.state is SourceState.READY for i in kiosk.turnstile.inputs))
    return rig


@pytest.fixture
async def rig(tmp_path: Path, local_server: LocalServer, pins: MockFactory) -> AsyncIterator[Rig]:
    rig = await start_rig(tmp_path, local_server, pins)
    yield rig
    await rig.kiosk.stop()


# -- the relay ---------------------------------------------------------------------------------


@pytest.mark.parametrize("active_low", [False, True])
async def test_an_admission_drives_the_pin_on_for_pulse_ms(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory, active_low: bool
) -> None:
    on, off = (not active_low), active_low
    rig = await start_rig(tmp_path, local_server, pins, active_low=active_low, pulse_ms=200)
    try:
        line = rig.pin(RELAY)
        assert line.function == "output" and line.state == off, "OFF from the start"
        line.clear_states()
        decision = await rig.scan("season")
        assert decision.accepted and decision.relay_fault is None
        assert line.state == on
        await eventually(lambda: line.state == off)
        assert levels(line) == [off, on, off]
        assert 0.18 <= line.states[2].timestamp <= 1.5
        refused = await rig.scan("expired")
        assert not refused.accepted
        assert levels(line) == [off, on, off], "a rejection never moves the relay"
    finally:
        await rig.kiosk.stop()
    assert rig.pin(RELAY).state == off


# -- passages ----------------------------------------------------------------------------------


async def test_a_passage_inside_the_window_is_journaled_as_passed(rig: Rig) -> None:
    decision = await rig.scan("season")
    press(rig.pin(PASSAGE))
    (event,) = await rig.wait_events(1)
    assert event.outcome == "passed" and event.scan_id == decision.scan.id
    assert event.code == rig.codes["season"]
    (row,) = rig.rows("scans")
    assert row["passage"] == "passed"
    (journaled,) = rig.rows("events")
    assert journaled["kind"] == "passage" and journaled["scan_id"] == decision.scan.id
    assert journaled["gate"] == "Turnstile 1" and journaled["source"] == "rotation"
    status = rig.kiosk.turnstile.status
    assert (status.admissions, status.passages, status.passed, status.forced) == (1, 1, 1, 0)
    await asyncio.sleep(WINDOW_S + 0.1)
    assert len(rig.events) == 1, "the window closed by the passage does not expire later"
    assert rig.rows("scans")[0]["passage"] == "passed"


async def test_an_admission_nobody_used_is_journaled_not_passed(rig: Rig) -> None:
    decision = await rig.scan("season")
    assert rig.rows("scans")[0]["passage"] is None, "undecided while the window is open"
    (event,) = await rig.wait_events(1)
    assert event.outcome == "not_passed" and event.scan_id == decision.scan.id
    assert rig.rows("scans")[0]["passage"] == "not_passed"
    assert rig.kiosk.turnstile.status.not_passed == 1
    assert rig.kiosk.turnstile.status.alert is None, "not a security event"


async def test_two_admissions_then_two_passages_each_belong_to_one(rig: Rig) -> None:
    first, second = await rig.scan("season"), await rig.scan("valid")
    press(rig.pin(PASSAGE))
    await rig.wait_events(1)
    await asyncio.sleep(0.06)  # past debounce_ms (50): a second turn, not contact bounce
    press(rig.pin(PASSAGE))
    events = await rig.wait_events(2)
    assert [e.scan_id for e in events] == [first.scan.id, second.scan.id]
    assert [r["passage"] for r in rig.rows("scans")] == ["passed", "passed"]


async def test_a_passage_with_no_admission_is_forced_and_shown_to_staff(rig: Rig) -> None:
    press(rig.pin(PASSAGE))
    (event,) = await rig.wait_events(1)
    assert event.outcome == "forced" and event.scan_id is None
    (row,) = rig.rows("events")
    assert row["kind"] == "forced" and row["scan_id"] is None
    status = rig.kiosk.turnstile.status
    assert status.forced == 1 and status.passages == 1 and status.admissions == 0
    assert status.alert is event
    assert 'passqr_turnstile_events_total{event="forced"} 1' in rig.kiosk.metrics.render(rig.kiosk)
    recent = await rig.kiosk.journal.recent_with_events(20)
    assert recent[0]["decision"] == "forced" and recent[0]["source"] == "rotation"


async def test_a_passage_after_the_window_closed_is_forced(rig: Rig) -> None:
    await rig.scan("season")
    await rig.wait_events(1)  # not_passed
    press(rig.pin(PASSAGE))
    events = await rig.wait_events(2)
    assert [e.outcome for e in events] == ["not_passed", "forced"]


async def test_contact_bounce_is_one_passage(rig: Rig) -> None:
    await rig.scan("season")
    line = rig.pin(PASSAGE)
    for _ in range(5):  # a contact bounces for a few ms when it closes
        press(line)
    (event,) = await rig.wait_events(1)
    assert event.outcome == "passed"
    await asyncio.sleep(0.1)
    assert len(rig.events) == 1 and rig.kiosk.turnstile.status.forced == 0


async def test_passages_come_from_the_contact_thread_safely(rig: Rig) -> None:
    """gpiozero calls back on its own thread: the edge reaches the loop thread-safely."""
    decision = await rig.scan("season")
    await asyncio.to_thread(press, rig.pin(PASSAGE))
    (event,) = await rig.wait_events(1)
    assert event.scan_id == decision.scan.id


# -- the exit button, tamper, alarm -------------------------------------------------------------


async def test_the_exit_button_pulses_the_relay_and_is_journaled_as_exit(rig: Rig) -> None:
    relay_line = rig.pin(RELAY)
    relay_line.clear_states()
    press(rig.pin(EXIT))
    (event,) = await rig.wait_events(1)
    assert event.kind == "exit" and event.scan_id is None
    assert levels(relay_line)[:2] == [False, True], "the door opened without a scan"
    await eventually(lambda: rig.kiosk.relay.state is RelayState.OFF)
    assert relay_line.state is False
    assert rig.rows("scans") == [], "no validation, no scan row"
    (row,) = rig.rows("events")
    assert row["kind"] == "exit" and row["source"] == "exit button"
    press(rig.pin(PASSAGE))  # whoever pressed it walks out
    events = await rig.wait_events(2)
    assert events[1].outcome == "passed" and events[1].scan_id is None
    assert rig.kiosk.turnstile.status.forced == 0 and rig.kiosk.turnstile.status.exits == 1


async def test_tamper_and_alarm_are_recorded_and_shown(rig: Rig) -> None:
    press(rig.pin(TAMPER))
    press(rig.pin(ALARM))
    events = await rig.wait_events(2)
    assert [e.kind for e in events] == ["tamper", "alarm"]
    assert [r["kind"] for r in rig.rows("events")] == ["tamper", "alarm"]
    status = rig.kiosk.turnstile.status
    assert (status.tamper, status.alarms) == (1, 1)
    assert status.alert is events[1]
    assert rig.kiosk.relay.pulses == 0


async def test_counts_survive_a_restart(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory
) -> None:
    rig = await start_rig(tmp_path, local_server, pins)
    await rig.scan("season")
    press(rig.pin(PASSAGE))
    await rig.wait_events(1)
    await asyncio.sleep(0.06)  # past debounce_ms: a second passage
    press(rig.pin(PASSAGE))
    await rig.wait_events(2)
    await rig.kiosk.stop()
    again = await start_rig(tmp_path, local_server, pins)
    try:
        status = again.kiosk.turnstile.status
        assert (status.admissions, status.passages, status.passed, status.forced) == (1, 2, 1, 1)
    finally:
        await again.kiosk.stop()


# -- every way out leaves the relay OFF ----------------------------------------------------------


@pytest.mark.parametrize("active_low", [False, True])
async def test_stop_mid_pulse_leaves_the_pin_off(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory, active_low: bool
) -> None:
    rig = await start_rig(tmp_path, local_server, pins, active_low=active_low, pulse_ms=30_000)
    await rig.scan("season")
    assert rig.pin(RELAY).state == (not active_low)
    await rig.kiosk.stop()
    assert rig.pin(RELAY).state == active_low


async def test_off_now_mid_pulse_leaves_the_pin_off(rig: Rig) -> None:
    rig.kiosk.relay.pulse_ms = 30_000
    await rig.scan("season")
    assert rig.pin(RELAY).state is True
    await asyncio.to_thread(rig.kiosk.relay.off_now)  # atexit, a signal handler
    assert rig.pin(RELAY).state is False


async def test_relay_off_after_the_kiosk_stopped(rig: Rig) -> None:
    await rig.kiosk.stop()
    said: list[str] = []
    assert relay_off(rig.kiosk.config.relay, said.append) == 0
    assert rig.pin(RELAY).state is False


class HeldSource(Source):
    """A scanner that reads what the test gives it, until told it is unplugged for good."""

    kind = "held"

    def __init__(self) -> None:
        super().__init__("held")
        self.codes: asyncio.Queue[str | None] = asyncio.Queue()

    async def run(self, emit: Emit) -> None:
        self.state = SourceState.READY
        while (code := await self.codes.get()) is not None:
            emit(RawScan(source=self.name, text=code, at=time.monotonic()))
        self.state = SourceState.STOPPED


class Lines(io.StringIO):
    def parsed(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.getvalue().splitlines()]


async def test_an_exception_in_the_run_leaves_the_pin_off(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory
) -> None:
    """Ctrl+C, or anything raised through the headless run: its ``finally`` switches OFF."""
    config = make_config(tmp_path, local_server, pulse_ms=30_000)
    source = HeldSource()
    kiosk = Kiosk(config, api_key=local_server.api_key, headless=True, sources=[source])
    out = Lines()
    run = asyncio.create_task(run_headless(config, api_key="", out=out, kiosk=kiosk))
    await source.codes.put(local_server.seed()["season"])
    await eventually(lambda: pins.pin(RELAY).state is True)
    run.cancel()
    with pytest.raises(asyncio.CancelledError):
        await run
    assert pins.pin(RELAY).state is False


# -- faults degrade, never crash ------------------------------------------------------------------


async def test_a_relay_pin_in_use_degrades_and_heals(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory
) -> None:
    squatter = DigitalOutputDevice(RELAY)
    rig = await start_rig(tmp_path, local_server, pins)
    try:
        assert rig.kiosk.relay.state is RelayState.FAULT
        decision = await rig.scan("season")
        assert decision.accepted and decision.message == DOOR_FAULT_TEXT
        assert "in use" in (decision.relay_fault or "")
        squatter.close()
        await eventually(lambda: rig.kiosk.relay.state is RelayState.OFF)
        assert (await rig.scan("valid")).relay_fault is None
    finally:
        await rig.kiosk.stop()


async def test_an_input_pin_in_use_degrades_and_heals(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory
) -> None:
    squatter = DigitalInputDevice(PASSAGE, pull_up=True)
    kiosk = Kiosk(make_config(tmp_path, local_server), api_key=local_server.api_key, sources=[])
    await kiosk.start()
    try:
        (sensor,) = [i for i in kiosk.turnstile.inputs if i.role == "passage"]
        await eventually(lambda: sensor.state is SourceState.DEGRADED)
        assert "in use" in sensor.detail
        task = kiosk.gate.submit(RawScan(source="t", text="PASS-X", at=0))
        assert task is not None and not (await task).accepted, "the gate decides on"
        squatter.close()
        await eventually(lambda: sensor.state is SourceState.READY)
    finally:
        await kiosk.stop()


async def test_a_passage_sensor_that_cannot_be_read_leaves_passages_unknown(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory
) -> None:
    """No window without a working sensor: a broken contact is not "nobody went through"."""
    squatter = DigitalInputDevice(PASSAGE, pull_up=True)
    kiosk = Kiosk(make_config(tmp_path, local_server), api_key=local_server.api_key, sources=[])
    events: list[GateEvent] = []
    kiosk.turnstile.subscribe(events.append)
    await kiosk.start()
    try:
        (sensor,) = [i for i in kiosk.turnstile.inputs if i.role == "passage"]
        await eventually(lambda: sensor.state is SourceState.DEGRADED)
        task = kiosk.gate.submit(RawScan(source="t", text=local_server.seed()["season"], at=0))
        assert task is not None and (await task).accepted
        await asyncio.sleep(WINDOW_S + 0.2)
        assert events == [] and kiosk.turnstile.status.not_passed == 0
        assert kiosk.turnstile.status.open_windows == 0
    finally:
        squatter.close()
        await kiosk.stop()
    rig = Rig(kiosk, pins, {}, tmp_path)
    assert [r["passage"] for r in rig.rows("scans")] == [None]


async def test_a_pin_factory_that_fails_degrades_everything_and_decides_on(
    tmp_path: Path, local_server: LocalServer
) -> None:
    with mock_factory(BrokenFactory()):
        kiosk = Kiosk(make_config(tmp_path, local_server), api_key=local_server.api_key, sources=[])
        await kiosk.start()
        try:
            assert kiosk.relay.state is RelayState.FAULT
            await eventually(
                lambda: all(i.state is SourceState.DEGRADED for i in kiosk.turnstile.inputs)
            )
            assert all("pin factory" in i.detail for i in kiosk.turnstile.inputs)
            codes = local_server.seed()
            task = kiosk.gate.submit(RawScan(source="t", text=codes["season"], at=0))
            assert task is not None
            decision = await task
            assert decision.accepted and decision.relay_fault
        finally:
            await kiosk.stop()


def test_a_missing_gpiozero_is_one_line_and_exit_78(
    tmp_path: Path,
    local_server: LocalServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(__import__("sys").modules, "gpiozero", None)
    config = make_config(tmp_path, local_server)
    with pytest.raises(ConfigError, match="needs gpiozero"):
        Kiosk(config, api_key=local_server.api_key, sources=[])
    path = tmp_path / "gate.toml"
    path.write_text(
        f'[api]\nbase_url = "{local_server.base_url}"\n'
        f'[relay]\ntype = "gpio"\npin = {RELAY}\n'
        f'[journal]\npath = "{tmp_path / "j.sqlite3"}"\n'
    )
    monkeypatch.setenv("PASSQR_API_KEY", local_server.api_key)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        for argv in (["relay", "off"], ["relay", "test"], ["run", "--headless"]):
            assert cli.main([*argv, "--config", str(path)]) == 78, argv
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "needs gpiozero" in err, (argv, err)
            assert "Traceback" not in err
    finally:  # the CLI set up logging on capsys's stderr, which closes after this test
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


# -- headless JSON lines ---------------------------------------------------------------------------


async def test_headless_prints_each_passage_outcome_as_its_own_line(
    tmp_path: Path, local_server: LocalServer, pins: MockFactory
) -> None:
    config = make_config(tmp_path, local_server)
    source = HeldSource()
    kiosk = Kiosk(config, api_key=local_server.api_key, headless=True, sources=[source])
    out = Lines()
    run = asyncio.create_task(run_headless(config, api_key="", out=out, kiosk=kiosk))
    codes = local_server.seed()

    async def lines(n: int) -> list[dict[str, Any]]:
        await eventually(lambda: len(out.parsed()) >= n)
        return out.parsed()

    await source.codes.put(codes["season"])
    await lines(1)
    await eventually(lambda: all(i.state is SourceState.READY for i in kiosk.turnstile.inputs))
    press(pins.pin(PASSAGE))
    await lines(2)
    await source.codes.put(codes["valid"])
    await lines(4)  # its decision, then not_passed when the window closes
    press(pins.pin(PASSAGE))
    await lines(5)
    press(pins.pin(EXIT))
    await lines(6)
    await source.codes.put(None)  # the only source ends: the run ends
    assert await run == 0

    got = out.parsed()
    decisions = [line for line in got if "decision" in line]
    events = [line for line in got if "event" in line]
    assert len(decisions) == 2 and len(events) == 4
    assert set(decisions[0]) == {
        "ts", "gate", "source", "code", "decision", "reason", "holder", "offline",
        "latency_ms", "relay_fault",
    }  # fmt: skip
    assert [(e["event"], e["outcome"]) for e in events] == [
        ("passage", "passed"),
        ("passage", "not_passed"),
        ("passage", "forced"),
        ("exit", None),
    ]
    passed, not_passed, forced, exit_ = events
    assert set(passed) == {"ts", "gate", "event", "outcome", "scan_id", "code", "input", "detail"}
    assert passed["code"] == codes["season"] and passed["gate"] == "Turnstile 1"
    assert passed["input"] == "rotation" and passed["scan_id"]
    assert not_passed["code"] == codes["valid"]
    assert forced["scan_id"] is None and exit_["input"] == "exit button"
    scan_ids = {r["scan_id"] for r in Rig(kiosk, pins, codes, tmp_path).rows("scans")}
    assert {passed["scan_id"], not_passed["scan_id"]} == scan_ids
    assert pins.pin(RELAY).state is False


async def test_stopping_while_a_pin_is_being_claimed_lets_go_of_it(pins: MockFactory) -> None:
    """The claim runs on a thread; a stop that overtakes it must not leave the pin held."""
    contact = GpioInput(GpioInputConfig(type="gpio", pin=PASSAGE, role="passage"))
    release = threading.Event()
    claim = contact.claim
    held: list[Any] = []  # a reference elsewhere: gpiozero's __del__ cannot be relied on

    def slow_claim(edge: Any) -> Any:
        release.wait(5)
        held.append(claim(edge))
        return held[-1]

    contact.claim = slow_claim  # type: ignore[method-assign]
    task = asyncio.create_task(contact.run(lambda _: None))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    await eventually(lambda: bool(held) and held[0].closed)
    DigitalInputDevice(PASSAGE).close()  # free again: nothing holds it
