"""The dashboard's files: served with their security headers, shipped in the wheel, and
written so that the Content-Security-Policy can forbid everything inline.

What the page shows is `test_dashboard_browser.py`'s part (a real browser).
"""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from scanner.hub.dashboard import CONTENT_SECURITY_POLICY, FILES, dashboard_routes, static_file
from tests.support.dom import parse

ROOT = Path(__file__).resolve().parents[2]
NAMES = sorted(name for name, _ in FILES.values())


def client() -> httpx.AsyncClient:
    app = Starlette(routes=dashboard_routes())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub")


@pytest.mark.parametrize(("path", "media_type"), [(p, m) for p, (_, m) in FILES.items()])
async def test_each_file_is_served_with_the_security_headers(path: str, media_type: str) -> None:
    async with client() as http:
        response = await http.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.content == static_file(FILES[path][0])


def test_the_policy_allows_nothing_inline_and_nothing_elsewhere() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives == {
        "default-src": "'none'",
        "script-src": "'self'",
        "style-src": "'self'",
        "connect-src": "'self'",
        "img-src": "'self' data:",
        "base-uri": "'none'",
        "frame-ancestors": "'none'",
        "form-action": "'none'",
    }


@pytest.mark.parametrize("method", ["HEAD", "POST", "PUT", "DELETE"])
async def test_only_get_is_offered(method: str) -> None:
    async with client() as http:
        response = await http.request(method, "/hub")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"


async def test_no_key_is_needed_for_the_files() -> None:
    async with client() as http:
        response = await http.get("/hub", headers={"Authorization": "Bearer nonsense"})
    assert response.status_code == 200


@pytest.mark.parametrize("name", NAMES)
def test_the_files_are_package_data(name: str) -> None:
    resource = resources.files("scanner.hub").joinpath("static", name)
    assert resource.is_file()
    assert len(resource.read_bytes()) > 500


def test_the_wheel_ships_the_files(tmp_path: Path) -> None:
    """What ``pip install .`` installs: the wheel hatchling builds from the tree."""
    pytest.importorskip("hatchling", reason="hatchling builds the wheel (requirements/dev.txt)")
    build = f"from hatchling.build import build_wheel; print(build_wheel({str(tmp_path)!r}))"
    proc = subprocess.run(
        [sys.executable, "-c", build],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    wheel = tmp_path / proc.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(wheel) as archive:
        for name in NAMES:
            assert archive.read(f"scanner/hub/static/{name}") == static_file(name)


def test_the_page_has_no_inline_script_style_or_handler() -> None:
    dom = parse(static_file("dashboard.html").decode())
    scripts = dom.by_tag("script")
    assert [s.attrs.get("src") for s in scripts] == ["/hub/dashboard.js"]
    assert all(s.text.strip() == "" for s in scripts)
    assert dom.by_tag("style") == []
    assert [link.attrs["href"] for link in dom.by_tag("link")] == ["data:,", "/hub/dashboard.css"]
    for node in dom.walk():
        assert "style" not in node.attrs, node.tag
        assert not [a for a in node.attrs if a.startswith("on")], node.tag


def test_the_script_never_writes_markup() -> None:
    """Gate names and PassQR's messages are text: no API that parses a string as HTML."""
    script = static_file("dashboard.js").decode()
    forbidden = r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function"
    assert re.findall(forbidden, script) == []
    assert 'setAttribute("style"' not in script


def test_the_page_uses_the_test_ids_the_browser_tests_read() -> None:
    page = static_file("dashboard.html").decode() + static_file("dashboard.js").decode()
    for testid in ("upstream-state", "queue", "gate-row", "gate-name", "conflict-row", "chart"):
        assert f'"{testid}"' in page, testid
