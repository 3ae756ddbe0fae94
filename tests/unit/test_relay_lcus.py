"""The LCUS driver against a simulated board on a pty pair."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.relay import LcusRelay, RelayState
from scanner.relay.lcus import lcus_frame
from tests.support.serial_sim import LcusSim


@pytest.fixture
def board(tmp_path: Path) -> Iterator[LcusSim]:
    sim = LcusSim(tmp_path / "relay")
    yield sim
    sim.close()


def test_frames_match_the_datasheet() -> None:
    assert lcus_frame(1, True) == bytes.fromhex("A00101A2")
    assert lcus_frame(1, False) == bytes.fromhex("A00100A1")
    assert lcus_frame(4, True) == bytes.fromhex("A00401A5")


async def test_off_at_start_then_one_timed_pulse(board: LcusSim) -> None:
    relay = LcusRelay(str(board.link), channel=2, pulse_ms=150)
    await relay.start()
    assert await board.until(lambda b: len(b.log.events) >= 1)
    assert board.log.events[0][1:] == (2, False)
    assert await relay.pulse()
    assert relay.state is RelayState.ON
    assert await board.until(lambda b: len(b.pulses(2)) == 1)
    ((on, off),) = board.pulses(2)
    assert 0.13 <= off - on <= 0.6
    assert board.state[2] is False
    assert board.log.bad_frames == 0
    await relay.close()


async def test_overlapping_pulses_extend_one_pulse(board: LcusSim) -> None:
    relay = LcusRelay(str(board.link), pulse_ms=300)
    await relay.start()
    await relay.pulse()
    await asyncio.sleep(0.15)
    await relay.pulse()
    assert await board.until(lambda b: len(b.pulses()) == 1, within_s=3)
    await asyncio.sleep(0.1)
    assert len(board.on_events()) == 1, "a second ON frame means pulses stacked"
    ((on, off),) = board.pulses()
    assert 0.42 <= off - on <= 1.0
    await relay.close()


async def test_close_mid_pulse_turns_off(board: LcusSim) -> None:
    relay = LcusRelay(str(board.link), pulse_ms=10_000)
    await relay.start()
    await relay.pulse()
    assert await board.until(lambda b: b.state[1])
    await relay.close()
    assert await board.until(lambda b: not b.state[1], within_s=2)


async def test_cancelled_pulse_task_still_turns_off(board: LcusSim) -> None:
    relay = LcusRelay(str(board.link), pulse_ms=10_000)
    await relay.start()
    await relay.pulse()
    assert relay._off_task is not None
    relay._off_task.cancel()
    assert await board.until(lambda b: not b.state[1] and len(b.pulses()) == 1, within_s=2)
    await relay.close()


async def test_off_now_is_synchronous_and_safe(board: LcusSim) -> None:
    relay = LcusRelay(str(board.link), pulse_ms=10_000)
    await relay.start()
    await relay.pulse()
    relay.off_now()
    assert await board.until(lambda b: not b.state[1], within_s=2)
    await relay.close()


async def test_missing_port_is_a_fault_not_a_crash(tmp_path: Path) -> None:
    relay = LcusRelay(str(tmp_path / "no-such-port"), pulse_ms=100)
    await relay.start()
    assert relay.state is RelayState.FAULT
    assert relay.fault
    assert await relay.pulse() is False
    relay.off_now()  # must not raise
    await relay.close()


async def test_vanished_port_reconnects_with_off_first(board: LcusSim) -> None:
    relay = LcusRelay(str(board.link), pulse_ms=100)
    await relay.start()
    assert await board.until(lambda b: len(b.log.events) >= 1)
    board.unplug()
    await asyncio.sleep(0.2)  # the kernel hangs the tty up asynchronously
    assert await relay.pulse() is False
    assert relay.state is RelayState.FAULT
    board.log.events.clear()
    board.plug()
    assert await relay.pulse() is True
    assert await board.until(lambda b: len(b.pulses()) == 1, within_s=3)
    assert board.log.events[0][2] is False, "a reopened board gets OFF before anything"
    await relay.close()
