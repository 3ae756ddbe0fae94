"""Fixtures for the local server's contract tests (real HTTP over loopback)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from scanner.server import ServerThread, create_key, seed_demo


@dataclass
class Served:
    """A running server with a pro key and a free key."""

    base_url: str
    api_key: str
    free_key: str
    db_path: Path

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.api_key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10.0)


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One server for a whole module; tests create their own templates and passes."""
    db = tmp_path_factory.mktemp("shared") / "server.sqlite3"
    key = create_key(db, name="tests", plan="pro")
    free = create_key(db, name="free", plan="free")
    with ServerThread(db, rate_limit=False) as server:
        yield Served(base_url=server.base_url, api_key=key, free_key=free, db_path=db)


@pytest.fixture
def api(shared_server: Served) -> Iterator[httpx.Client]:
    """An authenticated client of the shared server."""
    with shared_server.client() as client:
        yield client


@pytest.fixture
def make_template(api: httpx.Client) -> Callable[..., dict[str, Any]]:
    def make(**fields: Any) -> dict[str, Any]:
        body = {"name": "Gate test", "type": "event", **fields}
        answer = api.post("/templates", json=body)
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()["data"]
        return created

    return make


@pytest.fixture
def make_pass(
    api: httpx.Client, make_template: Callable[..., dict[str, Any]]
) -> Callable[..., dict[str, Any]]:
    """Create a pass (in a fresh template unless template_id is given)."""

    def make(**fields: Any) -> dict[str, Any]:
        if "template_id" not in fields:
            fields["template_id"] = make_template()["id"]
        answer = api.post("/passes", json={"holder_name": "Jane Smith", **fields})
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()["data"]
        return created

    return make


@pytest.fixture
def seeded(shared_server: Served) -> dict[str, str]:
    return seed_demo(shared_server.db_path)
