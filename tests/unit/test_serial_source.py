"""The serial scanner source against a simulated scanner on a pty pair."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from scanner.models import RawScan
from scanner.sources import SerialSource, SourceState
from scanner.sources.serial import LineSplitter
from tests.support.serial_sim import ScannerSim
from tests.support.waiting import eventually


def test_splitter_handles_every_terminator_and_split_writes() -> None:
    s = LineSplitter()
    assert s.feed(b"AB\rCD\nEF\r\nGH") == [b"AB", b"CD", b"EF"]
    assert s.feed(b"I\r") == [b"GHI"]
    assert s.feed(b"\n") == []  # the LF of a CRLF split across reads
    assert s.feed(b"\r\n\r\nJK\n") == [b"JK"]


def test_splitter_caps_a_runaway_line() -> None:
    s = LineSplitter(max_len=8)
    assert s.feed(b"x" * 100 + b"\n") == [b"x" * 8]


class Collector:
    def __init__(self) -> None:
        self.scans: list[RawScan] = []
        self.changed = asyncio.Event()

    def __call__(self, scan: RawScan) -> None:
        self.scans.append(scan)
        self.changed.set()

    async def wait_count(self, n: int, within_s: float = 5.0) -> list[str]:
        async with asyncio.timeout(within_s):
            while len(self.scans) < n:
                self.changed.clear()
                await self.changed.wait()
        return [s.text for s in self.scans]


@pytest.fixture
def scanner_device(tmp_path: Path) -> Iterator[ScannerSim]:
    sim = ScannerSim(tmp_path / "scanner")
    yield sim
    sim.close()


@pytest.fixture
async def running(scanner_device: ScannerSim) -> AsyncIterator[tuple[SerialSource, Collector]]:
    source = SerialSource(str(scanner_device.link), idle_timeout_s=0.15)
    got = Collector()
    task = asyncio.create_task(source.run(got))
    await eventually(lambda: source.state is SourceState.READY)
    yield source, got
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_every_terminator_and_split_writes_count_every_code(
    running: tuple[SerialSource, Collector], scanner_device: ScannerSim
) -> None:
    _, got = running
    scanner_device.scan("PASS-AAAA0001", b"\r")
    scanner_device.scan("PASS-AAAA0002", b"\n")
    scanner_device.scan("PASS-AAAA0003", b"\r\n")
    await asyncio.to_thread(scanner_device.scan, "]Q1PASS-AAAA0004", b"\r\n", split=3, pause_s=0.01)
    assert await got.wait_count(4) == [
        "PASS-AAAA0001",
        "PASS-AAAA0002",
        "PASS-AAAA0003",
        "]Q1PASS-AAAA0004",
    ]


async def test_no_terminator_scanner_ends_on_idle(
    running: tuple[SerialSource, Collector], scanner_device: ScannerSim
) -> None:
    _, got = running
    scanner_device.scan("PASS-BBBB0001", b"")
    assert await got.wait_count(1) == ["PASS-BBBB0001"]


async def test_junk_bytes_arrive_as_text_not_a_crash(
    running: tuple[SerialSource, Collector], scanner_device: ScannerSim
) -> None:
    _, got = running
    scanner_device.scan(b"\xff\xfe\x00junk", b"\r")
    scanner_device.scan("PASS-CCCC0001", b"\r")
    texts = await got.wait_count(2)
    assert texts[1] == "PASS-CCCC0001"
    assert "junk" in texts[0]


async def test_unplug_and_replug_reconnects_and_loses_nothing(
    running: tuple[SerialSource, Collector], scanner_device: ScannerSim
) -> None:
    source, got = running
    scanner_device.scan("PASS-DDDD0001", b"\r")
    await got.wait_count(1)
    scanner_device.unplug()
    await eventually(lambda: source.state is SourceState.DEGRADED)
    scanner_device.plug()
    loop = asyncio.get_running_loop()
    replugged = loop.time()
    await eventually(lambda: source.state is SourceState.READY)
    assert loop.time() - replugged < 2.0
    scanner_device.scan("PASS-DDDD0002", b"\r")
    assert await got.wait_count(2) == ["PASS-DDDD0001", "PASS-DDDD0002"]


async def test_exclusive_open(
    running: tuple[SerialSource, Collector], scanner_device: ScannerSim
) -> None:
    import serial

    with pytest.raises(serial.SerialException):
        serial.Serial(str(scanner_device.link), exclusive=True)
