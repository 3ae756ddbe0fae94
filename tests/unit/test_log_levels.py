"""Faults are warnings (issue 13, point 8): the deploy guide's ``journalctl -p warning``
must show a server gone and a scanner unplugged, and not every good scan."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import pytest

from scanner.config import GateConfig
from scanner.errors import NetworkError
from scanner.journal import Journal
from scanner.models import RawScan
from scanner.pipeline import Gate
from scanner.relay import NoRelay
from scanner.sources.base import SourceState, ThreadedSource
from tests.support.fakes import FakeClient
from tests.unit.test_pipeline import valid


async def test_a_server_gone_is_a_warning_and_its_return_is_info(
    journal: Journal, relay: NoRelay, caplog: pytest.LogCaptureFixture
) -> None:
    client = FakeClient({"PASS-AAAA0001": NetworkError("cannot reach"), "PASS-AAAA0002": valid()})
    gate = Gate(
        config=GateConfig(name="g", repeat_ignore_s=0.0),
        validator=client,
        journal=journal,
        relay=relay,
    )
    caplog.set_level(logging.INFO, logger="scanner")
    for code in ("PASS-AAAA0001", "PASS-AAAA0002"):
        task = gate.submit(RawScan(source="t", text=code, at=time.monotonic()))
        assert task is not None
        await task
    levels = {
        r.getMessage().split(" ")[1]: r.levelno
        for r in caplog.records
        if r.getMessage().startswith("server: ")
    }
    assert levels["unreachable"] == logging.WARNING
    assert levels["ok"] == logging.INFO


def test_a_degraded_scanner_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    class Probe(ThreadedSource):
        def _loop(self, deliver: Callable[[str], None]) -> None:  # pragma: no cover - not started
            return None

    source = Probe(name="serial:/dev/ttyACM0")
    caplog.set_level(logging.INFO, logger="scanner")
    source._set(SourceState.DEGRADED, "disconnected: unplugged")
    source._set(SourceState.READY)
    (degraded, ready) = [r for r in caplog.records if "serial:/dev/ttyACM0" in r.getMessage()]
    assert degraded.levelno == logging.WARNING
    assert ready.levelno == logging.INFO
