"""Every relay driver against a simulator of its board on a pty pair."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanner.config import RelayConfig, parse_config
from scanner.errors import ConfigError
from scanner.relay import Relay, RelayState, build_relay
from scanner.relay import base as relay_base
from scanner.relay.numato import numato_index, parse_read
from tests.support.serial_sim import (
    BoardSim,
    CommandSim,
    Hw667Sim,
    KmtronicSim,
    LcusSim,
    NumatoSim,
)
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Board:
    name: str
    sim: Callable[[Path], BoardSim]
    config: dict[str, object]
    channel: int = 1


BOARDS = [
    Board("lcus", lambda p: LcusSim(p), {"type": "lcus", "channel": 3}, 3),
    Board("numato", lambda p: NumatoSim(p, channels=16), {"type": "numato", "channel": 12}, 12),
    Board("kmtronic", lambda p: KmtronicSim(p), {"type": "kmtronic", "channel": 2}, 2),
    Board("hw667", lambda p: Hw667Sim(p), {"type": "hw667"}),
    Board(
        "ascii",
        lambda p: CommandSim(p, b"open 1\r", b"close 1\r"),
        {"type": "ascii", "on_command": "open {channel}\r", "off_command": "close {channel}\r"},
    ),
    Board(
        "hex",
        lambda p: CommandSim(p, b"\x55\x01\x01", b"\x55\x01\x00"),
        {"type": "hex", "on_command": "55 {channel:02X} 01", "off_command": "55 {channel:02X} 00"},
    ),
]


@pytest.fixture(params=BOARDS, ids=[b.name for b in BOARDS])
def board(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Board, BoardSim]]:
    spec: Board = request.param
    sim = spec.sim(tmp_path / "relay")
    yield spec, sim
    sim.close()


def make(spec: Board, sim: BoardSim, pulse_ms: int) -> Relay:
    table = {**spec.config, "port": str(sim.link), "pulse_ms": pulse_ms}
    return build_relay(parse_config({"relay": table}).relay)


async def test_off_at_start_pulse_then_off(board: tuple[Board, BoardSim]) -> None:
    spec, sim = board
    relay = make(spec, sim, pulse_ms=200)
    await relay.start()
    assert relay.state is RelayState.OFF
    assert await sim.until(lambda b: len(b.log.events) >= 1)
    assert sim.log.events[0][1:] == (spec.channel, False), "the first thing a board hears is OFF"
    assert await relay.pulse()
    assert await sim.until(lambda b: len(b.pulses(spec.channel)) == 1)
    ((on, off),) = sim.pulses(spec.channel)
    assert 0.18 <= off - on <= 0.7
    assert sim.log.bad_frames == 0
    await relay.close()
    assert not sim.state[spec.channel]


async def test_close_on_an_exception_mid_pulse_turns_off(board: tuple[Board, BoardSim]) -> None:
    spec, sim = board
    relay = make(spec, sim, pulse_ms=30_000)
    await relay.start()

    async def kiosk_that_fails() -> None:
        try:
            await relay.pulse()
            assert await sim.until(lambda b: b.state[spec.channel])
            raise RuntimeError("the kiosk failed")
        finally:
            await relay.close()

    with pytest.raises(RuntimeError):
        await kiosk_that_fails()
    assert await sim.until(lambda b: not b.state[spec.channel], within_s=2)


async def test_vanished_port_comes_back_off_first(
    board: tuple[Board, BoardSim], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay_base, "RECONNECT_S", 0.05)
    spec, sim = board
    relay = make(spec, sim, pulse_ms=100)
    await relay.start()
    sim.unplug()
    await asyncio.sleep(0.2)  # the kernel hangs the tty up asynchronously
    assert await relay.pulse() is False
    assert relay.state is RelayState.FAULT
    assert relay.fault
    sim.log.events.clear()
    sim.plug()
    # No scan needed: the watch reopens the board and sends OFF as soon as it is back.
    assert await sim.until(lambda b: len(b.log.events) >= 1, within_s=3)
    assert sim.log.events[0][2] is False
    await eventually(lambda: relay.state is RelayState.OFF)  # after the board's answer
    assert await relay.pulse()
    assert await sim.until(lambda b: len(b.pulses(spec.channel)) == 1)
    await relay.close()


def test_sigterm_mid_pulse_leaves_the_relay_off(
    board: tuple[Board, BoardSim], tmp_path: Path
) -> None:
    spec, sim = board
    table = {**spec.config, "port": str(sim.link)}
    lines = [f"{key} = {json.dumps(value)}" for key, value in table.items()]
    config = tmp_path / "relay.toml"
    config.write_text("[relay]\n" + "\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanner",
            "relay",
            "test",
            "--config",
            str(config),
            "--pulse-ms",
            "30000",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.wait_for(lambda b: b.state[spec.channel], timeout=10)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "interrupted" in out
    assert "sent" in out
    assert sim.wait_for(lambda b: not b.state[spec.channel], timeout=2)


def test_relay_test_says_what_it_sent_and_the_lock(tmp_path: Path) -> None:
    sim = KmtronicSim(tmp_path / "relay")
    try:
        config = tmp_path / "relay.toml"
        config.write_text(
            f'[relay]\ntype = "kmtronic"\nport = "{sim.link}"\nchannel = 1\n'
            'pulse_ms = 50\nlock = "fail-safe"\n'
        )
        result = subprocess.run(
            [sys.executable, "-m", "scanner", "relay", "test", "--config", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
        off = subprocess.run(
            [sys.executable, "-m", "scanner", "relay", "off", "--config", str(config)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        sim.close()
    assert result.returncode == 0, result.stderr
    assert "fail-safe" in result.stdout
    assert "sent     FF 01 01" in result.stdout
    assert "received FF 01 01" in result.stdout
    assert "\\x" not in result.stdout and "\ufffd" not in result.stdout, "no escape soup"
    assert "sent     FF 01 01                 ..." in result.stdout, "non-ASCII bytes as dots"
    assert result.stdout.strip().endswith("OFF")
    assert off.returncode == 0
    assert "sent     FF 01 00" in off.stdout


@pytest.mark.parametrize(
    ("command", "says"),
    [("off", "FAILED"), ("test", "fix: relay.port does not exist")],
)
def test_a_missing_board_is_reported_with_its_fix(tmp_path: Path, command: str, says: str) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(f'[relay]\ntype = "lcus"\nport = "{tmp_path / "gone"}"\n')
    result = subprocess.run(
        [sys.executable, "-m", "scanner", "relay", command, "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert says in result.stdout
    assert "Traceback" not in result.stderr


async def test_numato_state_read_back_catches_a_lying_board(tmp_path: Path) -> None:
    sim = NumatoSim(tmp_path / "relay", lie=True)
    try:
        relay = build_relay(RelayConfig(type="numato", port=str(sim.link), pulse_ms=100))
        await relay.start()
        assert relay.state is RelayState.FAULT
        assert "reports relay 0 on after OFF" in relay.fault
        await relay.close()
    finally:
        sim.close()


def test_numato_helpers() -> None:
    assert numato_index(1) == "0"
    assert numato_index(11) == "A"
    assert parse_read(b"relay read 0\n\ron\n\r>", "0") is True
    assert parse_read(b"relay read A\n\roff\n\r>", "A") is False
    assert parse_read(b"relay read 0\n\r>", "0") is None


async def test_hw667_pulse_is_timed_by_the_board(tmp_path: Path) -> None:
    """Even if the kiosk died mid-pulse, the board lets go after a second."""
    sim = Hw667Sim(tmp_path / "relay")
    try:
        relay = build_relay(RelayConfig(type="hw667", port=str(sim.link), pulse_ms=60_000))
        await relay.start()
        await relay.pulse()
        relay._pool.submit(relay._release).result()  # the port vanishes with the process
        assert await sim.until(lambda b: len(b.pulses()) == 1, within_s=3)
        ((on, off),) = sim.pulses()
        assert 0.9 <= off - on <= 1.5
        assert sim.log.raw.startswith(b"\xbb\xcc")
    finally:
        sim.close()


@pytest.mark.parametrize(
    ("table", "match"),
    [
        ({"type": "ascii", "port": "/dev/x", "on_command": "on"}, "off_command: required"),
        (
            {"type": "hex", "port": "/dev/x", "on_command": "zz", "off_command": "00"},
            "not hex bytes",
        ),
        (
            {"type": "ascii", "port": "/dev/x", "on_command": "{relay}", "off_command": "x"},
            "on_command",
        ),
        ({"type": "lcus", "port": "/dev/x", "on_command": "x"}, "only relay types"),
        ({"type": "numato", "port": "/dev/x", "channel": 33}, "channels 1 to 32"),
        ({"type": "hw667", "port": "/dev/x", "channel": 2}, "channels 1 to 1"),
        ({"type": "lcus", "port": "/dev/x", "lock": "open"}, "relay.lock"),
        ({"type": "lcus", "port": "/dev/x", "open_delay_ms": -1}, "open_delay_ms"),
    ],
)
def test_relay_config_is_checked(table: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_config({"relay": table})


async def test_open_delay_waits_before_the_first_command(tmp_path: Path) -> None:
    sim = LcusSim(tmp_path / "relay")
    try:
        relay = build_relay(RelayConfig(type="lcus", port=str(sim.link), open_delay_ms=300))
        loop = asyncio.get_running_loop()
        started = loop.time()
        await relay.start()
        assert loop.time() - started >= 0.3
        assert await sim.until(lambda b: len(b.log.events) == 1)
        await relay.close()
    finally:
        sim.close()


def test_no_stray_env() -> None:
    assert "PASSQR_API_KEY" not in os.environ
