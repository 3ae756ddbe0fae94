"""kill -9 between an offline admission and its replay: nothing is lost, nothing doubles."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LocalServer
from tests.functional.test_faults import uses
from tests.functional.test_kiosk_headless import ROOT, start_kiosk
from tests.support.fault_proxy import FaultProxy
from tests.support.serial_sim import ScannerSim


@pytest.fixture
def proxy(local_server: LocalServer) -> Iterator[FaultProxy]:
    port = int(local_server.base_url.split(":")[2].split("/")[0])
    p = FaultProxy(upstream_port=port).start()
    yield p
    p.stop()


def export(config: Path) -> list[dict[str, object]]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "scanner",
            "journal",
            "export",
            "--config",
            str(config),
            "--format",
            "jsonl",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [json.loads(line) for line in out.splitlines()]


def test_kill_9_after_an_offline_admission_then_replay(
    tmp_path: Path, local_server: LocalServer, proxy: FaultProxy
) -> None:
    codes = local_server.seed()
    scanner = ScannerSim(tmp_path / "scanner")
    config = tmp_path / "gate.toml"
    config.write_text(f"""
[api]
base_url = "{proxy.base_url()}"
timeout_s = 0.5
[gate]
name = "Crash gate"
[offline]
policy = "allow-known"
sync_interval_s = 10
[[sources]]
type = "serial"
port = "{scanner.link}"
[journal]
path = "{tmp_path / "journal.sqlite3"}"
""")
    try:
        kiosk = start_kiosk(config, local_server)
        kiosk.wait_stderr("passes synced")
        kiosk.wait_stderr("ready")
        proxy.set_default("drop")  # the uplink dies
        scanner.scan(codes["valid"], b"\r")
        line = kiosk.decision()
        assert (line["decision"], line["offline"]) == ("accepted", True)
        os.kill(kiosk.proc.pid, signal.SIGKILL)  # power cut before any replay
        kiosk.proc.wait(10)
        kiosk.finish()
        rows = export(config)
        assert [(r["decision"], r["offline"], r["replay_state"]) for r in rows] == [
            ("accepted", True, "pending")
        ]
        assert uses(local_server, codes["valid"]) == 0

        proxy.set_default("pass")  # the uplink is back; so is the kiosk
        kiosk = start_kiosk(config, local_server)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and export(config)[0]["replay_state"] != "done":
            time.sleep(0.2)
        os.kill(kiosk.proc.pid, signal.SIGKILL)
        kiosk.proc.wait(10)
        kiosk.finish()
    finally:
        scanner.close()
    rows = export(config)
    assert rows[0]["replay_state"] == "done"
    assert rows[0]["replay_result"] == "valid"
    assert uses(local_server, codes["valid"]) == 1
    replays = [s for s in proxy.validations() if s.fault == "pass"]
    assert {s.idempotency_key for s in replays} == {rows[0]["scan_id"]}
