"""The ``passes``, ``templates`` and ``validate`` commands against the local PassQR server.

Commands run in-process through :func:`scanner.manage.cli.main` (what
``python -m scanner.manage`` runs); one test runs the real subprocess, piped.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from scanner.api import PassQRClient
from scanner.budget import Bucket, Budget, BudgetLimits
from scanner.errors import (
    AuthenticationError,
    NetworkError,
    NotFoundError,
    PlanError,
    RateLimitedError,
    ScannerError,
    ServerError,
)
from scanner.explain import describe
from scanner.manage.session import EXIT_CONFIG, EXIT_DENIED, EXIT_FAILED, EXIT_USAGE
from scanner.remote import Remote
from scanner.server import ServerThread, create_key, seed_demo
from scanner.server.ratelimit import RateLimits
from tests.conftest import LocalServer
from tests.manage.conftest import RunCli, all_passes, write_config

PASS_KEYS = {
    "id",
    "code",
    "holder_name",
    "holder_email",
    "status",
    "uses_count",
    "max_uses",
    "expires_at",
    "template_id",
    "created_at",
    "updated_at",
    "data",
}
TEMPLATE_KEYS = {
    "id",
    "name",
    "type",
    "description",
    "color",
    "logo_url",
    "fields",
    "settings",
    "created_at",
}


def one_line_error(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("passqr-scanner: ")
    return lines[0]


# -- templates ------------------------------------------------------------------------------


def test_templates_create_list_get_update_delete(cli: RunCli) -> None:
    ran = cli(
        "templates",
        "create",
        "--name",
        "VIP night",
        "--type",
        "event",
        "--color",
        "#ff0000",
        "--fields",
        '[{"key": "seat", "label": "Seat"}]',
        "--json",
    )
    assert ran.status == 0, ran.err
    created = ran.json()
    assert set(created) == TEMPLATE_KEYS
    assert created["name"] == "VIP night"
    assert created["fields"] == [{"key": "seat", "label": "Seat"}]
    tid = created["id"]

    listed = cli("templates", "list", "--json")
    assert listed.status == 0
    assert isinstance(listed.json(), list)
    assert [t["id"] for t in listed.json()] == [tid]
    assert all(set(t) == TEMPLATE_KEYS for t in listed.json())

    table = cli("templates", "list")
    assert table.out.splitlines()[0].split() == ["ID", "NAME", "TYPE", "COLOR", "DESCRIPTION"]
    assert "VIP night" in table.out

    got = cli("templates", "get", tid, "--json")
    assert got.json()["id"] == tid

    updated = cli("templates", "update", tid, "--description", "Doors at 8", "--json")
    assert updated.status == 0
    assert updated.json()["description"] == "Doors at 8"
    assert updated.json()["name"] == "VIP night"

    shown = cli("templates", "get", tid)
    assert "Description  Doors at 8" in shown.out

    deleted = cli("templates", "delete", tid, "--json")
    assert deleted.status == 0
    assert deleted.json() == {"id": tid, "deleted": True}

    gone = cli("templates", "get", tid)
    assert gone.status == EXIT_FAILED
    assert one_line_error(gone.err) == f"passqr-scanner: template {tid} not found"


def test_template_in_use_cannot_be_deleted(cli: RunCli, template_id: str) -> None:
    ran = cli("templates", "delete", template_id)
    assert ran.status == EXIT_FAILED
    line = one_line_error(ran.err)
    assert "refused" in line and "used by 5 pass" in line


def test_nothing_to_update_is_a_usage_error(cli: RunCli, template_id: str) -> None:
    ran = cli("templates", "update", template_id)
    assert ran.status == EXIT_USAGE
    assert "nothing to change" in one_line_error(ran.err)


# -- passes ---------------------------------------------------------------------------------


def test_passes_create_get_update_revoke(
    cli: RunCli, template_id: str, local_server: LocalServer
) -> None:
    ran = cli(
        "passes",
        "create",
        "--template",
        template_id,
        "--name",
        "Zoë [bold]Q[/]",
        "--email",
        "zoe@example.com",
        "--max-uses",
        "2",
        "--expires",
        "2099-12-31T20:00:00Z",
        "--data",
        "seat=A1",
        "--data",
        "table=7",
        "--json",
    )
    assert ran.status == 0, ran.err
    created = ran.json()
    assert set(created) == PASS_KEYS
    assert created["holder_name"] == "Zoë [bold]Q[/]"
    assert created["max_uses"] == 2
    assert created["expires_at"] == "2099-12-31T20:00:00Z"
    assert created["data"] == {"seat": "A1", "table": "7"}
    pass_id, code = created["id"], created["code"]

    by_id = cli("passes", "get", pass_id, "--json")
    by_code = cli("passes", "get", code.lower(), "--json")
    assert by_id.json() == by_code.json()
    assert by_code.json()["id"] == pass_id

    table = cli("passes", "get", code)
    assert f"Code      {code}" in table.out
    assert "Holder    Zoë [bold]Q[/]" in table.out
    assert "Uses      0/2" in table.out

    updated = cli(
        "passes",
        "update",
        code,
        "--name",
        "Zoe Q",
        "--data",
        "table=9",
        "--data",
        "vip=yes",
        "--json",
    )
    assert updated.status == 0, updated.err
    assert updated.json()["holder_name"] == "Zoe Q"
    assert updated.json()["data"] == {"seat": "A1", "table": "9", "vip": "yes"}

    cleared = cli("passes", "update", pass_id, "--email", "", "--clear-data", "--json")
    assert cleared.json()["holder_email"] is None
    assert cleared.json()["data"] == {}

    used = cli("passes", "update", pass_id, "--status", "used", "--json")
    assert used.json()["status"] == "used"

    revoked = cli("passes", "revoke", code, "--json")
    assert revoked.status == 0
    assert revoked.json()["status"] == "revoked"
    assert revoked.json()["id"] == pass_id

    server_side = {p.id: p for p in all_passes(local_server)}
    assert server_side[pass_id].status == "revoked"


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        ("--email", "not-an-address", "is not an e-mail address"),
        ("--expires", "31/12/2099", "is not a date"),
        ("--expires", "2001-01-01", "already past"),
    ],
)
def test_create_checks_values_first(
    cli: RunCli, template_id: str, local_server: LocalServer, option: str, value: str, words: str
) -> None:
    before = len(all_passes(local_server))
    ran = cli("passes", "create", "--template", template_id, option, value)
    assert ran.status == EXIT_USAGE
    assert words in one_line_error(ran.err)
    assert len(all_passes(local_server)) == before


def test_list_table_json_filters_and_paging(
    cli: RunCli, template_id: str, local_server: LocalServer
) -> None:
    for n in range(20):
        assert (
            cli("passes", "create", "--template", template_id, "--name", f"Guest {n}").status == 0
        )
    total = len(all_passes(local_server))
    assert total == 25

    page = cli("passes", "list", "--limit", "10", "--page", "2", "--json")
    assert page.status == 0
    assert len(page.json()) == 10
    assert all(set(p) == PASS_KEYS for p in page.json())

    table = cli("passes", "list", "--limit", "10")
    lines = table.out.splitlines()
    assert lines[0].split() == ["CODE", "HOLDER", "EMAIL", "STATUS", "USES", "EXPIRES", "ID"]
    assert len(lines) == 11
    assert "\x1b" not in table.out  # piped: plain text
    assert one_line_error(table.err) == (
        "passqr-scanner: 10 of 25 passes (page 1 of 3); --all lists every one"
    )

    everything = cli("passes", "list", "--all", "--limit", "7", "--json")
    assert everything.status == 0
    ids = [p["id"] for p in everything.json()]
    assert len(ids) == len(set(ids)) == 25
    assert everything.err == ""  # no progress bar when stderr is not a terminal

    revoked = cli("passes", "list", "--all", "--status", "revoked", "--json")
    assert [p["holder_name"] for p in revoked.json()] == ["Margaret Hamilton"]
    of_template = cli("passes", "list", "--all", "--template", template_id, "--json")
    assert len(of_template.json()) == 25


def test_list_all_stays_within_the_read_budget(template_id: str, local_server: LocalServer) -> None:
    """Six pages with a budget of two GETs per 0.3 s window need at least two more windows."""

    async def run() -> tuple[int, float]:
        budget = Budget(BudgetLimits(read_per_min=2, window_s=0.3))
        async with PassQRClient(local_server.base_url, local_server.api_key) as client:
            remote = Remote(client, budget)
            started = time.monotonic()
            pages = [
                page
                async for page in remote.pages(
                    lambda page, limit: client.list_passes(page=page, limit=limit), limit=1
                )
            ]
            return len(pages), time.monotonic() - started

    count, took = asyncio.run(run())
    assert count == 5
    assert took >= 0.6


def test_list_waits_out_the_servers_rate_limit(tmp_path: Path, cli: RunCli) -> None:
    """A server stricter than the budget: its 429s are waited out, and the listing completes."""
    db = tmp_path / "strict.sqlite3"
    key = create_key(db, name="t", plan="pro")
    seed_demo(db)
    limits = RateLimits(read=3, write=60, validate=60, window=1.0)
    with ServerThread(db, rate_limit=True, limits=limits) as server:
        config_dir = tmp_path / "strict"
        config_dir.mkdir()
        strict = write_config(config_dir, server.base_url, key)
        ran = cli("passes", "list", "--all", "--limit", "1", "--json", config_file=strict)
    assert ran.status == 0, ran.err
    assert len(ran.json()) == 5
    assert "rate limited by the server, waiting" in ran.err


# -- validate -------------------------------------------------------------------------------


def test_validate_uses_the_pass_and_says_so(cli: RunCli, local_server: LocalServer) -> None:
    codes = local_server.seed()
    ran = cli("validate", codes["valid"], "--json")
    assert ran.status == 0
    answer = ran.json()
    assert set(answer) == {"result", "message", "pass", "template"}
    assert answer["result"] == "valid"
    assert answer["pass"]["code"] == codes["valid"]
    assert answer["pass"]["holder_name"] == "Ada Lovelace"
    assert answer["template"]["name"] == "Demo Festival"

    again = cli("validate", f"https://www.passqr.com/p/{codes['valid']}")
    assert again.status == EXIT_DENIED
    assert again.out.startswith("USED: ")
    assert "Holder    Ada Lovelace" in again.out

    unknown = cli("validate", "PASS-ZZZZ0000", "--json")
    assert unknown.status == EXIT_DENIED
    assert unknown.json()["result"] == "not_found"
    assert unknown.json()["pass"] is None and unknown.json()["template"] is None

    junk = cli("validate", "hello[red]")
    assert junk.status == EXIT_USAGE
    assert "is not a pass code" in one_line_error(junk.err)


# -- failures in words ----------------------------------------------------------------------


def test_a_refused_key_is_one_line_without_the_key(
    tmp_path: Path, local_server: LocalServer, cli: RunCli
) -> None:
    wrong = "pqr_live_" + "x" * 40
    (tmp_path / "bad").mkdir()
    bad = write_config(tmp_path / "bad", local_server.base_url, wrong)
    ran = cli("passes", "list", config_file=bad)
    assert ran.status == EXIT_FAILED
    line = one_line_error(ran.err)
    assert "API key rejected" in line
    assert wrong not in ran.err and "x" * 20 not in ran.err


def test_a_plan_without_api_access(tmp_path: Path, local_server: LocalServer, cli: RunCli) -> None:
    free = create_key(local_server.db_path, name="free", plan="free")
    (tmp_path / "free").mkdir()
    ran = cli(
        "templates",
        "list",
        config_file=write_config(tmp_path / "free", local_server.base_url, free),
    )
    assert ran.status == EXIT_FAILED
    assert "plan has no API access" in one_line_error(ran.err)
    assert free not in ran.err


def test_an_unreachable_server(tmp_path: Path, cli: RunCli) -> None:
    (tmp_path / "down").mkdir()
    down = write_config(tmp_path / "down", "http://127.0.0.1:9/api/v1", "pqr_live_abc")
    ran = cli("passes", "list", config_file=down)
    assert ran.status == EXIT_FAILED
    assert "server unreachable" in one_line_error(ran.err)


def test_config_and_key_problems_exit_78(tmp_path: Path, cli: RunCli) -> None:
    ran = cli("passes", "list", config_file=tmp_path / "missing.toml")
    assert ran.status == EXIT_CONFIG
    assert "cannot read config" in one_line_error(ran.err)
    nokey = tmp_path / "nokey.toml"
    nokey.write_text('[api]\nbase_url = "http://127.0.0.1:9/api/v1"\n')
    ran = cli("validate", "PASS-AAAA0000", config_file=nokey)
    assert ran.status == EXIT_CONFIG
    assert "no API key" in one_line_error(ran.err)


def test_not_found_by_code(cli: RunCli, local_server: LocalServer) -> None:
    local_server.seed()
    ran = cli("passes", "revoke", "PASS-NONE0000")
    assert ran.status == EXIT_FAILED
    assert one_line_error(ran.err) == "passqr-scanner: pass PASS-NONE0000 not found"


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (AuthenticationError("Unauthorized: bad key pqr_live_secret123"), "API key rejected"),
        (PlanError("Forbidden"), "plan has no API access"),
        (RateLimitedError("Too many", retry_after=41.2), "try again in 42 s"),
        (NotFoundError("Not Found"), "pass X not found"),
        (ServerError("Internal"), "the server failed"),
        (NetworkError("cannot reach http://h: refused"), "server unreachable"),
    ],
)
def test_errors_in_words(error: Exception, words: str) -> None:
    assert isinstance(error, ScannerError)
    text = describe(error, "pass X")
    assert words in text
    assert "secret123" not in text


async def test_a_429_is_waited_out_and_the_bucket_closed() -> None:
    answers = [
        httpx.Response(429, headers={"Retry-After": "1"}, json={"error": "Too Many Requests"}),
        httpx.Response(200, json={"data": [], "meta": {"page": 1, "limit": 20, "total": 0}}),
    ]
    client = PassQRClient(
        "http://127.0.0.1:9/api/v1",
        "pqr_live_t",
        transport=httpx.MockTransport(lambda request: answers.pop(0)),
    )
    told: list[str] = []
    budget = Budget()
    remote = Remote(client, budget, on_wait=told.append)
    started = time.monotonic()
    async with client:
        page = await remote.call(Bucket.READ, lambda: client.list_passes())
    assert page.total == 0
    assert time.monotonic() - started >= 0.9
    assert told == ["rate limited by the server, waiting 1 s"]


# -- the real command, piped ----------------------------------------------------------------


def test_python_m_scanner_manage_piped(config: Path, local_server: LocalServer) -> None:
    codes = local_server.seed()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSQR")}
    done = subprocess.run(
        [sys.executable, "-m", "scanner.manage", "passes", "list", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "\x1b" not in done.stdout
    assert all(code in done.stdout for code in codes.values())
