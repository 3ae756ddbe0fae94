"""The hub's API against a real upstream (the local server) over loopback HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.venue import Venue, venue, wait_until


@pytest.fixture
def place(tmp_path: Path) -> Iterator[Venue]:
    with venue(tmp_path) as v:
        yield v


def _validate(client: httpx.Client, code: str, key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else None
    return client.post("/validate", json={"code": code}, headers=headers)


def _result(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    result: str = answer.json()["data"]["result"]
    return result


def _uses(place: Venue, pass_id: str) -> int:
    answer = place.upstream_api().get(f"/passes/{pass_id}")
    uses: int = answer.json()["data"]["uses_count"]
    return uses


def test_a_synced_pass_is_admitted_once_and_reaches_upstream_once(place: Venue) -> None:
    template = place.new_template()
    single = place.new_pass(template, max_uses=1)
    place.stop_hub()
    place.start_hub()
    place.wait_synced()
    gate = place.gate("north-1")
    assert _result(_validate(gate, single["code"])) == "valid"
    assert _result(_validate(place.gate("north-2"), single["code"])) == "used"
    place.wait_drained()
    assert _uses(place, single["id"]) == 1
    status = place.status()
    assert status["upstream"]["sent"] == 1
    assert status["upstream"]["conflicts"] == 0
    north = {g["name"]: g for g in status["gates"]}
    assert north["north-1"]["accepted"]["minute"] == 1
    assert north["north-2"]["rejected"]["minute"] == 1
    assert north["north-1"]["state"] == "online"


def test_a_pass_at_two_gates_at_once_is_admitted_exactly_once(place: Venue) -> None:
    template = place.new_template()
    passes = [place.new_pass(template, max_uses=1) for _ in range(15)]
    place.stop_hub()
    place.start_hub()
    place.wait_synced()
    results: dict[str, list[str]] = {p["code"]: [] for p in passes}
    barrier = threading.Barrier(2)

    def run(name: str) -> None:
        with httpx.Client(
            base_url=place.hub_url,
            headers={"Authorization": f"Bearer {place.gates[name]}"},
            timeout=10.0,
        ) as gate:
            barrier.wait()
            for p in passes:
                results[p["code"]].append(_result(_validate(gate, p["code"])))

    threads = [threading.Thread(target=run, args=(name,)) for name in place.gates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for code, answers in results.items():
        assert sorted(answers) == ["used", "valid"], code
    place.wait_drained()
    assert all(_uses(place, p["id"]) == 1 for p in passes)


def test_a_code_the_mirror_does_not_know_is_asked_upstream_at_once(place: Venue) -> None:
    place.wait_synced()
    template = place.new_template()
    fresh = place.new_pass(template, max_uses=2)  # made after the hub's sync
    gate = place.gate("north-1")
    assert _result(_validate(gate, fresh["code"])) == "valid"
    assert _uses(place, fresh["id"]) == 1  # PassQR decided it: counted there at once
    # Now mirrored: the second use is decided at the hub and forwarded once.
    assert _result(_validate(gate, fresh["code"])) == "valid"
    assert _result(_validate(gate, fresh["code"])) == "used"
    place.wait_drained()
    assert _uses(place, fresh["id"]) == 2
    assert place.status()["upstream"]["conflicts"] == 0


def test_a_code_nobody_knows_is_not_found_and_not_asked_twice(place: Venue) -> None:
    place.wait_synced()
    gate = place.gate("north-1")
    before = place.status()["upstream"]["budget"]["validate"]["used"]
    assert _result(_validate(gate, "PASS-ZZZZ9999")) == "not_found"
    assert _result(_validate(gate, "PASS-ZZZZ9999")) == "not_found"
    assert _result(_validate(gate, "not a pass at all")) == "not_found"
    assert place.status()["upstream"]["budget"]["validate"]["used"] == before + 1


def test_a_gate_key_cannot_write_and_a_staff_key_can(place: Venue) -> None:
    place.wait_synced()
    template = place.new_template()
    refused = place.gate("north-1").post("/passes", json={"template_id": template})
    assert refused.status_code == 403
    assert "staff key" in refused.json()["message"]
    assert refused.json()["error"] == "gate_key_read_only"  # what clients explain it by
    made = place.staff().post(
        "/passes", json={"template_id": template, "max_uses": 1}, headers={"Idempotency-Key": "k1"}
    )
    assert made.status_code == 201, made.text
    created = made.json()["data"]
    # Upstream has it, and the mirror too: a gate reads and validates it with no upstream ask.
    assert place.upstream_api().get(f"/passes/{created['id']}").status_code == 200
    assert (
        place.gate("north-1").get(f"/passes/{created['id']}").json()["data"]["code"]
        == (created["code"])
    )
    revoked = place.gate("north-1").delete(f"/passes/{created['id']}")
    assert revoked.status_code == 403
    assert place.staff().delete(f"/passes/{created['id']}").status_code == 200
    assert _result(_validate(place.gate("north-1"), created["code"])) == "revoked"


def test_a_retried_validation_is_one_admission(place: Venue) -> None:
    template = place.new_template()
    season = place.new_pass(template, max_uses=5)
    place.stop_hub()
    place.start_hub()
    place.wait_synced()
    gate = place.gate("north-1")
    first = _validate(gate, season["code"], key="scan-0001")
    again = _validate(gate, season["code"], key="scan-0001")
    assert _result(first) == _result(again) == "valid"
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert first.json() == again.json()
    place.wait_drained()
    assert _uses(place, season["id"]) == 1


def test_an_upstream_revocation_after_an_admission_is_a_conflict(place: Venue) -> None:
    template = place.new_template()
    revoked_later = place.new_pass(template, max_uses=3)
    place.stop_hub()
    place.start_hub()
    place.wait_synced()
    # The venue revokes it at PassQR; the hub's mirror learns at its next sync (300 s) ...
    place.upstream_api().delete(f"/passes/{revoked_later['id']}")
    gate = place.gate("north-1")
    assert _result(_validate(gate, revoked_later["code"])) == "valid"
    # ... or from PassQR's answer to the forwarded admission: a conflict, shown, and learnt.
    place.wait_drained()
    status = place.status()
    assert status["upstream"]["conflicts"] == 1
    conflict = status["conflicts"][0]
    assert conflict["code"] == revoked_later["code"]
    assert conflict["upstream_result"] == "revoked"
    assert conflict["gate"] == "north-1"
    assert _result(_validate(gate, revoked_later["code"])) == "revoked"


def test_known_passes_are_decided_while_upstream_is_down_and_forwarded_later(
    tmp_path: Path,
) -> None:
    with venue(tmp_path) as place:
        template = place.new_template()
        passes = [place.new_pass(template, max_uses=1) for _ in range(5)]
        place.stop_hub()
        place.start_hub()
        place.wait_synced()
        port = place.upstream.port
        place.upstream.stop()  # PassQR unreachable
        gate = place.gate("north-1")
        assert [_result(_validate(gate, p["code"])) for p in passes] == ["valid"] * 5
        wait_until(lambda: place.status()["upstream"]["state"] == "unreachable")
        assert place.status()["upstream"]["queue"] == 5
        # PassQR is back on the same address: the queue drains, each admission once.
        from scanner.server import ServerThread

        with ServerThread(place.upstream.db_path, port=port, rate_limit=False):
            place.wait_drained(within_s=60)
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}/api/v1",
                headers={"Authorization": f"Bearer {place.upstream_key}"},
            ) as up:
                uses = [up.get(f"/passes/{p['id']}").json()["data"]["uses_count"] for p in passes]
            assert uses == [1] * 5
            place.stop_hub()


def _hostile_requests() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (
            "POST",
            "/validate",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        ),
        (
            "POST",
            "/validate",
            {"content": b'{"code": 5}', "headers": {"Content-Type": "application/json"}},
        ),
        (
            "POST",
            "/validate",
            {
                "content": b'{"code": "x", "extra": 1}',
                "headers": {"Content-Type": "application/json"},
            },
        ),
        (
            "POST",
            "/validate",
            {"content": b'{"code": "x"}', "headers": {"Content-Type": "text/plain"}},
        ),
        (
            "POST",
            "/validate",
            {"json": {"code": "PASS-AAAA1111"}, "headers": {"Idempotency-Key": "has space"}},
        ),
        ("GET", "/passes?limit=1000", {}),
        ("GET", "/passes?page=-1", {}),
        ("GET", "/passes/not-a-uuid", {}),
        ("GET", "/nowhere", {}),
        ("PUT", "/validate", {"json": {}}),
        ("GET", "/validate?x=1", {}),
    ]


@pytest.mark.parametrize(("method", "path", "options"), _hostile_requests())
def test_bad_input_on_the_lan_gets_the_local_servers_answer(
    place: Venue, method: str, path: str, options: dict[str, Any]
) -> None:
    hub = place.gate("north-1").request(method, path, **options)
    server = place.upstream_api().request(method, path, **options)
    assert 400 <= hub.status_code < 500
    assert (hub.status_code, hub.json()) == (server.status_code, server.json())


def test_without_a_hub_key_the_lan_gets_401_json(place: Venue) -> None:
    answer = httpx.post(f"{place.hub_url}/validate", json={"code": "PASS-AAAA1111"})
    assert answer.status_code == 401
    assert answer.json()["error"]
    # The upstream's own key is not a hub key: the venue's full key never works at a gate.
    stolen = httpx.post(
        f"{place.hub_url}/validate",
        json={"code": "PASS-AAAA1111"},
        headers={"Authorization": f"Bearer {place.upstream_key}"},
    )
    assert stolen.status_code == 401
    status = httpx.get(place.hub_url.removesuffix("/api/v1") + "/hub/status")
    assert status.status_code == 401


def test_a_revoked_gate_key_is_refused_within_the_key_cache(place: Venue) -> None:
    from scanner.hub.tables import revoke_hub_keys

    gate = place.gate("north-2")
    assert gate.get("/passes").status_code == 200
    assert revoke_hub_keys(place.config.hub.db, "north-2") == 1
    wait_until(lambda: gate.get("/passes").status_code == 401, within_s=15)
    assert place.gate("north-1").get("/passes").status_code == 200


def test_staff_see_what_passqr_holds_now_and_the_gates_follow(place: Venue) -> None:
    """A pass made at PassQR after the sync: staff find it (and revoke it by what they
    find) at once, not after the next sync; a template made there gets its real name."""
    place.wait_synced()
    template = place.new_template()  # made at PassQR, after the hub's sync
    made_there = place.new_pass(template, max_uses=1, holder_name="Stolen")
    gate_view = place.gate("north-1").get("/passes").json()["data"]
    assert made_there["id"] not in [p["id"] for p in gate_view]  # the mirror's page
    staff_view = place.staff().get("/passes", params={"limit": "100"}).json()["data"]
    assert made_there["id"] in [p["id"] for p in staff_view]  # PassQR's page
    assert place.staff().delete(f"/passes/{made_there['id']}").status_code == 200
    answer = place.gate("north-1").post("/validate", json={"code": made_there["code"]})
    assert _result(answer) == "revoked"
    # The template came with the pass as a bare id, and was fetched from PassQR.
    shown = place.gate("north-1").get(f"/templates/{template}").json()["data"]
    assert shown["name"] == "Venue"
    # Staff's bad query gets the local server's answer, not a trip to PassQR.
    bad = place.staff().get("/passes", params={"limit": "1000"})
    assert bad.status_code == 400
    assert bad.json() == place.upstream_api().get("/passes", params={"limit": "1000"}).json()


def test_staff_read_the_mirror_when_passqr_is_down(place: Venue) -> None:
    template = place.new_template()
    kept = place.new_pass(template, max_uses=1)
    place.stop_hub()
    place.start_hub()
    place.wait_synced()
    place.upstream.stop()
    listed = place.staff().get("/passes")
    assert listed.status_code == 200
    assert kept["id"] in [p["id"] for p in listed.json()["data"]]
    assert place.staff().get(f"/passes/{kept['id']}").status_code == 200
