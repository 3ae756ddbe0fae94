"""The hub's dashboard in a real browser (headless Chromium): what a venue's laptop shows.

The page is served by `dashboard_routes()` next to a fake ``GET /hub/status`` that checks
the bearer key, answers the JSON the test gives it, and records every request that
reaches the server. Chromium runs the page's polling script in virtual time (8 s: four
polls) and the test reads the DOM it leaves. To point these checks at the real hub,
serve its app instead of `fake_app` and give it the same status.

Chromium missing: skipped, unless CI is set (then it fails: CI must run these).
"""

from __future__ import annotations

import copy
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from scanner.hub.dashboard import FILES, dashboard_routes
from tests.support.browser import PNG_SIGNATURE, dump_dom, screenshot
from tests.support.dom import Node, parse
from tests.support.serving import serve

KEY = "pqr_live_" + "Hub7Dash" * 5
WRONG_KEY = "pqr_live_" + "Nope0000" * 5
HOSTILE_GATE = "<img src=x onerror=\"document.title='pwned'\">"
HOSTILE_MESSAGE = "PassQR says <b>used</b><script>document.title='pwned'</script>"
#: For the lead engineer: the last screenshot of a run.
SHARED_SCREENSHOT = Path(tempfile.gettempdir()) / "hub-dashboard.png"
CHROMIUM_TIMEOUT_S = 20.0


def ramp(*tail: int) -> list[int]:
    """30 admissions per minute, oldest first: zeros, then ``tail`` up to the current minute."""
    return [0] * (30 - len(tail)) + list(tail)


def full_status() -> dict[str, Any]:
    """A busy half hour: three gates (one with a hostile name), a conflict with markup."""
    return {
        "hub": {
            "version": "0.1",
            "started_at": "2026-12-02T14:00:00Z",
            "now": "2026-12-02T14:30:05Z",
        },
        "gates": [
            {
                "name": "gate-1",
                "role": "gate",
                "last_seen": "2026-12-02T14:29:53Z",
                "state": "online",
                "accepted": {"minute": 3, "hour": 40, "day": 120},
                "rejected": {"minute": 0, "hour": 2, "day": 5},
                "admissions_per_minute": ramp(1, 3, 5, 8, 6, 9, 12, 10, 7, 11, 14, 9, 3),
            },
            {
                "name": HOSTILE_GATE,
                "role": "staff",
                "last_seen": "2026-12-02T14:27:05Z",
                "state": "quiet",
                "accepted": {"minute": 0, "hour": 12, "day": 30},
                "rejected": {"minute": 0, "hour": 1, "day": 1},
                "admissions_per_minute": ramp(2, 4, 4, 6, 3, 5, 2, 0, 0, 0),
            },
            {
                "name": "north door",
                "role": "gate",
                "last_seen": None,
                "state": "never",
                "accepted": {"minute": 0, "hour": 0, "day": 0},
                "admissions_per_minute": ramp(),
            },
        ],
        "upstream": {
            "base_url": "https://passqr.com/api/v1",
            "state": "ok",
            "last_error": None,
            "queue": 4,
            "sent": 118,
            "conflicts": 1,
            "last_sync": "2026-12-02T14:27:05Z",
            "passes_mirrored": 950,
            "paused_until": None,
            "budget": {"validate": {"used": 12, "limit": 60}, "read": {"used": 3, "limit": 120}},
        },
        "conflicts": [
            {
                "id": 7,
                "code": "PASS-ABCD-1234",
                "pass_id": "5b0e8a4e-0c1f-4c1a-9d57-2f64a1b2c3d4",
                "gate": "gate-2",
                "decided_at": "2026-12-02T14:20:00Z",
                "upstream_result": "used",
                "message": HOSTILE_MESSAGE,
            }
        ],
    }


@dataclass
class Seen:
    """One request that reached the server."""

    method: str
    path: str
    query: str
    headers: dict[str, str]


@dataclass
class FakeHub:
    """``GET /hub/status`` as the hub core answers it, with answers the test chooses.

    ``answers`` are given in turn, the last one again and again; past ``cut_after``
    answers the connection is cut mid-answer (the browser sees a network failure).
    """

    answers: list[dict[str, Any]] = field(default_factory=list)
    cut_after: int | None = None
    seen: list[Seen] = field(default_factory=list)
    calls: int = 0

    def reset(self, *answers: dict[str, Any], cut_after: int | None = None) -> None:
        self.answers = [copy.deepcopy(a) for a in answers]
        self.cut_after = cut_after
        self.seen.clear()
        self.calls = 0

    def status_calls(self) -> list[Seen]:
        return [s for s in self.seen if s.path == "/hub/status"]

    async def status(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse(
                {"error": "Unauthorized", "message": "Unknown key for this hub"}, status_code=401
            )
        self.calls += 1
        if self.cut_after is not None and self.calls > self.cut_after:
            return CutResponse()
        return JSONResponse(self.answers[min(self.calls, len(self.answers)) - 1])


class CutResponse(Response):
    """Announces 1000 bytes, sends 10 and stops: uvicorn closes the connection."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"hub": {}', "more_body": True})


def recording(app: ASGIApp, hub: FakeHub) -> ASGIApp:
    """``app``, noting every HTTP request that reaches it in ``hub.seen``."""

    async def record(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            query = scope["query_string"].decode("latin-1")
            hub.seen.append(Seen(scope["method"], scope["raw_path"].decode(), query, headers))
        await app(scope, receive, send)

    return record


def fake_app(hub: FakeHub) -> ASGIApp:
    routes = [*dashboard_routes(), Route("/hub/status", hub.status, methods=["GET"])]
    return recording(Starlette(routes=routes), hub)


@pytest.fixture(scope="module")
def hub() -> FakeHub:
    return FakeHub()


@pytest.fixture(scope="module")
def base_url(hub: FakeHub) -> Iterator[str]:
    with serve(fake_app(hub)) as url:
        yield url


@dataclass
class Shown:
    """What the browser left after 8 s of the full status, and what reached the server."""

    html: str
    dom: Node
    seen: list[Seen]


def load(base_url: str, key: str | None = KEY) -> tuple[str, Node]:
    fragment = f"#key={key}" if key else ""
    html = dump_dom(f"{base_url}/hub{fragment}", timeout_s=CHROMIUM_TIMEOUT_S)
    return html, parse(html)


@pytest.fixture(scope="module")
def shown(chromium: str, hub: FakeHub, base_url: str) -> Shown:
    hub.reset(full_status())
    html, dom = load(base_url)
    return Shown(html, dom, list(hub.seen))


def texts(dom: Node, testid: str) -> list[str]:
    return [n.text.strip() for n in dom.all(testid)]


def polyline_points(series: Node) -> list[tuple[float, float]]:
    (line,) = series.by_tag("polyline")
    pairs = [p.split(",") for p in line.attrs["points"].split()]
    return [(float(x), float(y)) for x, y in pairs]


def test_the_header_shows_the_upstream_state_and_its_numbers(shown: Shown) -> None:
    dom = shown.dom
    assert not dom.one("dashboard").hidden and dom.one("login").hidden
    state = dom.one("upstream-state")
    assert (state.text, state.attrs["data-state"]) == ("OK", "ok")
    assert dom.one("queue").text == "4"
    assert dom.one("sent").text == "118"
    assert dom.one("conflicts-count").text == "1"
    assert dom.one("last-sync").text == "3 min ago"
    assert dom.one("passes-mirrored").text == "950"
    assert dom.one("budget-validate").text == "12 / 60 per min"
    assert dom.one("budget-read").text == "3 / 120 per min"
    assert dom.one("connection").text.startswith("Live")


def test_one_row_per_gate_with_its_state_last_seen_and_counts(shown: Shown) -> None:
    rows = shown.dom.all("gate-row")
    assert texts(shown.dom, "gate-name") == ["gate-1", HOSTILE_GATE, "north door"]
    assert texts(shown.dom, "gate-state") == ["Online", "Quiet", "Never seen"]
    assert texts(shown.dom, "gate-last-seen") == ["12 s ago", "3 min ago", "—"]
    numbers = [[c.text for c in row.by_tag("td") if "num" in c.classes] for row in rows]
    assert numbers[0] == ["3", "40", "120", "0", "2", "5"]
    assert numbers[2] == ["0", "0", "0", "—", "—", "—"]  # no "rejected": a dash each


def test_hostile_names_and_messages_stay_text(shown: Shown) -> None:
    dom = shown.dom
    assert dom.by_tag("img") == []
    assert not [n for n in dom.walk() if any(a.startswith("on") for a in n.attrs)]
    assert [t.text for t in dom.by_tag("title")][0] == "Venue hub · PassQR"
    assert "&lt;img src=x onerror=" in shown.html  # escaped in the serialised page
    assert dom.one("conflict-message").text.endswith(HOSTILE_MESSAGE)
    assert [s.attrs.get("src") for s in dom.by_tag("script")] == ["/hub/dashboard.js"]
    assert dom.by_tag("b") == []


def test_the_chart_has_one_series_of_30_minutes_per_gate(shown: Shown) -> None:
    chart = shown.dom.one("chart")
    assert chart.tag == "svg"
    series = chart.all("chart-series")
    assert [s.attrs["data-gate"] for s in series] == ["gate-1", HOSTILE_GATE, "north door"]
    assert [len(polyline_points(s)) for s in series] == [30, 30, 30]
    colours = {s.by_tag("polyline")[0].attrs["stroke"] for s in series}
    assert len(colours) == 3
    # The busiest minute is the highest point (smallest y) of gate-1's line.
    gate_1 = [y for _, y in polyline_points(series[0])]
    assert gate_1.index(min(gate_1)) == 30 - 3
    labels = [t.text for t in chart.by_tag("text")]
    assert {"now", "minutes ago", "admissions / min"} <= set(labels)
    legend = shown.dom.all("legend-item")
    assert [item.text.split("in 30 min")[0] for item in legend][0].startswith("gate-1")
    assert len(legend) == 3


def test_the_conflicts_to_resolve_are_listed(shown: Shown) -> None:
    (row,) = shown.dom.all("conflict-row")
    assert shown.dom.one("conflict-code").text == "PASS-ABCD-1234"
    assert shown.dom.one("conflict-gate").text == "gate-2"
    assert "10 min ago" in row.text
    assert shown.dom.one("conflicts-empty").hidden


def test_the_key_travels_only_in_the_authorization_header(shown: Shown) -> None:
    calls = [s for s in shown.seen if s.path == "/hub/status"]
    assert len(calls) >= 3, "the page polls every 2 s"
    assert all(c.headers.get("authorization") == f"Bearer {KEY}" for c in calls)
    assert all(c.method == "GET" for c in calls)
    for seen in shown.seen:
        assert KEY not in seen.path + "?" + seen.query
        assert KEY not in "".join(v for k, v in seen.headers.items() if k != "authorization")
    assert "referer" not in {k for s in shown.seen for k in s.headers}
    assert {s.path for s in shown.seen} == {*FILES, "/hub/status"}
    assert KEY not in shown.html


def test_a_wrong_key_shows_the_form_again(chromium: str, hub: FakeHub, base_url: str) -> None:
    hub.reset(full_status())
    _, dom = load(base_url, WRONG_KEY)
    assert dom.one("login-message").text == "This key is not accepted by the hub"
    assert dom.one("login-detail").text == "Unknown key for this hub"
    assert not dom.one("login").hidden and dom.one("dashboard").hidden
    assert dom.one("key-input").attrs["type"] == "password"
    calls = hub.status_calls()
    assert len(calls) == 1, "a refused key is not tried again"
    assert calls[0].headers["authorization"] == f"Bearer {WRONG_KEY}"


def test_without_a_key_the_form_is_shown(chromium: str, hub: FakeHub, base_url: str) -> None:
    hub.reset(full_status())
    _, dom = load(base_url, None)
    assert not dom.one("login").hidden and dom.one("dashboard").hidden
    assert dom.one("login-message").text == ""
    assert hub.status_calls() == []


def test_a_lost_hub_keeps_the_last_data_greyed(chromium: str, hub: FakeHub, base_url: str) -> None:
    first = full_status()
    second = full_status()
    second["upstream"]["queue"] = 5
    hub.reset(first, second, cut_after=2)
    _, dom = load(base_url)
    assert dom.one("connection").text == "Hub unreachable, retrying"
    dashboard = dom.one("dashboard")
    assert "stale" in dashboard.classes and not dashboard.hidden
    assert dom.one("queue").text == "5", "the second answer was shown, then kept"
    assert len(dom.all("gate-row")) == 3
    assert len(hub.status_calls()) >= 3, "it keeps retrying"


def test_missing_fields_show_a_dash(chromium: str, hub: FakeHub, base_url: str) -> None:
    sparse: dict[str, Any] = {
        "hub": {},
        "gates": [{"name": "bare"}, "not a gate"],
        "upstream": {"state": "rate_limited", "paused_until": "2026-12-02T14:31:00Z"},
    }
    hub.reset(sparse)
    _, dom = load(base_url)
    assert dom.one("upstream-state").text == "Rate limited"
    for testid in ("queue", "sent", "conflicts-count", "last-sync", "passes-mirrored"):
        assert dom.one(testid).text == "—", testid
    assert dom.one("budget-validate").text == "— / — per min"
    assert texts(dom, "gate-name") == ["bare", "—"]
    assert texts(dom, "gate-state") == ["—", "—"]
    assert [len(polyline_points(s)) for s in dom.all("chart-series")] == [0, 0]
    assert dom.all("conflict-row") == []
    assert dom.one("conflicts-empty").text == "—", "no list is not an empty list"


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header.startswith(PNG_SIGNATURE) and header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def share(path: Path) -> None:
    """Copy the screenshot to /tmp/hub-dashboard.png; never over another user's file."""
    with tempfile.NamedTemporaryFile(dir=SHARED_SCREENSHOT.parent, delete=False) as tmp:
        tmp.write(path.read_bytes())
    try:
        os.replace(tmp.name, SHARED_SCREENSHOT)  # replaces a link, never writes through one
    except OSError:
        Path(tmp.name).unlink(missing_ok=True)


def test_a_screenshot_at_1280_by_800(
    chromium: str, hub: FakeHub, base_url: str, tmp_path: Path
) -> None:
    hub.reset(full_status())
    png = screenshot(
        f"{base_url}/hub#key={KEY}",
        tmp_path / "hub.png",
        (1280, 800),
        timeout_s=CHROMIUM_TIMEOUT_S,
    )
    assert png_size(png) == (1280, 800)
    assert png.stat().st_size > 20_000, "a page with content, not a blank one"
    assert hub.status_calls(), "the screenshot shows the hub's status"
    share(png)
