"""sd_notify against a datagram socket standing in for systemd's."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scanner import notify
from scanner.notify import Watchdog, watchdog_interval
from tests.support.waiting import eventually


@pytest.fixture
def systemd_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        yield sock
    finally:
        sock.close()


def _recorder(sent: list[str]) -> Callable[[str], bool]:
    def send(state: str) -> bool:
        sent.append(state)
        return True

    return send


def received(sock: socket.socket) -> list[str]:
    out: list[str] = []
    sock.setblocking(False)
    try:
        while True:
            out.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2)
    return out


def test_the_messages(systemd_socket: socket.socket) -> None:
    assert notify.ready()
    assert notify.watchdog()
    assert notify.status("3 accepted\ntoday")
    assert notify.stopping()

    assert received(systemd_socket) == [
        "READY=1",
        "WATCHDOG=1",
        "STATUS=3 accepted today",
        "STOPPING=1",
    ]


def test_the_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"passqr-test-{uuid.uuid4()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(2)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)

        assert notify.ready()
        assert sock.recv(64) == b"READY=1"


def test_no_systemd_no_op(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify.ready() is False
    # A socket that went away: reported as False, never raised.
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone"))
    assert notify.watchdog() is False


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": "1"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(env) == expected


async def test_watchdog_pings_at_half_the_interval_while_healthy(
    systemd_socket: socket.socket,
) -> None:
    healthy = True
    sent: list[str] = []

    def send(state: str) -> bool:
        sent.append(state)
        return notify.notify(state)

    watchdog = Watchdog(send=send, interval_s=0.1)
    task = asyncio.create_task(watchdog.run(lambda: healthy))
    try:
        await eventually(lambda: sent.count("WATCHDOG=1") >= 3)
        healthy = False
        missed = watchdog.missed
        await eventually(lambda: watchdog.missed >= missed + 3)
        pings = watchdog.pings
        healthy = True
        await eventually(lambda: watchdog.pings > pings)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    assert sent[0] == "READY=1"
    assert sent.count("READY=1") == 1
    # No ping went out while unhealthy: the pings counted are exactly the ones sent.
    assert sent.count("WATCHDOG=1") == watchdog.pings
    assert watchdog.missed >= 3
    assert received(systemd_socket) == sent


async def test_watchdog_without_a_timeout_sends_ready_and_returns() -> None:
    sent: list[str] = []
    watchdog = Watchdog(send=_recorder(sent), interval_s=None)
    watchdog.interval_s = None
    async with asyncio.timeout(2):
        await watchdog.run(lambda: True)
    assert sent == ["READY=1"]


async def test_a_broken_health_check_counts_as_unhealthy(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[str] = []

    def broken() -> bool:
        raise RuntimeError("boom")

    watchdog = Watchdog(send=_recorder(sent), interval_s=0.02)
    task = asyncio.create_task(watchdog.run(broken))
    try:
        await eventually(lambda: watchdog.missed >= 2)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sent == ["READY=1"]
    assert "watchdog health check failed" in caplog.text
