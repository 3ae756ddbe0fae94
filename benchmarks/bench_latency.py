"""Scan-to-relay latency, end to end, with every part real.

    pty scanner --> kiosk (headless process) --> local PassQR server (process, loopback)
                                             --> LCUS relay board simulator on a pty

The clock starts when the scanner simulator writes a code (code + CR) and stops when
the relay simulator reads the ON frame. Both simulators live in this process, so one
monotonic clock times both ends. Prints p50/p95/p99 and the machine.

    .venv/bin/python benchmarks/bench_latency.py [--scans 300]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from machine import machine  # noqa: E402 - benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.serial_sim import LcusSim, ScannerSim  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=300)
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "server.sqlite3"
        key = subprocess.run(
            [py, "-m", "scanner", "server", "create-key", "--db", str(db), "--plan", "pro"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        server = subprocess.Popen(
            [
                py,
                "-m",
                "scanner",
                "server",
                "run",
                "--db",
                str(db),
                "--port",
                str(port),
                "--no-rate-limit",
            ],
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}/api/v1"
        scanner = ScannerSim(tmp / "scanner")
        relay = LcusSim(tmp / "relay")
        kiosk: subprocess.Popen[str] | None = None
        try:
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=base + "/", headers=headers, timeout=5) as http:
                for _ in range(100):
                    try:
                        http.get("templates")
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                template = http.post("templates", json={"name": "Bench", "type": "event"})
                template_id = template.json()["data"]["id"]
                codes = [
                    http.post(
                        "passes",
                        json={
                            "template_id": template_id,
                            "max_uses": None,
                            "holder_name": f"Guest {i}",
                        },
                    ).json()["data"]["code"]
                    for i in range(20)
                ]
            config = tmp / "gate.toml"
            config.write_text(f"""
[api]
base_url = "{base}"
validate_per_min = 100000  # the server's rate limit is off; so is the kiosk's own budget
[gate]
name = "Bench"
repeat_ignore_s = 0.0
[[sources]]
type = "serial"
port = "{scanner.link}"
[relay]
type = "lcus"
port = "{relay.link}"
pulse_ms = 10
[journal]
path = "{tmp / "journal.sqlite3"}"
""")
            kiosk = subprocess.Popen(
                [py, "-m", "scanner", "run", "--config", str(config), "--headless"],
                cwd=ROOT,
                env={**os.environ, "PASSQR_API_KEY": key},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            assert kiosk.stdout is not None and kiosk.stderr is not None
            ready = threading.Event()
            lines: queue.Queue[str] = queue.Queue()

            def watch_stderr(stream: object) -> None:
                for line in stream:  # type: ignore[attr-defined]
                    if "ready" in line:
                        ready.set()

            def watch_stdout(stream: object) -> None:
                for line in stream:  # type: ignore[attr-defined]
                    lines.put(line)

            threading.Thread(target=watch_stderr, args=(kiosk.stderr,), daemon=True).start()
            threading.Thread(target=watch_stdout, args=(kiosk.stdout,), daemon=True).start()
            if not ready.wait(15):
                raise SystemExit("kiosk did not get ready")
            time.sleep(0.5)
            latencies: list[float] = []
            kiosk_ms: list[float] = []
            for i in range(args.scans + 10):
                before = len(relay.on_events())
                sent = time.monotonic()
                scanner.scan(codes[i % len(codes)], b"\r")
                if not relay.wait_for(lambda b, n=before: len(b.on_events()) > n, timeout=5):
                    raise SystemExit(f"scan {i}: relay never switched ON")
                on_at = relay.on_events()[before]
                decision = json.loads(lines.get(timeout=5))
                if i >= 10:  # the first scans warm up connections and caches
                    latencies.append((on_at - sent) * 1000)
                    kiosk_ms.append(float(decision["latency_ms"]))
                relay.wait_for(lambda b: not b.state[1], timeout=5)
        finally:
            if kiosk is not None:
                kiosk.send_signal(signal.SIGTERM)
                kiosk.wait(10)
            server.send_signal(signal.SIGTERM)
            server.wait(10)
            scanner.close()
            relay.close()
    print(f"machine: {machine()}")
    print(f"scans: {len(latencies)} (after 10 warm-up), every one a real validation")
    print(
        "scan -> relay ON (ms): "
        f"p50 {pct(latencies, 50):.2f}  p95 {pct(latencies, 95):.2f}  "
        f"p99 {pct(latencies, 99):.2f}  max {max(latencies):.2f}  "
        f"mean {statistics.fmean(latencies):.2f}"
    )
    print(
        "kiosk's own scan -> decision (ms): "
        f"p50 {pct(kiosk_ms, 50):.2f}  p99 {pct(kiosk_ms, 99):.2f}"
    )
    target = pct(latencies, 50) <= 15 and pct(latencies, 99) <= 50
    print(f"target p50 <= 15 ms and p99 <= 50 ms: {'met' if target else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
