"""``passqr-scanner doctor`` for a kiosk whose ``api.base_url`` is a venue hub.

A real hub over loopback (tests/support/venue.py): healthy, then with PassQR gone;
the local PassQR server (no hub: no hub lines, nothing failed); a fake hub whose status
is hostile (escaped); a hub over HTTPS with its own certificate (the fix names
``[api] ca_file`` and the fingerprints). The gate key never shows in any output.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from scanner.doctor import Check, Status, diagnose, format_json, format_text, ready
from scanner.doctor.tls import fingerprint
from tests.conftest import LocalServer
from tests.support.venue import Venue, venue, wait_until

ROOT = Path(__file__).resolve().parents[2]
HUB_LINES = ("api hub", "hub upstream", "hub queue", "hub conflicts", "hub mirror", "hub gates")


def kiosk_config(tmp: Path, base_url: str, *, ca_file: Path | None = None) -> Path:
    """A kiosk with a scripted source and no relay: only the API part can go wrong."""
    (tmp / "state").mkdir(exist_ok=True)
    trust = f'ca_file = "{ca_file}"\n' if ca_file else ""
    path = tmp / "gate.toml"
    path.write_text(
        f"""
[api]
base_url = "{base_url}"
timeout_s = 2.0
{trust}
[gate]
name = "North 2"

[[sources]]
type = "simulated"
codes = ["PASS-AAAA1111"]

[relay]
type = "none"

[journal]
path = "{tmp / "state" / "journal.sqlite3"}"
"""
    )
    return path


@dataclass
class Report:
    checks: dict[str, Check]
    text: str
    json: str
    ready: bool

    def hub_lines(self) -> list[str]:
        return [line for line in self.text.splitlines() if line[6:].startswith(HUB_LINES)]


async def doctor(config: Path, key: str) -> Report:
    """The doctor with the key in PASSQR_API_KEY; the key shows nowhere."""
    checks = await diagnose(
        config, environ={"PASSQR_API_KEY": key}, credential_file=config.parent / "no-such-key"
    )
    text, report = format_text(checks, config), format_json(checks, config)
    secret = key.rpartition("_")[2]
    for check in checks:
        assert secret not in check.detail + check.fix
    assert secret not in text and secret not in report
    assert json.loads(report)["ready"] == ready(checks)
    return Report({c.name: c for c in checks}, text, report, ready(checks))


# -- a real hub -----------------------------------------------------------------------------


def _one_pass(place: Venue) -> None:
    place.new_pass(place.new_template(), max_uses=1)  # made before the hub starts: synced


@pytest.fixture
def place(tmp_path: Path) -> Iterator[Venue]:
    with venue(tmp_path, prepare=_one_pass) as v:
        v.wait_synced()
        yield v


async def test_a_healthy_hub_is_named_and_all_its_lines_are_ok(place: Venue) -> None:
    config = kiosk_config(place.root, place.hub_url)

    report = await doctor(config, place.gates["north-2"])

    checks = report.checks
    assert report.ready, report.text
    for name in HUB_LINES:
        assert checks[name].status is Status.OK, checks[name]
    root = place.hub_url.removesuffix("/api/v1")
    assert checks["api hub"].detail == f"API is a venue hub at {root} (version 0.1.0)"
    assert checks["hub upstream"].detail.startswith(f"{place.upstream.base_url}: answering")
    assert checks["hub queue"].detail == "0 admissions waiting to be sent to PassQR"
    assert checks["hub conflicts"].detail == "none"
    assert checks["hub mirror"].detail.startswith("1 pass mirrored, last synced ")
    # Two gates and the office's staff key; the doctor's own request made north-2 seen.
    gates = checks["hub gates"].detail
    assert gates.startswith("2 gates known (and 1 staff or admin key); online: ")
    assert "north-2" in gates and "north-1" not in gates


def test_the_command_shows_the_hub_and_exits_0(place: Venue) -> None:
    config = kiosk_config(place.root, place.hub_url)
    key = place.gates["north-1"]
    env = {**os.environ, "PASSQR_API_KEY": key, "PYTHONPATH": str(ROOT)}

    done = subprocess.run(
        [sys.executable, "-m", "scanner.doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert any(
        line.startswith("OK    api hub               API is a venue hub at") for line in lines
    )
    assert any(line.startswith("OK    hub upstream ") for line in lines)
    assert key.rpartition("_")[2] not in done.stdout + done.stderr


async def test_passqr_gone_is_a_warning_with_the_queued_admission(place: Venue) -> None:
    code = place.upstream_api().get("/passes").json()["data"][0]["code"]
    upstream_url = place.upstream.base_url
    place.upstream.stop()  # PassQR unreachable from the hub
    admitted = place.gate("north-1").post("/validate", json={"code": code})
    assert admitted.json()["data"]["result"] == "valid"  # decided at the hub, queued
    wait_until(lambda: place.status()["upstream"]["state"] == "unreachable")
    config = kiosk_config(place.root, place.hub_url)

    report = await doctor(config, place.gates["north-2"])

    upstream = report.checks["hub upstream"]
    assert upstream.status is Status.WARN
    # The hub's last error, whichever the last try met (a refused connection, or first a
    # pooled one found closed).
    said = re.escape(f"{upstream_url}: unreachable from the hub (")
    assert re.match(said + r"\w+Error: .+\); 0 admissions sent", upstream.detail), upstream
    assert "queues their admissions" in upstream.fix
    assert report.checks["hub queue"].detail == "1 admission waiting to be sent to PassQR"
    # The gate itself is ready: the hub decides the passes it holds.
    assert report.ready
    assert "WARN  hub upstream" in report.text


# -- not a hub ----------------------------------------------------------------------------


async def test_the_local_passqr_server_has_no_hub_lines(
    tmp_path: Path, local_server: LocalServer
) -> None:
    config = kiosk_config(tmp_path, local_server.base_url)

    report = await doctor(config, local_server.api_key)

    assert report.checks["api key accepted"].status is Status.OK
    assert not any(name.startswith(("api hub", "hub ")) for name in report.checks)
    assert report.hub_lines() == []
    assert report.ready, report.text


# -- a fake hub: what it is asked, and hostile answers ------------------------------------------


@dataclass
class FakeHub:
    """``/api/v1/templates`` and ``/hub/status`` with answers a test sets; it records paths."""

    status: Callable[[], Response]
    templates_status: int = 200
    asked: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        async def templates(request: Request) -> Response:
            self.asked.append(request.url.path)
            if self.templates_status != 200:
                return JSONResponse({"error": "Invalid API key"}, self.templates_status)
            return JSONResponse({"data": [], "meta": {"page": 1, "limit": 1, "total": 0}})

        async def status(request: Request) -> Response:
            self.asked.append(request.url.path)
            return self.status()

        return Starlette(
            routes=[Route("/api/v1/templates", templates), Route("/hub/status", status)]
        )


@contextmanager
def serving(app: Starlette, *, tls: tuple[Path, Path] | None = None) -> Iterator[str]:
    """``app`` on a free loopback port (HTTPS with ``tls``: cert, key); yields the API root."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    cert, key = tls if tls else (None, None)
    config = uvicorn.Config(
        app,
        log_config=None,
        lifespan="off",
        ssl_certfile=str(cert) if cert else None,
        ssl_keyfile=str(key) if key else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive())
        assert server.started
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}/api/v1"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def hostile_status() -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "hub": {"version": "\x1b]0;pwned\x07 9.9", "started_at": _stamp(now), "now": _stamp(now)},
        "gates": [
            {"name": "north\x1b[31m-1", "role": "gate", "state": "online"},
            {"name": "\u202eeviL", "role": "gate", "state": "online"},
            {"name": "south", "role": "gate", "state": "never"},
        ],
        "upstream": {
            "base_url": "https://passqr.com/api/v1\n\x1b[2J",
            "state": "unreachable",
            "last_error": "\x1b[2J\x1b[H[bold red]ALL OK[/bold red] \x9b31m\r\nOK    forged",
            "queue": 250,
            "sent": 7,
            "conflicts": 3,
            "last_sync": _stamp(now - timedelta(minutes=20)),
            "passes_mirrored": 0,
            "paused_until": None,
            "budget": {"validate": {"used": 5, "limit": 60}, "read": "lots"},
        },
        "conflicts": [],
    }


async def test_a_hostile_hub_status_is_escaped(tmp_path: Path) -> None:
    fake = FakeHub(lambda: JSONResponse(hostile_status()))
    key = "pqr_live_" + "H" * 40
    with serving(fake.app()) as base_url:
        report = await doctor(kiosk_config(tmp_path, base_url), key)

    for output in (report.text, report.json):
        for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
            assert raw not in output
    assert report.text.isascii()
    checks = report.checks
    upstream = checks["hub upstream"]
    assert upstream.status is Status.WARN
    # Rich markup stays text (the report is plain text), the escapes are visible.
    assert "\\x1b[2J\\x1b[H[bold red]ALL OK[/bold red] \\x9b31m" in upstream.detail
    assert upstream.detail.startswith("https://passqr.com/api/v1\\x0a\\x1b[2J: unreachable")
    # No line is forged: every line of the report is a check, its wrap, or the frame.
    assert not any(line.startswith("OK    forged") for line in report.text.splitlines())
    assert "(version \\x1b]0;pwned\\x07 9.9)" in checks["api hub"].detail
    assert checks["hub queue"].status is Status.WARN
    assert checks["hub queue"].detail.startswith("250 admissions")
    root = base_url.removesuffix("/api/v1")
    assert (
        checks["hub conflicts"].detail
        == f"3 conflicts to resolve on the hub's dashboard {root}/hub"
    )
    assert checks["hub conflicts"].status is Status.WARN
    mirror = checks["hub mirror"]
    assert mirror.status is Status.WARN
    assert mirror.detail.startswith("0 passes mirrored, last synced 20 min ago")
    assert "stale" in mirror.fix
    gates = checks["hub gates"].detail
    assert gates == "3 gates known; online: north\\x1b[31m-1, \\u202eeviL"
    assert fake.asked == ["/api/v1/templates", "/api/v1/templates", "/hub/status"]


@pytest.mark.parametrize(
    "answer",
    [
        lambda: JSONResponse({"error": "Not found"}, 404),
        lambda: PlainTextResponse("<html><title>PassQR</title></html>", 200),
        lambda: JSONResponse({"data": {"hub": "yes"}}),
        lambda: JSONResponse(["hub", "upstream"]),
        lambda: Response(b"{" * 100_000, media_type="application/json"),
    ],
    ids=["404", "page", "other-json", "a-list", "deep"],
)
async def test_what_is_not_a_hub_status_makes_no_hub_lines(
    tmp_path: Path, answer: Callable[[], Response]
) -> None:
    fake = FakeHub(answer)
    with serving(fake.app()) as base_url:
        report = await doctor(kiosk_config(tmp_path, base_url), "pqr_live_" + "N" * 40)

    assert report.hub_lines() == []
    assert report.ready, report.text
    assert fake.asked.count("/hub/status") == 1


async def test_a_status_of_the_wrong_types_is_read_as_unknown(tmp_path: Path) -> None:
    shape = {
        "hub": {"version": 5, "now": "yesterday"},
        "upstream": {"state": ["ok"], "queue": "many", "conflicts": -1, "last_sync": 12},
        "gates": "all",
    }
    fake = FakeHub(lambda: JSONResponse(shape))
    with serving(fake.app()) as base_url:
        report = await doctor(kiosk_config(tmp_path, base_url), "pqr_live_" + "W" * 40)

    checks = report.checks
    assert checks["api hub"].detail.endswith("(version unknown)")
    assert checks["hub upstream"].status is Status.WARN
    assert "a state this doctor does not know (none)" in checks["hub upstream"].detail
    assert checks["hub queue"].detail == "unknown (not in the hub's status)"
    assert checks["hub conflicts"].detail == "unknown"
    assert checks["hub mirror"].detail == "unknown passes; never synced"
    assert checks["hub gates"].detail == "0 gates known; none online"


async def test_a_rejected_key_never_asks_for_the_hub_status(tmp_path: Path) -> None:
    fake = FakeHub(lambda: JSONResponse(hostile_status()), templates_status=401)
    with serving(fake.app()) as base_url:
        report = await doctor(kiosk_config(tmp_path, base_url), "pqr_live_" + "R" * 40)

    assert report.checks["api key accepted"].status is Status.FAIL
    assert fake.asked == ["/api/v1/templates"]
    assert report.hub_lines() == []


# -- HTTPS with the hub's own certificate --------------------------------------------------


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed CA:TRUE certificate for 127.0.0.1 (as the hub makes its own)."""
    directory.mkdir()
    cert, key = directory / "hub-cert.pem", directory / "hub-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert),
            "-addext", "subjectAltName=IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,digitalSignature,keyCertSign",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def https_hub(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    now = datetime.now(UTC)
    upstream = {
        "state": "ok",
        "queue": 0,
        "conflicts": 0,
        "passes_mirrored": 12,
        "last_sync": _stamp(now - timedelta(seconds=30)),
    }
    status = {"hub": {"version": "0.1.0", "now": _stamp(now)}, "upstream": upstream, "gates": []}
    tls = _certificate(tmp_path / "hub", "PassQR venue hub")
    with serving(FakeHub(lambda: JSONResponse(status)).app(), tls=tls) as base_url:
        yield base_url, tls[0]


async def test_a_hub_certificate_not_trusted_says_to_set_ca_file(
    tmp_path: Path, https_hub: tuple[str, Path]
) -> None:
    base_url, cert = https_hub

    report = await doctor(kiosk_config(tmp_path, base_url), "pqr_live_" + "T" * 40)

    server = report.checks["api server"]
    assert server.status is Status.FAIL
    assert "certificate verify failed" in server.detail
    assert "set [api] ca_file to it" in server.fix
    assert "hub-cert.pem from the hub's state directory (/var/lib/passqr-hub" in server.fix
    assert f"(it presents SHA-256 {fingerprint(cert)})" in server.fix
    assert "openssl x509 -in FILE -noout -fingerprint -sha256" in server.fix
    assert report.hub_lines() == []


async def test_the_hubs_certificate_as_ca_file_is_trusted_and_shown(
    tmp_path: Path, https_hub: tuple[str, Path]
) -> None:
    base_url, cert = https_hub
    config = kiosk_config(tmp_path, base_url, ca_file=cert)

    report = await doctor(config, "pqr_live_" + "T" * 40)

    assert report.checks["api server"].status is Status.OK
    hub = report.checks["api hub"]
    root = base_url.removesuffix("/api/v1")
    assert hub.detail.startswith(f"API is a venue hub at {root} (version 0.1.0); its ")
    assert f"api.ca_file {cert} (SHA-256 {fingerprint(cert)})" in hub.detail
    assert report.checks["hub mirror"].detail.startswith("12 passes mirrored, last synced 30 s")


async def test_another_hubs_certificate_shows_both_fingerprints(
    tmp_path: Path, https_hub: tuple[str, Path]
) -> None:
    base_url, cert = https_hub
    other, _ = _certificate(tmp_path / "other", "Another hub")
    config = kiosk_config(tmp_path, base_url, ca_file=other)

    report = await doctor(config, "pqr_live_" + "T" * 40)

    server = report.checks["api server"]
    assert server.status is Status.FAIL
    assert fingerprint(other) != fingerprint(cert)
    assert f"api.ca_file {other} (SHA-256 {fingerprint(other)}) does not vouch" in server.fix
    assert f"(it presents SHA-256 {fingerprint(cert)})" in server.fix


def test_a_fingerprint_is_what_openssl_says(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, _ = _certificate(tmp_path / "hub", "PassQR venue hub")
    said = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert said.strip().partition("=")[2] == fingerprint(cert)
    assert fingerprint(tmp_path / "missing.pem") is None
    (tmp_path / "empty.pem").write_text("no certificate here\n")
    assert fingerprint(tmp_path / "empty.pem") is None
