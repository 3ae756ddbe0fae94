"""The benchmark scripts still run (a config rule once made one refuse its own config).

Nothing here is timed: the figures live in docs/benchmarks*.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_latency_benchmark_runs_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_latency.py", "--scans", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "scan -> relay ON (ms)" in result.stdout


def test_the_hub_benchmark_runs_end_to_end() -> None:
    # A few passes: their admissions fit in the first window's budget, so no wait.
    result = subprocess.run(
        [sys.executable, "benchmarks/bench_hub.py", "--passes", "6", "--multi", "2"]
        + ["--gates", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hub, scan -> answer (ms)" in result.stdout
    assert "\nPASS: 4 gates, 24 scans, 10 admissions" in result.stdout
