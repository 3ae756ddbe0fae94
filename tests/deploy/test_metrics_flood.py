"""The metrics port under a flood of idle connections: the kiosk's descriptors stay bounded.

At most :data:`scanner.metrics.MAX_CONNECTIONS` connections are served at once (any
more are closed at once), and one that sends nothing is closed after the read
timeout: 1,100 idle connections cannot use up the kiosk's file descriptors (and
with them the journal, the relay's port, the scanner's device).
"""

from __future__ import annotations

import asyncio
import logging
import os

import httpx
import pytest

from scanner import metrics as metrics_module
from scanner.metrics import MAX_CONNECTIONS, Metrics
from tests.support.waiting import eventually

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
