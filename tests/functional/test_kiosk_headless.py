"""End to end: a pty serial scanner -> the headless kiosk (a real process) -> the local
PassQR server over loopback HTTP -> an LCUS relay board on a pty.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest

from tests.conftest import LocalServer
from tests.support.serial_sim import BoardSim, LcusSim, ScannerSim

ROOT = Path(__file__).resolve().parents[2]


def write_config(
    tmp_path: Path, server: LocalServer, scanner: ScannerSim, relay: LcusSim, *, pulse_ms: int = 300
) -> Path:
    path = tmp_path / "gate.toml"
    path.write_text(f"""
[api]
base_url = "{server.base_url}"
timeout_s = 3.0

[gate]
name = "Test gate"
repeat_ignore_s = 2.0
result_hold_s = 1.0

[[sources]]
type = "serial"
port = "{scanner.link}"
baudrate = 9600

[relay]
type = "lcus"
port = "{relay.link}"
channel = 1
pulse_ms = {pulse_ms}

[journal]
path = "{tmp_path / "journal.sqlite3"}"
""")
    return path


def _pump(stream: IO[str], sink: queue.Queue[str]) -> None:
    with stream:
        for line in stream:
            sink.put(line)


@dataclass
class Kiosk:
    proc: subprocess.Popen[str]
    out: queue.Queue[str]
    err: queue.Queue[str]
    stderr_lines: list[str]
    pumps: list[threading.Thread]

    def finish(self) -> None:
        """SIGTERM if still running, then reap the process and its pipes."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pump in self.pumps:
            pump.join(5)

    def decision(self, timeout: float = 10.0) -> dict[str, Any]:
        line: dict[str, Any] = json.loads(self.out.get(timeout=timeout))
        return line

    def wait_stderr(self, needle: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(needle in line for line in self.stderr_lines):
                return
            try:
                self.stderr_lines.append(self.err.get(timeout=0.05))
            except queue.Empty:
                continue
        raise AssertionError(f"{needle!r} not in stderr: {''.join(self.stderr_lines)}")


def start_kiosk(config: Path, server: LocalServer, *extra: str) -> Kiosk:
    env = {**os.environ, "PASSQR_API_KEY": server.api_key, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "run", "--config", str(config), "--headless", *extra],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out: queue.Queue[str] = queue.Queue()
    err: queue.Queue[str] = queue.Queue()
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    return Kiosk(proc, out, err, [], pumps)


def has_ons(count: int) -> Callable[[BoardSim], bool]:
    """The board has seen ``count`` ON commands."""
    return lambda board: len(board.on_events()) == count


@dataclass
class Rig:
    server: LocalServer
    codes: dict[str, str]
    scanner: ScannerSim
    relay: LcusSim
    config: Path
    kiosk: Kiosk


def _rig(tmp_path: Path, server: LocalServer, pulse_ms: int) -> Iterator[Rig]:
    codes = server.seed()
    scanner = ScannerSim(tmp_path / "scanner")
    relay = LcusSim(tmp_path / "relay")
    config = write_config(tmp_path, server, scanner, relay, pulse_ms=pulse_ms)
    kiosk = start_kiosk(config, server)
    try:
        kiosk.wait_stderr("ready")
        yield Rig(server, codes, scanner, relay, config, kiosk)
    finally:
        kiosk.finish()
        scanner.close()
        relay.close()


@pytest.fixture
def rig(tmp_path: Path, local_server: LocalServer) -> Iterator[Rig]:
    yield from _rig(tmp_path, local_server, pulse_ms=300)


@pytest.fixture
def long_pulse_rig(tmp_path: Path, local_server: LocalServer) -> Iterator[Rig]:
    yield from _rig(tmp_path, local_server, pulse_ms=20_000)


def test_relay_is_off_at_start(rig: Rig) -> None:
    assert rig.relay.wait_for(lambda b: len(b.log.events) >= 1)
    assert all(not on for _, _, on in rig.relay.log.events)


def test_each_reason_on_screen_relay_and_journal(rig: Rig) -> None:
    c = rig.codes
    plays = [
        (c["valid"], "accepted", "valid", c["valid"]),
        (c["used"], "rejected", "used", c["used"]),
        (c["expired"], "rejected", "expired", c["expired"]),
        (c["revoked"], "rejected", "revoked", c["revoked"]),
        ("PASS-ZZZZ9999", "rejected", "not_found", "PASS-ZZZZ9999"),
        (f"https://www.passqr.com/p/{c['season'].lower()}", "accepted", "valid", c["season"]),
        ("[bold red]OPEN[/]", "rejected", "invalid_payload", "[bold red]OPEN[/]"),
        (f"]Q1{c['valid']}x", "rejected", "invalid_payload", f"]Q1{c['valid']}x"),
    ]
    for payload, decision, reason, code in plays:
        # Overlapping admissions extend one pulse: let the last one end to count ONs.
        assert rig.relay.wait_for(lambda b: not b.state[1])
        ons_before = len(rig.relay.on_events())
        rig.scanner.scan(payload, b"\r")
        line = rig.kiosk.decision()
        assert (line["decision"], line["reason"], line["code"]) == (decision, reason, code)
        assert line["gate"] == "Test gate"
        assert line["source"].startswith("serial:")
        assert isinstance(line["latency_ms"], float | int) and line["offline"] is False
        if decision == "accepted":
            assert rig.relay.wait_for(has_ons(ons_before + 1)), (
                payload,
                rig.relay.log.events,
            )
            assert line["holder"]
        else:
            assert len(rig.relay.on_events()) == ons_before, f"relay moved for {reason}"
    assert rig.relay.wait_for(lambda b: len(b.pulses()) == 2 and not b.state[1])
    for on, off in rig.relay.pulses():
        assert 0.28 <= off - on <= 1.5
    assert rig.relay.log.bad_frames == 0

    export = subprocess.run(
        [
            sys.executable,
            "-m",
            "scanner",
            "journal",
            "export",
            "--config",
            str(rig.config),
            "--format",
            "jsonl",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(x) for x in export.stdout.splitlines()]
    assert [r["reason"] for r in rows] == [p[2] for p in plays]
    assert all(r["scan_id"] and r["ts"] for r in rows)


def test_repeats_are_suppressed_and_uses_not_burnt(rig: Rig) -> None:
    season = rig.codes["season"]
    rig.scanner.scan(season, b"\n")
    assert rig.kiosk.decision()["decision"] == "accepted"
    for _ in range(5):  # a phone held at the scanner
        rig.scanner.scan(season, b"\n")
    rig.scanner.scan("PASS-ZZZZ0001", b"\n")  # the next distinct scan comes through
    assert rig.kiosk.decision()["code"] == "PASS-ZZZZ0001"
    time.sleep(2.1)
    rig.scanner.scan(season, b"\n")
    assert rig.kiosk.decision()["decision"] == "accepted"
    assert rig.relay.wait_for(lambda b: len(b.on_events()) == 2)
    time.sleep(0.3)
    assert len(rig.relay.on_events()) == 2, "held repeats must not open the door again"


def test_sigterm_mid_pulse_leaves_the_relay_off(long_pulse_rig: Rig) -> None:
    rig = long_pulse_rig
    rig.scanner.scan(rig.codes["season"], b"\r\n")
    assert rig.kiosk.decision()["decision"] == "accepted"
    assert rig.relay.wait_for(lambda b: b.state[1])
    rig.kiosk.proc.send_signal(signal.SIGTERM)
    assert rig.kiosk.proc.wait(10) == 0
    rig.kiosk.finish()
    assert rig.relay.wait_for(lambda b: not b.state[1], timeout=2)
    assert rig.relay.log.events[-1][2] is False


def test_missing_key_is_a_clear_error(tmp_path: Path, local_server: LocalServer) -> None:
    scanner = ScannerSim(tmp_path / "scanner")
    relay = LcusSim(tmp_path / "relay")
    try:
        config = write_config(tmp_path, local_server, scanner, relay)
        env = {k: v for k, v in os.environ.items() if k != "PASSQR_API_KEY"}
        result = subprocess.run(
            [sys.executable, "-m", "scanner", "run", "--config", str(config), "--headless"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        scanner.close()
        relay.close()
    assert result.returncode == 78
    assert "no API key" in result.stderr
    assert "Traceback" not in result.stderr


def test_stdin_codes_for_scripts(tmp_path: Path, local_server: LocalServer) -> None:
    codes = local_server.seed()
    config = tmp_path / "pipe.toml"
    config.write_text(f"""
[api]
base_url = "{local_server.base_url}"
[gate]
name = "Pipe"
[[sources]]
type = "keyboard"
[journal]
path = "{tmp_path / "j.sqlite3"}"
""")
    env = {**os.environ, "PASSQR_API_KEY": local_server.api_key}
    result = subprocess.run(
        [sys.executable, "-m", "scanner", "run", "--config", str(config), "--headless"],
        cwd=ROOT,
        env=env,
        input=f"{codes['valid']}\n{codes['revoked']}\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(x) for x in result.stdout.splitlines()]
    assert [(x["code"], x["decision"]) for x in lines] == [
        (codes["valid"], "accepted"),
        (codes["revoked"], "rejected"),
    ]
    assert lines[0]["holder"] == "Ada Lovelace"
