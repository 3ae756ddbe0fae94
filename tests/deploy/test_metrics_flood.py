"""The metrics port under a flood of idle connections: the kiosk's descriptors stay bounded.

At most :data:`scanner.metrics.MAX_CONNECTIONS` connections are served at once (any
more are closed at once), and one that sends nothing is closed after the read
timeout: 1,100 idle connections cannot use up the kiosk's file descriptors (and
with them the journal, the relay's port, the scanner's device).

The responder in this process first; then the issue's finding replayed on a real
``passqr-scanner run --headless`` in its own process, its soft limit on open files 1,024
as under a default systemd service, against 1,100 real connections.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scanner import metrics as metrics_module
from scanner.metrics import MAX_CONNECTIONS, Metrics
from tests.conftest import LocalServer
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]

IDLE = 200


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_idle_connections_do_not_exhaust_descriptors(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(metrics_module, "_READ_TIMEOUT_S", 1.0)
    caplog.set_level(logging.DEBUG)
    metrics = Metrics()
    server = await metrics.serve("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before = open_fds()
    clients: list[asyncio.StreamWriter] = []
    try:
        for _ in range(IDLE):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            clients.append(writer)
        await eventually(lambda: metrics.turned_away >= IDLE - MAX_CONNECTIONS)
        await asyncio.sleep(0.1)
        # The test's own IDLE client sockets are in this process too; the kiosk's side
        # holds at most MAX_CONNECTIONS of them.
        assert open_fds() - before - IDLE <= MAX_CONNECTIONS + 4
        assert metrics.connections == MAX_CONNECTIONS
        # The idle ones are closed after the read timeout; a scrape works again,
        # with every idle client still connected.
        await eventually(lambda: metrics.connections == 0, within_s=5.0)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            response = await http.get("/metrics")
        assert response.status_code == 200
        assert "passqr_scans_total" in response.text
    finally:
        for writer in clients:
            writer.close()
        server.close()
        await server.wait_closed()
    assert not [r for r in caplog.records if "accept" in r.getMessage()]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- a real kiosk, in its own process, with the soft limit of a default service ---------------

FLOOD = 1_100
KIOSK_NOFILE = 1_024
"""The soft limit on open files of a default systemd service or login shell."""
BATCH = 50
"""Connections opened at once, then the kiosk is let turn them away."""
OWN = 6
"""Descriptors the kiosk may open or close of its own meanwhile (a connection to PassQR)."""


@dataclass
class RunningKiosk:
    proc: subprocess.Popen[bytes]
    port: int
    stderr: Path

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def said(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def many_files() -> Iterator[None]:
    """This process may hold the flood's client sockets (its soft limit up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FLOOD + 200:
        pytest.skip(
            f"the hard limit on open files is {hard:,}: holding {FLOOD:,} client sockets "
            f"needs {FLOOD + 200:,} (raise it with ulimit -Hn)"
        )
    if soft != resource.RLIM_INFINITY and soft < FLOOD + 200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.fixture
def kiosk(tmp_path: Path, local_server: LocalServer, many_files: None) -> Iterator[RunningKiosk]:
    """``passqr-scanner run --headless`` with metrics on, its soft limit 1,024 files."""
    port = free_port()
    config = tmp_path / "gate.toml"
    config.write_text(f"""
[api]
base_url = "{local_server.base_url}"

[gate]
name = "Flooded gate"

[[sources]]
type = "simulated"
codes = ["PASS-ZZZZ9999"]
start_delay_s = 86400

[relay]
type = "none"

[journal]
path = "{tmp_path / "journal.sqlite3"}"

[metrics]
listen = "127.0.0.1:{port}"
""")
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}  # logs to stderr
    env |= {"PASSQR_API_KEY": local_server.api_key, "PYTHONUNBUFFERED": "1"}
    stderr = tmp_path / "kiosk.err"
    with stderr.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scanner", "run", "--config", str(config), "--headless"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    try:
        _, hard = resource.prlimit(proc.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (KIOSK_NOFILE, hard))
        running = RunningKiosk(proc, port, stderr)
        deadline = time.monotonic() + 20
        while "metrics on" not in running.said():
            assert proc.poll() is None, running.said()
            assert time.monotonic() < deadline, running.said()
            time.sleep(0.05)
        yield running
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def soft_limit(pid: int) -> int:
    with open(f"/proc/{pid}/limits", encoding="ascii") as limits:
        line = next(line for line in limits if line.startswith("Max open files"))
    return int(line.split()[3])


def still_held(clients: list[socket.socket]) -> int:
    """Client sockets the kiosk has neither closed nor reset."""
    held = 0
    for client in clients:
        try:
            client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            held += 1
        except ConnectionError:
            pass
    return held


def wait_until(condition: Callable[[], bool], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_kiosk_process_outlives_1100_idle_connections(kiosk: RunningKiosk) -> None:
    """The issue's finding, replayed: 1,100 idle connections to the metrics port of a real
    kiosk whose soft limit is 1,024 files (without the limit on connections it runs out
    of descriptors and prints thousands of ``socket.accept()`` tracebacks).

    The connections come in waves of BATCH, within the listening socket's backlog (100):
    more at once would only be left waiting by the kernel. After each wave the kiosk
    holds at most MAX_CONNECTIONS of them and its descriptors stay within
    MAX_CONNECTIONS (held) + BATCH (being turned away) of what it had. Once the idle ones
    have timed out, a scrape is answered with all 1,100 still connected. No traceback.
    """
    assert soft_limit(kiosk.proc.pid) == KIOSK_NOFILE
    before = kiosk.fds()
    clients: list[socket.socket] = []
    peak = before
    try:
        while len(clients) < FLOOD:
            for _ in range(BATCH):
                client = socket.create_connection(("127.0.0.1", kiosk.port), timeout=5)
                client.setblocking(True)  # recv(MSG_DONTWAIT) says at once whether it is held
                clients.append(client)
            peak = max(peak, kiosk.fds())
            # Every connection past MAX_CONNECTIONS is closed as soon as it is accepted.
            assert wait_until(lambda: still_held(clients) <= MAX_CONNECTIONS, within_s=4.0), (
                f"{still_held(clients)} of {len(clients)} connections still held"
            )
            more = kiosk.fds() - before
            assert more <= MAX_CONNECTIONS + OWN, f"{more} descriptors more than before"
        assert peak - before <= MAX_CONNECTIONS + BATCH + OWN, f"{peak} descriptors at most"
        # The idle ones are closed after the read timeout; a scrape is then answered.
        timeout_s = metrics_module._READ_TIMEOUT_S
        assert wait_until(lambda: still_held(clients) == 0, within_s=timeout_s + 5.0)
        response = httpx.get(f"http://127.0.0.1:{kiosk.port}/metrics", timeout=5.0)
        assert response.status_code == 200
        assert "passqr_scans_total" in response.text
        assert kiosk.proc.poll() is None
        assert kiosk.fds() <= before + OWN
    finally:
        for client in clients:
            client.close()
    said = kiosk.said()
    assert "Traceback" not in said and "socket.accept" not in said, said[:3000]
