"""Fixtures shared by every test layer.

The host is kept out: PassQR variables are cleared so a developer's own key or
config never leaks into a run, and every server runs on a loopback port of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scanner.server import ServerThread, create_key, seed_demo

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@dataclass
class LocalServer:
    """A running local PassQR server on loopback, with a `pro` key."""

    base_url: str
    api_key: str
    db_path: Path

    def seed(self) -> dict[str, str]:
        """Create the demo template and passes; returns label -> code."""
        return seed_demo(self.db_path)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PASSQR_API_KEY", "CREDENTIALS_DIRECTORY", "PASSQR_SCANNER_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def _start(tmp_path: Path, *, rate_limit: bool) -> Iterator[LocalServer]:
    db = tmp_path / "server.sqlite3"
    key = create_key(db, name="tests", plan="pro")
    with ServerThread(db, rate_limit=rate_limit) as srv:
        yield LocalServer(base_url=srv.base_url, api_key=key, db_path=db)


@pytest.fixture
def local_server(tmp_path: Path) -> Iterator[LocalServer]:
    """The project's own PassQR server, rate limits off."""
    yield from _start(tmp_path, rate_limit=False)


@pytest.fixture
def limited_server(tmp_path: Path) -> Iterator[LocalServer]:
    """The project's own PassQR server with the spec's rate limits on."""
    yield from _start(tmp_path, rate_limit=True)
