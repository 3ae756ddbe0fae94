"""The README's two commands share one environment: the demo after the tests installs
nothing again (issue 13, point 14: stamps were per extra, so it reinstalled)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demos_install_after_the_tests_is_a_no_op() -> None:
    env = {**os.environ, "PYTHON": sys.executable, "VENV": sys.prefix}
    started = time.monotonic()
    result = subprocess.run(
        ["bash", "scripts/bootstrap.sh", "base"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "Installing" not in result.stderr and "Updating" not in result.stderr, result.stderr
    assert took < 30, f"took {took:.0f} s: it installed again"


def test_a_first_install_says_so_before_it_starts() -> None:
    script = (ROOT / "scripts" / "bootstrap.sh").read_text()
    says = script.index("first run: a few minutes")
    assert says < script.index("pip install") if "pip install" in script else True
    assert says < script.index('"${pip[@]}"'), "the message comes before the long install"
