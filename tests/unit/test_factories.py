"""The client, the budget and the exit statuses each come from one place."""

from __future__ import annotations

import ast
import os
from pathlib import Path

from scanner import exitcodes
from scanner.api import PassQRClient
from scanner.api_protocol import PassQRApi
from scanner.budget import Budget
from scanner.config import ApiConfig, parse_config
from tests.support.fakes import FakeClient

SCANNER = Path(__file__).resolve().parents[2] / "scanner"


async def test_the_client_is_built_from_api_config() -> None:
    api = parse_config(
        {
            "api": {
                "base_url": "http://10.0.0.5/api/v1/",
                "allow_insecure_http": True,
                "timeout_s": 7,
            }
        }
    ).api
    client: PassQRApi = PassQRClient.from_config(api, "pqr_live_" + "k" * 40)
    async with PassQRClient.from_config(api, "pqr_live_" + "k" * 40) as real:
        assert real.base_url == "http://10.0.0.5/api/v1"
        assert real._deadline_s == 7
    await client.aclose()


def test_the_budget_is_built_from_api_config() -> None:
    budget = Budget.from_config(ApiConfig(validate_per_min=7, read_per_min=8, write_per_min=9))
    limits = budget.limits
    assert (limits.validate_per_min, limits.read_per_min, limits.write_per_min) == (7, 8, 9)


def test_the_fake_is_a_passqr_api() -> None:
    client: PassQRApi = FakeClient()
    assert client.base_url.startswith("http://127.0.0.1")


def test_exit_statuses_are_the_sysexits_ones() -> None:
    assert exitcodes.CONFIG == os.EX_CONFIG == 78
    assert exitcodes.UNAVAILABLE == os.EX_UNAVAILABLE == 69


def test_no_module_but_exitcodes_spells_an_exit_status() -> None:
    """``EXIT_CONFIG = 78`` in a second module is how four copies came about."""
    copies = []
    for path in SCANNER.rglob("*.py"):
        if path.name == "exitcodes.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Assign) or not isinstance(node.value, ast.Constant):
                continue
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            if any(name.startswith("EXIT_") for name in names):
                copies.append(f"{path.relative_to(SCANNER)}:{node.lineno}")
    assert copies == []
