"""The hub against an upstream that misbehaves, and gates that ask too much: what an
adversarial tester found, each held by a test that failed before its fix."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scanner.hub.app import create_hub_app
from scanner.hub.upstream import Reply, _retry_after
from scanner.hub.worker import unsettled
from scanner.server import ServerThread
from tests.support.fault_proxy import FaultProxy
from tests.support.venue import Venue, venue, wait_until


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Venue, FaultProxy]]:
    """A venue whose hub reaches PassQR through a fault proxy, with a 1 s upstream timeout."""
    with venue(tmp_path, start_hub=False) as place:
        proxy = FaultProxy(upstream_port=place.upstream.port).start()
        up = dataclasses.replace(place.config.upstream, base_url=proxy.base_url(), timeout_s=1.0)
        place.config = dataclasses.replace(place.config, upstream=up)
        try:
            place.hub = ServerThread(
                place.config.hub.db, app=create_hub_app(place.config, place.upstream_key)
            ).start()
            place.wait_synced()
            yield place, proxy
        finally:
            place.stop_hub()
            proxy.stop()


def _validate(place: Venue, gate: str, code: str) -> httpx.Response:
    return place.gate(gate).post("/validate", json={"code": code})


def test_a_dripping_upstream_is_cut_at_the_deadline_and_forwarding_goes_on(
    proxied: tuple[Venue, FaultProxy],
) -> None:
    place, proxy = proxied
    template = place.new_template()
    fresh = place.new_pass(template, max_uses=1)  # not in the mirror
    proxy.set_default("drip:0.5")  # headers at once, then a byte every 0.5 s
    started = time.monotonic()
    answer = _validate(place, "north-1", fresh["code"])
    assert answer.status_code == 503, answer.text
    assert time.monotonic() - started < 5.0  # the 1 s deadline, not the 30 s of a drip
    assert place.status()["upstream"]["state"] == "unreachable"
    assert "within 1 s" in place.status()["upstream"]["last_error"]
    proxy.set_default("pass")
    assert _validate(place, "north-1", fresh["code"]).json()["data"]["result"] == "valid"
    # An admission queued behind a dripping answer is forwarded once the upstream heals.
    known = place.seed(1)[0]
    place.stop_hub()
    place.start_hub()
    place.wait_synced()
    proxy.set_default("drip:0.5")
    assert _validate(place, "north-2", known["code"]).json()["data"]["result"] == "valid"
    wait_until(lambda: place.status()["upstream"]["state"] == "unreachable", within_s=10)
    proxy.set_default("pass")
    place.wait_drained(within_s=60)
    assert place.upstream_uses(known["id"]) == 1


def test_concurrent_scans_of_one_unknown_code_ask_upstream_once(
    proxied: tuple[Venue, FaultProxy],
) -> None:
    place, proxy = proxied
    template = place.new_template()
    fresh = place.new_pass(template, max_uses=1)
    before = len(proxy.validations())
    results: list[str] = []
    barrier = threading.Barrier(6)

    def scan(gate: str) -> None:
        with httpx.Client(
            base_url=place.hub_url,
            headers={"Authorization": f"Bearer {place.gates[gate]}"},
            timeout=10,
        ) as client:
            barrier.wait()
            results.append(
                client.post("/validate", json={"code": fresh["code"]}).json()["data"]["result"]
            )

    threads = [threading.Thread(target=scan, args=(g,)) for g in ("north-1", "north-2") * 3]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert sorted(results) == ["used"] * 5 + ["valid"]
    assert len(proxy.validations()) - before == 1
    assert place.upstream_uses(fresh["id"]) == 1


def test_one_gate_cannot_spend_the_venues_live_budget_on_unknown_codes(tmp_path: Path) -> None:
    with venue(tmp_path, validate_per_min=20) as place:  # a gate's share: 5 per window
        place.wait_synced()
        answers = [_validate(place, "north-1", f"PASS-ZZZZ{i:04d}").status_code for i in range(7)]
        assert answers == [200] * 5 + [429] * 2
        refused = _validate(place, "north-1", "PASS-ZZZZ9998")
        assert refused.headers["Retry-After"].isdigit()
        assert "its share" in refused.json()["message"]
        # Another gate still gets a new pass decided by PassQR.
        fresh = place.new_pass(place.new_template(), max_uses=1)
        assert _validate(place, "north-2", fresh["code"]).json()["data"]["result"] == "valid"
        # A known pass at the gate that used its share is decided as always.
        known = place.new_pass(place.new_template(), max_uses=2)
        assert _validate(place, "north-2", known["code"]).json()["data"]["result"] == "valid"
        assert _validate(place, "north-1", known["code"]).json()["data"]["result"] == "valid"


def _reply(status: int, payload: Any) -> Reply:
    return Reply(status, b"", payload, {})


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (409, {"error": "Conflict", "message": "in progress"}),
        (404, {"error": "Not Found", "message": "No such endpoint"}),
        (402, {"error": "plan_not_supported"}),
        (200, {}),
        (200, {"data": None}),
        (200, {"data": {"result": "maybe"}}),
        (201, {"data": {"result": "valid"}}),
    ],
)
def test_an_answer_that_decides_nothing_leaves_the_admission_queued(
    status: int, payload: Any
) -> None:
    assert unsettled(_reply(status, payload)) is not None


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (200, {"data": {"result": "valid"}}),
        (200, {"data": {"result": "used", "message": "Pass already used"}}),
        (200, {"data": {"result": "revoked"}}),
        (200, {"data": {"result": "not_found"}}),
        (400, {"error": "Bad Request", "message": "code is malformed"}),
        (422, {"error": "Unprocessable", "message": "key reused"}),
    ],
)
def test_a_decision_or_a_refusal_of_the_request_settles_it(status: int, payload: Any) -> None:
    assert unsettled(_reply(status, payload)) is None


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("99999999", 60.0),
        ("1e308", 60.0),
        ("120", 60.0),
        ("0", 1.0),
        ("-1", 5.0),
        ("nan", 5.0),
        ("", 5.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 5.0),
        (None, 5.0),
        ("7", 7.0),
    ],
)
def test_a_429s_wait_is_held_between_a_second_and_the_window(
    header: str | None, seconds: float
) -> None:
    assert _retry_after(header, 60.0) == seconds
