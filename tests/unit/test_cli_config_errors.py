"""The real command on a bad config: one line on stderr and exit 78, never a traceback.

systemd restarts the kiosk after any other status (``Restart=always``), so a
traceback (status 1) would loop; 78 (EX_CONFIG) is the one it is told to leave alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_config import KEY, NUL, gate_config

ROOT = Path(__file__).resolve().parents[2]

CASES = [
    ("url-bad-ipv6", 'api.base_url = "http://[::1/api/v1"', "api.base_url"),
    ("url-port-99999", 'api.base_url = "http://127.0.0.1:99999/api/v1"', "api.base_url"),
    ("timeout-nan", "api.timeout_s = nan", "api.timeout_s"),
    ("repeat-nan", "gate.repeat_ignore_s = nan", "gate.repeat_ignore_s"),
    ("sync-nan", "offline.sync_interval_s = nan", "offline.sync_interval_s"),
    ("journal-nul", f'journal.path = "/var/lib/j{NUL}.sqlite3"', "journal.path"),
    ("key-file-nul", f'api.key_file = "/etc/k{NUL}ey"', "api.key_file"),
    (
        "serial-port-nul",
        f'[[sources]]\ntype = "serial"\nport = "/dev/ttyACM0{NUL}"',
        "sources[0].port",
    ),
    ("ca-file-missing", 'api.ca_file = "{tmp}/missing.pem"', "api.ca_file"),
    ("ca-file-not-a-cert", 'api.ca_file = "{tmp}/not-a-cert.pem"', "api.ca_file"),
    ("key-file-0644", "", "chmod 600"),
]


def passqr_scanner(*args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PASSQR_API_KEY", "CREDENTIALS_DIRECTORY", "PASSQR_SCANNER_CONFIG")
    }
    return subprocess.run(
        [sys.executable, "-m", "scanner", *args],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(("extra", "says"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_run_headless_ends_with_one_line_and_78(tmp_path: Path, extra: str, says: str) -> None:
    config = gate_config(tmp_path, extra)
    if says == "chmod 600":
        (tmp_path / "api-key").chmod(0o644)

    result = passqr_scanner("run", "--config", str(config), "--headless")

    assert "Traceback" not in result.stderr
    assert result.returncode == 78, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("passqr-scanner: ")
    assert says in lines[0]
    assert "s3cr3tk3y" not in result.stderr + result.stdout
    assert KEY not in result.stderr + result.stdout


def test_doctor_reports_a_bad_config_instead_of_crashing(tmp_path: Path) -> None:
    config = gate_config(tmp_path, "api.timeout_s = nan")

    result = passqr_scanner("doctor", "--config", str(config))

    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert "api.timeout_s: expected a finite number" in result.stdout
