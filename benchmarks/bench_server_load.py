"""Load benchmark of the local PassQR server's hot path, `POST /validate`.

Starts `python -m scanner.server server run --no-rate-limit` in a subprocess
on a fresh database, seeds passes (max_uses null, so every answer is `valid`
and every request is a real write), then drives C concurrent clients, each on
its own keep-alive connection, each request with a fresh Idempotency-Key,
for a bounded duration and count. Loopback only.

The load generator is a minimal asyncio HTTP/1.1 client (uvloop when
installed): httpx costs more CPU per request than the server itself and would
be the bottleneck on a 2-core machine.

Usage:
    .venv/bin/python benchmarks/bench_server_load.py [--clients 16] [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    not_valid: int = 0
    requests: int = 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def api(base: str, key: str, method: str, path: str, body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def wait_ready(base: str, server: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited early with {server.returncode}")
        try:
            with urllib.request.urlopen(base + "/openapi.json", timeout=1):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    raise SystemExit("server did not become ready")


async def client(
    host: str,
    port: int,
    key: str,
    codes: list[str],
    offset: int,
    stop_at: float,
    budget: list[int],
    results: Results,
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /api/v1/validate HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
    ).encode()
    i = offset
    try:
        while time.monotonic() < stop_at and budget[0] > 0:
            budget[0] -= 1
            body = b'{"code":"' + codes[i % len(codes)].encode() + b'"}'
            i += 1
            request = b"".join(
                (
                    head,
                    b"Idempotency-Key: ",
                    uuid.uuid4().hex.encode(),
                    b"\r\nContent-Length: ",
                    str(len(body)).encode(),
                    b"\r\n\r\n",
                    body,
                )
            )
            started = time.perf_counter()
            writer.write(request)
            header = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in header.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            payload = await reader.readexactly(length)
            results.latencies.append(time.perf_counter() - started)
            results.requests += 1
            if not header.startswith(b"HTTP/1.1 200"):
                results.errors += 1
            elif b'"result":"valid"' not in payload:
                results.not_valid += 1
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def drive(
    port: int, key: str, codes: list[str], clients: int, duration: float, max_requests: int
) -> tuple[Results, float]:
    results = Results()
    budget = [max_requests]
    started = time.monotonic()
    stop_at = started + duration
    await asyncio.gather(
        *(
            client("127.0.0.1", port, key, codes, n * 7919, stop_at, budget, results)
            for n in range(clients)
        )
    )
    return results, time.monotonic() - started


def percentile(ordered: list[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index] * 1000


def run_loop(coro_factory: object) -> object:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro_factory)  # type: ignore[arg-type]
    return uvloop.run(coro_factory)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--max-requests", type=int, default=20000)
    parser.add_argument("--passes", type=int, default=200, help="passes to seed")
    parser.add_argument("--warmup", type=int, default=500, help="requests before measuring")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="passqr-bench-") as tmp:
        db = Path(tmp) / "bench.sqlite3"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cli = [sys.executable, "-m", "scanner.server", "server"]
        key = subprocess.run(
            [*cli, "create-key", "--db", str(db), "--name", "bench"],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
        ).stdout.strip()
        port = free_port()
        server = subprocess.Popen(
            [*cli, "run", "--db", str(db), "--port", str(port), "--no-rate-limit"]
            + ["--log-level", "warning"],
            cwd=ROOT,
            env=env,
        )
        try:
            base = f"http://127.0.0.1:{port}/api/v1"
            wait_ready(base, server)
            template = api(base, key, "POST", "/templates", {"name": "Bench", "type": "event"})
            template_id = template["data"]["id"]  # type: ignore[index]
            codes = [
                api(base, key, "POST", "/passes", {"template_id": template_id, "max_uses": None})[
                    "data"
                ]["code"]  # type: ignore[index]
                for _ in range(args.passes)
            ]
            if args.warmup:
                run_loop(drive(port, key, codes, args.clients, 30.0, args.warmup))
            cpu_before = process_cpu_seconds(server.pid)
            results, elapsed = run_loop(  # type: ignore[misc]
                drive(port, key, codes, args.clients, args.duration, args.max_requests)
            )
            server_cpu = process_cpu_seconds(server.pid) - cpu_before
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                exit_code = server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                exit_code = server.wait()

    ordered = sorted(results.latencies)
    print(f"machine:        {os.cpu_count()} CPUs (nproc), {cpu_model()}")
    print(f"python:         {platform.python_version()} ({platform.python_implementation()})")
    print(
        f"load:           {args.clients} clients, keep-alive, fresh Idempotency-Key each, "
        f"{args.passes} passes (max_uses null), rate limit off"
    )
    print(f"requests:       {results.requests} in {elapsed:.2f} s")
    print(f"errors:         {results.errors} (non-200), {results.not_valid} not 'valid'")
    print(f"validations/s:  {results.requests / elapsed:.0f}")
    print(
        f"latency ms:     p50 {percentile(ordered, 0.50):.2f}  p95 {percentile(ordered, 0.95):.2f}"
        f"  p99 {percentile(ordered, 0.99):.2f}  max {ordered[-1] * 1000:.2f}"
    )
    print(f"server CPU:     {server_cpu / elapsed * 100:.0f}% of one core")
    print(f"server exit:    {exit_code} after SIGTERM")
    return 0 if results.errors == 0 and results.not_valid == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
