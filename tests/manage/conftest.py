"""Fixtures for the manage commands: a config file pointing at the local server, and
a way to run a command in-process and read what it printed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scanner.api import PassQRClient
from scanner.manage.cli import main
from scanner.models import PassInfo
from tests.conftest import LocalServer


@dataclass
class Ran:
    status: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


RunCli = Callable[..., Ran]


def write_config(tmp_path: Path, base_url: str, api_key: str, **api: Any) -> Path:
    key_file = tmp_path / "api-key"
    key_file.write_text(api_key + "\n")
    key_file.chmod(0o600)
    extra = "".join(f"{name} = {value!r}\n" for name, value in api.items())
    config = tmp_path / "gate.toml"
    config.write_text(
        f'[api]\nbase_url = "{base_url}"\nkey_file = "api-key"\n{extra}'
        f'[journal]\npath = "{tmp_path / "journal.sqlite3"}"\n'
    )
    return config


@pytest.fixture
def config(tmp_path: Path, local_server: LocalServer) -> Path:
    """A config for the local server; the write budget is lifted so tests do not wait."""
    return write_config(tmp_path, local_server.base_url, local_server.api_key, write_per_min=6000)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], config: Path) -> RunCli:
    """Run ``python -m scanner.manage ARGS --config <config>`` in-process."""

    def run(*args: str, config_file: Path | None = None) -> Ran:
        capsys.readouterr()
        status = main([*args, "--config", str(config_file or config)])
        captured = capsys.readouterr()
        return Ran(status, captured.out, captured.err)

    return run


@pytest.fixture
def template_id(local_server: LocalServer) -> str:
    """The demo template (the demo passes are seeded with it)."""
    local_server.seed()

    async def first() -> str:
        async with PassQRClient(local_server.base_url, local_server.api_key) as client:
            page = await client.list_templates()
        assert page.items[0].id is not None
        return page.items[0].id

    return asyncio.run(first())


def all_passes(server: LocalServer, template_id: str | None = None) -> list[PassInfo]:
    """Every pass the server has (straight from the API, not through the code under test)."""

    async def fetch() -> list[PassInfo]:
        out: list[PassInfo] = []
        async with PassQRClient(server.base_url, server.api_key) as client:
            page = 1
            while True:
                result = await client.list_passes(page=page, limit=100, template_id=template_id)
                out += result.items
                if page * 100 >= result.total:
                    return out
                page += 1

    return asyncio.run(fetch())
