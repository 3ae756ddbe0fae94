"""``passes import --dry-run`` on a big guest list: peak memory and rows per second.

Writes a guest list of ``--rows`` rows (1,000,000 by default: name, e-mail, max_uses,
expires_at, two data columns) in a temporary directory, then runs the real command in
a subprocess (``python -m scanner.manage passes import FILE --dry-run``: every row read,
checked, given its identity and reconciled; nothing sent, so no server is needed) and
prints the child's peak RSS (``getrusage(RUSAGE_CHILDREN)``) and rows per second.
The memory must not grow with the rows (the file is never held whole).

    .venv/bin/python benchmarks/bench_import.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import machine  # noqa: E402 - benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]


def write_guests(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        stream.write("holder_name,holder_email,max_uses,expires_at,data.seat,table\n")
        for n in range(rows):
            stream.write(f"Guest {n},guest{n}@example.com,1,2099-12-31,S{n % 500},{n % 40}\n")


def write_config(directory: Path) -> Path:
    key = directory / "api-key"
    key.write_text("pqr_live_" + "x" * 40 + "\n")
    key.chmod(0o600)
    config = directory / "gate.toml"
    config.write_text(
        '[api]\nbase_url = "http://127.0.0.1:9/api/v1"\nkey_file = "api-key"\n'
        f'[journal]\npath = "{directory / "journal.sqlite3"}"\n'
    )
    return config


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        guests = directory / "guests.csv"
        write_guests(guests, args.rows)
        size_mb = guests.stat().st_size / 1e6
        config = write_config(directory)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PASSQR")}
        started = time.perf_counter()
        ran = subprocess.run(
            [
                sys.executable,
                "-m",
                "scanner.manage",
                "passes",
                "import",
                str(guests),
                "--template",
                "00000000-0000-4000-8000-000000000000",
                "--config",
                str(config),
                "--dry-run",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"rows: {args.rows} ({size_mb:.0f} MB of CSV); exit status {ran.returncode}")
    print(ran.stderr.strip().splitlines()[-1] if ran.stderr.strip() else "(nothing said)")
    print(
        f"--dry-run: {elapsed:.1f} s, {args.rows / elapsed:,.0f} rows/s, peak RSS {peak_mb:.0f} MB"
    )
    return 0 if ran.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
