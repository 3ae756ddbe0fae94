"""The `server` CLI, run as a user would: `python -m scanner.server server ...`."""

from __future__ import annotations

import argparse
import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scanner.server import ServerThread
from scanner.server.cli import add_server_parser

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "scanner.server", "server"]
KEY_RE = re.compile(r"pqr_live_[A-Za-z0-9]{32,}")


def cli(*args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_create_key_prints_the_key_alone(tmp_path: Path) -> None:
    db = tmp_path / "new" / "server.sqlite3"
    result = cli("create-key", "--db", str(db), "--name", "gate 1")
    assert result.returncode == 0, result.stderr
    assert KEY_RE.fullmatch(result.stdout.rstrip("\n"))
    assert result.stdout.count("\n") == 1
    assert "cannot be shown again" in result.stderr
    key = result.stdout.strip()
    with ServerThread(db, rate_limit=False) as server:
        answer = httpx.get(f"{server.base_url}/passes", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200


def test_create_key_with_free_plan(tmp_path: Path) -> None:
    db = tmp_path / "server.sqlite3"
    key = cli("create-key", "--db", str(db), "--plan", "free").stdout.strip()
    with ServerThread(db, rate_limit=False) as server:
        answer = httpx.get(f"{server.base_url}/passes", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 403
    bad = cli("create-key", "--db", str(db), "--plan", "gold")
    assert bad.returncode == 2
    assert "invalid choice" in bad.stderr


def test_seed_demo_prints_label_code_lines(tmp_path: Path) -> None:
    result = cli("seed-demo", "--db", str(tmp_path / "seed.sqlite3"))
    assert result.returncode == 0, result.stderr
    lines = [line.split(" ") for line in result.stdout.splitlines()]
    assert [label for label, _ in lines] == ["valid", "season", "used", "expired", "revoked"]
    assert all(re.fullmatch(r"PASS-[A-Z0-9]{8}", code) for _, code in lines)


@pytest.mark.parametrize("command", ["create-key", "seed-demo", "run"])
def test_unwritable_database_path_is_a_clear_error(tmp_path: Path, command: str) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    extra = ["--port", "0"] if command == "run" else []
    result = cli(command, "--db", str(blocker / "server.sqlite3"), *extra)
    assert result.returncode == 1
    assert_one_line_error(result, "cannot create directory", str(blocker))


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("run", "--db", str(tmp_path / "s.sqlite3"), "--port", str(port))
    assert result.returncode == 1
    assert_one_line_error(result, f"127.0.0.1:{port}", "address already in use")


def test_bad_port_is_a_usage_error(tmp_path: Path) -> None:
    result = cli("run", "--db", str(tmp_path / "s.sqlite3"), "--port", "70000")
    assert result.returncode == 2
    assert "port must be 0 to 65535" in result.stderr


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, str, Path]]:
    """`server run` on a free port; yields (process, base_url, key, db)."""
    db = tmp_path / "run.sqlite3"
    key = cli("create-key", "--db", str(db)).stdout.strip()
    with serving(db) as (process, base_url):
        yield process, base_url, key, db


@contextlib.contextmanager
def serving(db: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`server run --db db *extra` on a free port; yields (process, base_url)."""
    process = subprocess.Popen(
        [*CLI, "run", "--db", str(db), "--port", "0", "--no-rate-limit", *extra],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stderr is not None
    stderr = process.stderr

    def pump() -> None:
        for line in stderr:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    base_url = ""
    deadline = time.monotonic() + 20
    seen: list[str] = []
    while not base_url and time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        seen.append(line)
        match = re.search(r"(http://127\.0\.0\.1:\d+/api/v1)", line)
        if match:
            base_url = match.group(1)
    try:
        assert base_url, "".join(seen)
        yield process, base_url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        reader.join(5)
        for line in iter(lambda: lines.get_nowait() if not lines.empty() else "", ""):
            seen.append(line)
        assert "Traceback" not in "".join(seen), "".join(seen)
        assert process.stdout is not None
        process.stdout.close()
        stderr.close()


def test_businesses_and_quotas_from_the_command_line(tmp_path: Path) -> None:
    db = tmp_path / "biz.sqlite3"
    made = cli("create-key", "--db", str(db), "--plan", "starter", "--business", "north")
    assert made.returncode == 0, made.stderr
    assert "business 'north'" in made.stderr
    starter = made.stdout.strip()
    plain = cli("create-key", "--db", str(db)).stdout.strip()
    seeded = cli("seed-demo", "--db", str(db), "--business", "north")
    assert seeded.returncode == 0, seeded.stderr
    codes = dict(line.split(" ") for line in seeded.stdout.splitlines())
    bad = cli("create-key", "--db", str(db), "--business", " ")
    assert_one_line_error(bad, "business")
    assert cli("run", "--db", str(db), "--pass-quota", "gold=1").returncode == 2
    assert cli("run", "--db", str(db), "--pass-quota", "starter=-1").returncode == 2
    with serving(db, "--pass-quota", "starter=6", "--pass-quota", "pro=unlimited") as (
        _,
        base_url,
    ):
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {starter}"}) as api:
            template = api.get("/templates").json()["data"][0]
            assert (
                api.post("/validate", json={"code": codes["season"]}).json()["data"]["result"]
                == "valid"
            )
            created = api.post("/passes", json={"template_id": template["id"]})
            assert created.status_code == 201, created.text  # the 6th pass
            refused = api.post("/passes", json={"template_id": template["id"]})
            assert (refused.status_code, refused.json()["error"]) == (402, "plan_limit_reached")
            pushed = api.post(f"/passes/{created.json()['data']['id']}/push")
            assert (pushed.status_code, pushed.json()["error"]) == (402, "plan_not_supported")
        with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {plain}"}) as api:
            answer = api.post("/validate", json={"code": codes["season"]}).json()["data"]
            assert answer["result"] == "not_found"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_run_serves_and_stops_cleanly_on_signal(
    running: tuple[subprocess.Popen[str], str, str, Path], sig: signal.Signals
) -> None:
    process, base_url, key, db = running
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url, headers=headers) as client:
        template = client.post("/templates", json={"name": "CLI"}).json()["data"]
        created = client.post("/passes", json={"template_id": template["id"]}).json()["data"]
        answer = client.post("/validate", json={"code": created["code"]})
        assert answer.json()["data"]["result"] == "valid"
        for _ in range(70):  # --no-rate-limit
            assert client.get("/templates").status_code == 200
    started = time.monotonic()
    process.send_signal(sig)
    assert process.wait(timeout=10) == 0
    assert time.monotonic() - started < 5
    # The database was closed: SQLite removes the WAL when the last connection closes.
    assert not (db.parent / (db.name + "-wal")).exists()


def test_add_server_parser_registers_the_forms() -> None:
    parser = argparse.ArgumentParser(prog="passqr-scanner")
    add_server_parser(parser.add_subparsers(dest="command", required=True))

    run = parser.parse_args(["server", "run", "--db", "x.sqlite3"])
    assert (run.host, run.port, run.no_rate_limit) == ("127.0.0.1", 8787, False)
    assert run.db == Path("x.sqlite3")
    run = parser.parse_args(
        ["server", "run", "--db", "x", "--host", "0.0.0.0", "--port", "9", "--no-rate-limit"]
    )
    assert (run.host, run.port, run.no_rate_limit) == ("0.0.0.0", 9, True)

    key = parser.parse_args(["server", "create-key", "--db", "x", "--name", "n", "--plan", "free"])
    assert (key.name, key.plan) == ("n", "free")
    assert parser.parse_args(["server", "create-key", "--db", "x"]).plan == "pro"
    seed = parser.parse_args(["server", "seed-demo", "--db", "x"])
    funcs = {run.func, key.func, seed.func}
    assert len(funcs) == 3
    assert all(callable(func) for func in funcs)
    with pytest.raises(SystemExit):
        parser.parse_args(["server", "run"])  # --db is required


def test_seed_demo_func_returns_exit_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser()
    add_server_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["server", "seed-demo", "--db", str(tmp_path / "f.sqlite3")])
    assert args.func(args) == 0
    assert len(capsys.readouterr().out.splitlines()) == 5
    blocker = tmp_path / "file"
    blocker.write_text("")
    args = parser.parse_args(["server", "create-key", "--db", str(blocker / "x.sqlite3")])
    assert args.func(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "cannot create directory" in captured.err


def test_import_hygiene() -> None:
    """The server shares nothing with the kiosk, and its CLI hook stays light."""
    probe = (
        "import sys\n"
        "import scanner.server.cli\n"
        "print(sorted(m for m in ('uvicorn', 'starlette') if m in sys.modules))\n"
        "import scanner.server.__main__, scanner.server.app, scanner.server.runner\n"
        "from scanner.server import ServerThread, create_app, create_key, seed_demo\n"
        "bad = ('scanner.api', 'scanner.pipeline', 'scanner.ui', 'scanner.config',\n"
        "       'scanner.journal', 'scanner.relay', 'scanner.sources', 'textual', 'httpx')\n"
        "print(sorted(m for m in sys.modules if m.startswith(bad)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.splitlines() == ["[]", "[]"]
