"""The evdev wedge-scanner source: keycodes on recorded event sequences, the device loop
on a replayed device, and a real uinput keyboard where the machine has /dev/uinput."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanner.config import parse_config
from scanner.models import RawScan
from scanner.sources import SourceState, build_source
from scanner.sources.evdev_keys import (
    EV_KEY,
    KEY_CAPSLOCK,
    KEY_ENTER,
    KEY_LEFTSHIFT,
    KeyDecoder,
)
from scanner.sources.evdev_source import EvdevSource
from tests.support.waiting import eventually

# What a Honeywell-style wedge scanner sends for "PASS-AB12" + Enter: Shift held for
# capitals, press (1) and release (0) for every key, SYN events (type 0) between.
KEY = {
    "P": 25,
    "A": 30,
    "S": 31,
    "B": 48,
    "-": 12,
    "1": 2,
    "2": 3,
    "Z": 44,
    "Y": 21,
    "/": 53,
    ":": 39,
    "H": 35,
    "T": 20,
    "?": 53,
    "=": 13,
}


def typed(text: str, *, enter: bool = True) -> list[tuple[int, int, int]]:
    events: list[tuple[int, int, int]] = []
    shifted = set('ABCDEFGHIJKLMNOPQRSTUVWXYZ:?!@#$%^&*()_+{}|"<>~')
    for ch in text:
        code = KEY[ch.upper()]
        if ch in shifted:
            events.append((EV_KEY, KEY_LEFTSHIFT, 1))
        events += [(EV_KEY, code, 1), (0, 0, 0), (EV_KEY, code, 0), (0, 0, 0)]
        if ch in shifted:
            events.append((EV_KEY, KEY_LEFTSHIFT, 0))
    if enter:
        events += [(EV_KEY, KEY_ENTER, 1), (EV_KEY, KEY_ENTER, 0)]
    return events


def decode_all(events: list[tuple[int, int, int]]) -> list[str]:
    decoder = KeyDecoder()
    return [t for e in events if (t := decoder.feed(*e)) is not None]


def test_a_recorded_scan_decodes_with_shift() -> None:
    assert decode_all(typed("PASS-AB12")) == ["PASS-AB12"]


def test_us_layout_keeps_y_z_and_punctuation() -> None:
    assert decode_all(typed("HTTPS:/ZY?=")) == ["HTTPS:/ZY?="]
    assert decode_all(typed("a-z", enter=True)) == ["a-z"]


def test_capslock_autorepeat_and_unknown_keys() -> None:
    events = [(EV_KEY, KEY_CAPSLOCK, 1), (EV_KEY, KEY_CAPSLOCK, 0)]
    events += typed("ab", enter=False)
    events += [(EV_KEY, 30, 2)]  # autorepeat adds nothing
    events += [(EV_KEY, 113, 1), (EV_KEY, 113, 0)]  # KEY_MUTE: no character
    events += [(EV_KEY, KEY_ENTER, 1)]
    assert decode_all(events) == ["AB"]


def test_empty_enter_is_no_code() -> None:
    assert decode_all([(EV_KEY, KEY_ENTER, 1), (EV_KEY, KEY_ENTER, 0)]) == []


def test_config_builds_the_source() -> None:
    config = parse_config({"sources": [{"type": "evdev", "device": "Honeywell"}]})
    source = build_source(config.sources[0])
    assert isinstance(source, EvdevSource)
    assert source.grab is True


@dataclass
class Event:
    type: int
    code: int
    value: int


class ReplayDevice:
    """A recorded device: a pipe makes ``fd`` selectable; ``read`` replays the events."""

    def __init__(
        self, name: str, events: list[tuple[int, int, int]], *, unplug_after: bool = False
    ) -> None:
        self.name = name
        self._r, self._w = os.pipe()
        self.fd = self._r
        self._events = [Event(*e) for e in events]
        self._unplug_after = unplug_after
        self.grabbed = False
        os.write(self._w, b"x")

    def grab(self) -> None:
        self.grabbed = True

    def ungrab(self) -> None:
        self.grabbed = False

    def read(self) -> Iterator[Event]:
        os.read(self._r, 1)
        events, self._events = self._events, []
        yield from events
        if self._unplug_after:
            raise OSError(19, "No such device")

    def close(self) -> None:
        os.close(self._r)
        os.close(self._w)


class FakeEvdev:
    """Stands in for python-evdev's module: a kernel we cannot provoke here."""

    def __init__(self) -> None:
        self.devices: dict[str, list[ReplayDevice]] = {}
        self.opened: list[ReplayDevice] = []

    def list_devices(self) -> list[str]:
        return [p for p, queue in self.devices.items() if queue]

    def InputDevice(self, path: str) -> ReplayDevice:  # noqa: N802 - evdev's own name
        queue = self.devices.get(path)
        if not queue:
            raise OSError(2, f"No such file: {path}")
        device = queue.pop(0)
        self.opened.append(device)
        return device


async def collect(source: EvdevSource, n: int) -> list[RawScan]:
    got: list[RawScan] = []
    task = asyncio.create_task(source.run(got.append))
    try:
        await eventually(lambda: len(got) >= n)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    return got


async def test_found_by_name_grabbed_and_read() -> None:
    fake = FakeEvdev()
    fake.devices["/dev/input/event3"] = [
        ReplayDevice("Honeywell Imaging 1900", typed("PASS-AB12") + typed("PASS-ZY12"))
    ]
    source = EvdevSource("honeywell", evdev_module=fake)
    got = await collect(source, 2)
    assert [s.text for s in got] == ["PASS-AB12", "PASS-ZY12"]
    assert fake.opened[0].grabbed is False, "ungrabbed when the source stops"
    assert source.state is SourceState.STOPPED


async def test_unplug_then_replug_loses_nothing() -> None:
    fake = FakeEvdev()
    path = "/dev/input/by-id/usb-scanner-event-kbd"
    fake.devices[path] = [
        ReplayDevice("scanner", typed("PASS-AB12"), unplug_after=True),
        ReplayDevice("scanner", typed("PASS-AB21")),
    ]
    source = EvdevSource(path, evdev_module=fake)
    got = await collect(source, 2)
    assert [s.text for s in got] == ["PASS-AB12", "PASS-AB21"]


async def test_missing_device_is_degraded_not_a_crash() -> None:
    source = EvdevSource("/dev/input/nothing", evdev_module=FakeEvdev())
    task = asyncio.create_task(source.run(lambda _: None))
    await eventually(lambda: source.state is SourceState.DEGRADED)
    assert "cannot open" in source.detail
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.skipif(
    not os.path.exists("/dev/uinput") or not os.access("/dev/uinput", os.W_OK),
    reason="no writable /dev/uinput on this machine (containers rarely have one); "
    "the recorded-sequence tests above cover the decoding",
)
async def test_real_uinput_keyboard(tmp_path: Path) -> None:  # pragma: no cover - needs uinput
    import evdev

    ui = evdev.UInput(name="passqr-test-scanner")
    try:
        await asyncio.sleep(0.3)  # udev creates the node
        source = EvdevSource("passqr-test-scanner")
        got: list[RawScan] = []
        task = asyncio.create_task(source.run(got.append))
        await eventually(lambda: source.state is SourceState.READY)
        for ev_type, code, value in typed("PASS-AB12"):
            if ev_type == EV_KEY:
                ui.write(ev_type, code, value)
                ui.syn()
        await eventually(lambda: len(got) == 1)
        assert got[0].text == "PASS-AB12"
        task.cancel()
    finally:
        ui.close()
