"""``passqr-scanner doctor`` against the local PassQR server and pty devices: all OK, then
each failure an installer meets, each with its fix; and the API key never in the output."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanner.doctor import (
    Check,
    Status,
    add_doctor_parser,
    diagnose,
    format_json,
    format_text,
    rate_budget,
)
from tests.conftest import LocalServer
from tests.support.serial_sim import LcusSim, ScannerSim

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Gate:
    """A gate's files and devices: config, key file, a pty scanner and a pty LCUS board."""

    tmp: Path
    server: LocalServer
    scanner: ScannerSim
    relay: LcusSim
    key: str

    def config(
        self,
        *,
        base_url: str | None = None,
        journal: Path | None = None,
        sources: str | None = None,
    ) -> Path:
        key_file = self.tmp / "api-key"
        key_file.write_text(self.key + "\n")
        key_file.chmod(0o600)
        if sources is None:
            sources = f'[[sources]]\ntype = "serial"\nport = "{self.scanner.link}"\n'
        (self.tmp / "state").mkdir(exist_ok=True)  # what StateDirectory= does
        path = self.tmp / "gate.toml"
        path.write_text(
            f"""
[api]
base_url = "{base_url or self.server.base_url}"
key_file = "{key_file}"
timeout_s = 2.0

[gate]
name = "Doctor gate"

{sources}

[relay]
type = "lcus"
port = "{self.relay.link}"
pulse_ms = 500

[journal]
path = "{journal or self.tmp / "state" / "journal.sqlite3"}"
"""
        )
        return path

    async def run(
        self, config: Path, *, click: bool = False, environ: dict[str, str] | None = None
    ) -> dict[str, Check]:
        """The doctor, with the key in PASSQR_API_KEY unless ``environ`` says otherwise."""
        env = {"PASSQR_API_KEY": self.key} if environ is None else environ
        checks = await diagnose(
            config, relay_click=click, environ=env, credential_file=self.tmp / "no-such-key"
        )
        text = format_text(checks, config)
        report = format_json(checks, config)
        # The key is never formatted into a check (before any redaction), nor printed.
        for check in checks:
            assert self.key not in check.detail + check.fix
        assert self.key not in text
        assert self.key not in report
        assert json.loads(report)["ready"] == (not any(c.status is Status.FAIL for c in checks))
        names = [c.name for c in checks]
        assert len(names) == len(set(names))
        return {c.name: c for c in checks}


@pytest.fixture
def gate(tmp_path: Path, local_server: LocalServer) -> Iterator[Gate]:
    scanner = ScannerSim(tmp_path / "scanner")
    relay = LcusSim(tmp_path / "relay")
    try:
        yield Gate(tmp_path, local_server, scanner, relay, local_server.api_key)
    finally:
        scanner.close()
        relay.close()


def failed(checks: dict[str, Check]) -> list[str]:
    return [name for name, c in checks.items() if c.status is Status.FAIL]


async def test_a_ready_gate_has_no_failure_and_switches_nothing(gate: Gate) -> None:
    checks = await gate.run(gate.config())

    assert failed(checks) == []
    for name in ("config", "api key", "api server", "api key accepted", "source 1 (serial)"):
        assert checks[name].status is Status.OK, checks[name]
    assert "PASSQR_API_KEY" in checks["api key"].detail
    assert "round trip" in checks["api server"].detail
    assert checks["api rate budget"].detail == "not reported by the server"
    assert checks["relay"].status is Status.OK
    assert "nothing switched" in checks["relay"].detail
    assert checks["journal"].status is Status.OK
    # Nothing was written to the board, and no journal file was left behind by root.
    assert gate.relay.log.raw == bytearray()
    assert not (gate.tmp / "state" / "journal.sqlite3").exists()
    assert [p.name for p in (gate.tmp / "state").iterdir()] == []


async def test_relay_click_pulses_the_board_once(gate: Gate) -> None:
    checks = await gate.run(gate.config(), click=True)

    assert checks["relay"].status is Status.OK, checks["relay"]
    assert "clicked" in checks["relay"].detail
    assert await gate.relay.until(lambda b: len(b.pulses()) == 1)
    assert gate.relay.state[1] is False


async def test_a_rejected_key_says_so_and_how_to_get_a_new_one(gate: Gate) -> None:
    bogus = "pqr_live_" + "Z" * 40
    gate.key = bogus  # the run() helper checks this one never shows
    checks = await gate.run(gate.config())

    assert failed(checks) == ["api key accepted"]
    check = checks["api key accepted"]
    assert "API key rejected" in check.detail
    assert "create a new key" in check.fix
    assert checks["api server"].status is Status.OK


async def test_a_key_file(gate: Gate) -> None:
    config = gate.config()  # api.key_file, mode 0600

    checks = await gate.run(config, environ={})

    check = checks["api key"]
    assert f"api.key_file {gate.tmp / 'api-key'}" in check.detail
    assert checks["api key accepted"].status is Status.OK
    if os.geteuid() == 0:
        # Root's file: the unit's user could not read it, and api.key_file is read first.
        assert check.status is Status.WARN
        assert "remove api.key_file" in check.fix
    else:
        assert check.status is Status.OK
    (gate.tmp / "api-key").chmod(0o644)
    check = (await gate.run(config, environ={}))["api key"]
    assert check.status is Status.FAIL  # `run` refuses it too (exit 78)
    assert "readable by other users" in check.detail
    assert check.fix == f"others can read the key: chmod 600 {gate.tmp / 'api-key'}"


async def test_the_units_credential(gate: Gate) -> None:
    config = gate.config()
    config.write_text(config.read_text().replace(f'key_file = "{gate.tmp / "api-key"}"\n', ""))
    credentials = gate.tmp / "credentials"
    credentials.mkdir()
    (credentials / "api-key").write_text(gate.key)
    (credentials / "api-key").chmod(0o400)

    checks = await gate.run(config, environ={"CREDENTIALS_DIRECTORY": str(credentials)})

    assert checks["api key"].status is Status.OK
    assert "systemd credential" in checks["api key"].detail
    assert checks["api key accepted"].status is Status.OK


async def test_no_key_anywhere(gate: Gate) -> None:
    config = gate.config()
    text = config.read_text().replace(f'key_file = "{gate.tmp / "api-key"}"\n', "")
    config.write_text(text)

    checks = await gate.run(config, environ={})

    assert checks["api key"].status is Status.FAIL
    assert "LoadCredential" in checks["api key"].fix
    assert checks["api server"].status is Status.SKIP


async def test_no_server_listening(gate: Gate) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    checks = await gate.run(gate.config(base_url=f"http://127.0.0.1:{port}/api/v1"))

    assert failed(checks) == ["api server"]
    assert "cannot reach" in checks["api server"].detail
    assert "api.base_url" in checks["api server"].fix
    assert checks["api key accepted"].status is Status.SKIP


async def test_an_unplugged_scanner(gate: Gate) -> None:
    gate.scanner.unplug()
    checks = await gate.run(gate.config())

    assert failed(checks) == ["source 1 (serial)"]
    assert checks["source 1 (serial)"].detail == f"{gate.scanner.link}: not found"
    assert "plug the scanner in" in checks["source 1 (serial)"].fix


async def test_an_unplugged_relay(gate: Gate) -> None:
    # close(), not unplug(): it stops the board's reader thread first, so that thread cannot
    # read from a file that reuses the closed pty's descriptor number.
    gate.relay.close()
    checks = await gate.run(gate.config())

    assert failed(checks) == ["relay"]
    assert "not found" in checks["relay"].detail


@pytest.mark.parametrize(
    ("sources", "name"),
    [
        ('[[sources]]\ntype = "evdev"\ndevice = "/dev/input/no-such-scanner"', "source 1 (evdev)"),
        ('[[sources]]\ntype = "camera"\ndevice = "/dev/no-such-video9"', "source 1 (camera)"),
    ],
)
async def test_missing_evdev_and_camera_devices(gate: Gate, sources: str, name: str) -> None:
    checks = await gate.run(gate.config(sources=sources))

    assert failed(checks) == [name]
    assert "not found" in checks[name].detail


async def test_a_scanner_held_by_the_running_kiosk_is_a_warning(gate: Gate) -> None:
    import serial

    held = serial.Serial(str(gate.scanner.link), 9600, exclusive=True)
    try:
        checks = await gate.run(gate.config())
    finally:
        held.close()

    check = checks["source 1 (serial)"]
    assert check.status is Status.WARN
    assert "in use" in check.detail
    assert "systemctl stop passqr-scanner" in check.fix


async def test_a_journal_path_that_cannot_be_a_directory(gate: Gate) -> None:
    blocker = gate.tmp / "not-a-dir"
    blocker.write_text("")
    checks = await gate.run(gate.config(journal=blocker / "journal.sqlite3"))

    assert failed(checks) == ["journal"]
    assert "chown passqr" in checks["journal"].fix


async def test_a_missing_journal_directory_is_left_for_the_kiosk(gate: Gate) -> None:
    new = gate.tmp / "new" / "journal.sqlite3"
    checks = await gate.run(gate.config(journal=new))

    assert checks["journal"].status is Status.WARN
    assert "does not exist yet" in checks["journal"].detail
    assert "install -d -o passqr" in checks["journal"].fix
    assert not new.parent.exists()


async def test_an_existing_journal_is_read_not_rewritten(gate: Gate) -> None:
    from scanner.journal import Journal

    path = gate.tmp / "state" / "journal.sqlite3"
    journal = Journal(path)
    journal.open_sync()
    journal.close_sync()
    before = path.stat().st_mtime_ns

    checks = await gate.run(gate.config(journal=path))

    assert checks["journal"].status is Status.OK
    assert "0 scans" in checks["journal"].detail
    assert path.stat().st_mtime_ns == before


def test_an_unwritable_journal_directory(tmp_path: Path, local_server: LocalServer) -> None:
    """The directory is read-only to the doctor's user. Root may write anywhere, so as root
    (CI) the doctor runs without the capabilities that override file modes."""
    journal_dir = tmp_path / "state"
    journal_dir.mkdir()
    journal_dir.chmod(0o555)
    config = tmp_path / "gate.toml"
    config.write_text(
        f'[api]\nbase_url = "{local_server.base_url}"\n\n'
        f'[journal]\npath = "{journal_dir / "journal.sqlite3"}"\n'
    )
    command = [sys.executable, "-m", "scanner.doctor", "--config", str(config), "--json"]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux): root ignores file modes")
        drop = "-dac_override,-dac_read_search,-fowner,-linux_immutable"
        command = [setpriv, f"--bounding-set={drop}", "--", *command]
    env = {
        "PATH": "/usr/bin:/bin",
        "PASSQR_API_KEY": local_server.api_key,
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=30, check=False
        )
    finally:
        journal_dir.chmod(0o755)

    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["journal"]["status"] == "FAIL", checks["journal"]
    assert "Permission denied" in checks["journal"]["detail"]
    assert "chown" in checks["journal"]["fix"]
    assert checks["api key accepted"]["status"] == "OK"
    assert report["ready"] is False
    assert local_server.api_key not in proc.stdout + proc.stderr
    assert list(journal_dir.iterdir()) == []


def test_a_broken_config_is_one_failure_with_its_fix(tmp_path: Path) -> None:
    config = tmp_path / "gate.toml"
    config.write_text('[gate]\nnmae = "typo"\n')
    parser = argparse.ArgumentParser()
    add_doctor_parser(parser.add_subparsers())
    args = parser.parse_args(["doctor", "--config", str(config), "--json"])

    status, out = _run(args)

    assert status == 1
    report = json.loads(out)
    assert report["checks"][0]["status"] == "FAIL"
    assert "did you mean 'name'" in report["checks"][0]["detail"]
    assert report["checks"][0]["fix"]


def test_the_command_prints_a_table_and_exits_0_when_ready(gate: Gate) -> None:
    parser = argparse.ArgumentParser()
    add_doctor_parser(parser.add_subparsers())
    args = parser.parse_args(["doctor", "--config", str(gate.config())])

    status, out = _run(args)

    assert status == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("passqr-scanner doctor: ")
    assert any(line.startswith("OK    api key accepted") for line in lines)
    assert lines[-1].startswith("READY: 0 failed")
    assert out.isascii()
    assert gate.key not in out


def _run(args: argparse.Namespace) -> tuple[int, str]:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        status = args.func(args)
    return status, buffer.getvalue()


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"X-RateLimit-Remaining": "57", "X-RateLimit-Limit": "60"}, (57, 60)),
        ({"RateLimit-Remaining": "3"}, (3, None)),
        ({"RateLimit": "limit=100, remaining=42, reset=5"}, (42, 100)),
        ({"RateLimit": '"default";r=7;t=30'}, (7, None)),
    ],
)
def test_rate_budget_headers(headers: dict[str, str], expected: tuple[int, int] | None) -> None:
    assert rate_budget(headers) == expected


async def test_a_camera_is_opened_and_shows_a_frame(gate: Gate) -> None:
    """A video file stands in for the camera: the same OpenCV path opens it and reads."""
    import cv2
    import numpy as np

    clip = gate.tmp / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter.fourcc(*"MJPG"), 10, (64, 48))
    for i in range(5):
        writer.write(np.full((48, 64, 3), i * 40, dtype=np.uint8))
    writer.release()
    sources = f'[[sources]]\ntype = "camera"\ndevice = "{clip}"\nfps = 10'

    checks = await gate.run(gate.config(sources=sources))

    camera = checks["source 1 (camera)"]
    assert camera.status is Status.OK, camera
    assert "a 64x48 frame" in camera.detail


def test_the_report_escapes_control_characters_whoever_made_the_check() -> None:
    check = Check(name="api server", status=Status.FAIL, detail="a\x1b[2Jb\tc\nd", fix="\x07")
    text = format_text([check], Path("gate.toml"))
    assert "a\\x1b[2Jb c d" in text and "fix: \\x07" in text
    assert "\x1b" not in text and "\x07" not in text
    assert json.loads(format_json([check], Path("gate.toml")))["checks"][0]["fix"] == "\\x07"
