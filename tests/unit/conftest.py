"""Fixtures the gate's unit tests share: a real journal on disk and a relay that counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scanner.journal import Journal
from scanner.relay import NoRelay


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite3")
    await j.open()
    yield j
    await j.close()


@pytest.fixture
async def relay() -> AsyncIterator[NoRelay]:
    r = NoRelay(pulse_ms=50)
    await r.start()
    yield r
    await r.close()
