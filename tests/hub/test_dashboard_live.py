"""The dashboard in Debian's headless Chromium against a REAL hub (upstream: the local
server), after real admissions: what an operator opening /hub sees."""

from __future__ import annotations

from pathlib import Path

from tests.support.browser import dump_dom
from tests.support.dom import parse
from tests.support.venue import venue, wait_until


def test_the_dashboard_of_a_live_hub_shows_its_gates_queue_and_conflict(
    tmp_path: Path, chromium: str
) -> None:
    with venue(tmp_path, gate_names=("north-1", "south-1")) as place:
        template = place.new_template()
        passes = [place.new_pass(template, max_uses=1) for _ in range(3)]
        place.stop_hub()
        place.start_hub()
        place.wait_synced()
        place.upstream_api().delete(f"/passes/{passes[2]['id']}")  # revoked at PassQR only
        north, south = place.gate("north-1"), place.gate("south-1")
        for p in passes:
            assert north.post("/validate", json={"code": p["code"]}).status_code == 200
        assert (
            south.post("/validate", json={"code": passes[0]["code"]}).json()["data"]["result"]
            == "used"
        )
        place.wait_drained()
        wait_until(lambda: place.status()["upstream"]["conflicts"] == 1)
        root = place.hub_url.removesuffix("/api/v1")
        dom = parse(dump_dom(f"{root}/hub#key={place.staff_key}", timeout_s=40))
    assert not dom.one("dashboard").hidden
    assert dom.one("upstream-state").text.strip().lower().startswith("ok")
    assert dom.one("queue").text == "0"
    assert dom.one("sent").text == "2"
    assert dom.one("conflicts-count").text == "1"
    names = [n.text for n in dom.all("gate-name")]
    assert {"north-1", "south-1"} <= set(names)
    rows = {row.one("gate-name").text: row for row in dom.all("gate-row")}
    north_numbers = [c.text for c in rows["north-1"].by_tag("td") if "num" in c.classes]
    assert north_numbers[:3] == ["3", "3", "3"]  # accepted this minute, hour, day
    south_numbers = [c.text for c in rows["south-1"].by_tag("td") if "num" in c.classes]
    assert south_numbers[3:] == ["1", "1", "1"]  # rejected
    (conflict,) = dom.all("conflict-row")
    assert conflict.one("conflict-code").text == passes[2]["code"]
    assert conflict.one("conflict-gate").text == "north-1"
    series = {s.attrs["data-gate"] for s in dom.one("chart").all("chart-series")}
    assert {"north-1", "south-1"} <= series
