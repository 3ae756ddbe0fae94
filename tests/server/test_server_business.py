"""What PassQR's own code expects of the API (issue 14), over real loopback HTTP.

Keys belong to a business and see only its templates and passes; a pass can be
set `expired`; `POST /passes/{id}/push` answers as PassQR's studio reads it;
templates carry a default `max_uses`; plans have a pass quota (402).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.server import ServerThread, create_key, seed_demo
from tests.server.test_server_api import assert_error

STARTER_QUOTA = 3


@dataclass
class Businesses:
    """One server; a pro key for business `north`, one for `south`, a starter key for `north`."""

    base_url: str
    db_path: Path
    keys: dict[str, str]

    def client(self, who: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {self.keys[who]}"},
            timeout=10.0,
        )


@pytest.fixture(scope="module")
def businesses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Businesses]:
    db = tmp_path_factory.mktemp("business") / "server.sqlite3"
    keys = {
        "north": create_key(db, name="north", plan="pro", business="north"),
        "south": create_key(db, name="south", plan="pro", business="south"),
        "starter": create_key(db, name="small", plan="starter", business="small"),
        "default": create_key(db, name="plain", plan="pro"),
    }
    with ServerThread(
        db, rate_limit=False, pass_quotas={"starter": STARTER_QUOTA, "pro": None}
    ) as server:
        yield Businesses(base_url=server.base_url, db_path=db, keys=keys)


@pytest.fixture
def north(businesses: Businesses) -> Iterator[httpx.Client]:
    with businesses.client("north") as client:
        yield client


@pytest.fixture
def south(businesses: Businesses) -> Iterator[httpx.Client]:
    with businesses.client("south") as client:
        yield client


def template(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    answer = api.post("/templates", json={"name": "Gate", **fields})
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()["data"]
    return created


def new_pass(api: httpx.Client, **fields: Any) -> dict[str, Any]:
    if "template_id" not in fields:
        fields["template_id"] = template(api)["id"]
    answer = api.post("/passes", json=fields)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()["data"]
    return created


def validate(api: httpx.Client, code: str, **headers: str) -> dict[str, Any]:
    answer = api.post("/validate", json={"code": code}, headers=headers)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


# -- 1. PATCH status expired ------------------------------------------------------------------


def test_a_pass_can_be_set_expired_and_made_active_again(north: httpx.Client) -> None:
    future = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    created = new_pass(north, max_uses=2, expires_at=future)
    path = f"/passes/{created['id']}"
    answer = north.patch(path, json={"status": "expired"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["status"] == "expired"
    assert answer.json()["data"]["expires_at"] == future  # expired whatever its expires_at
    assert north.get(path).json()["data"]["status"] == "expired"
    refused = validate(north, created["code"])
    assert (refused["result"], refused["message"]) == ("expired", "Pass expired")
    assert refused["pass"]["uses_count"] == 0
    listed = north.get("/passes", params={"status": "expired", "limit": 100}).json()["data"]
    assert created["id"] in {p["id"] for p in listed}
    active = north.get("/passes", params={"status": "active", "limit": 100}).json()["data"]
    assert created["id"] not in {p["id"] for p in active}
    # `active` undoes it, as it does for `used`.
    assert north.patch(path, json={"status": "active"}).json()["data"]["status"] == "active"
    assert validate(north, created["code"])["result"] == "valid"
    # Revoked still wins over expired.
    north.patch(path, json={"status": "expired"})
    assert north.delete(path).json()["data"]["status"] == "revoked"
    assert validate(north, created["code"])["result"] == "revoked"


def test_an_expired_pass_with_no_uses_left_cannot_be_made_active(north: httpx.Client) -> None:
    created = new_pass(north, max_uses=1)
    assert validate(north, created["code"])["result"] == "valid"
    path = f"/passes/{created['id']}"
    assert north.patch(path, json={"status": "expired"}).json()["data"]["status"] == "expired"
    assert_error(north.patch(path, json={"status": "active"}), 409, "Conflict")


# -- 2. push ------------------------------------------------------------------------------------


def test_push_on_pro_answers_attempted_at_the_top(north: httpx.Client) -> None:
    created = new_pass(north)
    answer = north.post(f"/passes/{created['id']}/push")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["attempted"] == 0
    assert "no wallet devices" in body["message"]
    assert body["data"]["id"] == created["id"]
    # PassQR's studio sends Content-Type: application/json and no body; `{}` is fine too.
    sent = north.post(f"/passes/{created['id']}/push", headers={"Content-Type": "application/json"})
    assert sent.status_code == 200, sent.text
    assert north.post(f"/passes/{created['id']}/push", json={}).status_code == 200
    assert_error(north.post(f"/passes/{created['id']}/push", json={"x": 1}), 400, "Bad Request")


def test_push_on_starter_is_402_plan_not_supported(businesses: Businesses) -> None:
    with businesses.client("starter") as starter:
        created = new_pass(starter)
        answer = starter.post(f"/passes/{created['id']}/push")
    assert answer.status_code == 402, answer.text
    body = answer.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "plan_not_supported"
    assert "pro" in body["message"]


def test_push_on_another_business_pass_is_404(north: httpx.Client, south: httpx.Client) -> None:
    theirs = new_pass(south)
    assert_error(north.post(f"/passes/{theirs['id']}/push"), 404, "Not Found")
    assert_error(north.post(f"/passes/{uuid.uuid4()}/push"), 404, "Not Found")
    assert_error(north.get(f"/passes/{theirs['id']}/push"), 405, "Method Not Allowed")


# -- 3. businesses --------------------------------------------------------------------------


def test_a_key_sees_only_its_business(north: httpx.Client, south: httpx.Client) -> None:
    mine = template(north, name="North gate")
    theirs_template = template(south, name="South gate")
    theirs = new_pass(south, template_id=theirs_template["id"], max_uses=1)
    listed = north.get("/templates", params={"limit": 100}).json()
    assert mine["id"] in {t["id"] for t in listed["data"]}
    assert theirs_template["id"] not in {t["id"] for t in listed["data"]}
    passes = north.get("/passes", params={"limit": 100}).json()["data"]
    assert theirs["id"] not in {p["id"] for p in passes}
    for method, path, body in [
        ("GET", f"/passes/{theirs['id']}", None),
        ("PATCH", f"/passes/{theirs['id']}", {"holder_name": "Mallory"}),
        ("DELETE", f"/passes/{theirs['id']}", None),
        ("GET", f"/templates/{theirs_template['id']}", None),
        ("PATCH", f"/templates/{theirs_template['id']}", {"name": "Mine now"}),
        ("DELETE", f"/templates/{theirs_template['id']}", None),
    ]:
        assert_error(north.request(method, path, json=body), 404, "Not Found")
    # A pass in another business's template: the template is unknown to this key.
    assert_error(
        north.post("/passes", json={"template_id": theirs_template["id"]}), 400, "Bad Request"
    )
    filtered = north.get("/passes", params={"template_id": theirs_template["id"]}).json()
    assert filtered["data"] == [] and filtered["meta"]["total"] == 0
    # Their code is not found for us, and is not used by our asking.
    for code in (theirs["code"], theirs["code"].lower()):
        result = validate(north, code)
        assert (result["result"], result["pass"], result["template"]) == ("not_found", None, None)
    untouched = south.get(f"/passes/{theirs['id']}").json()["data"]
    assert (untouched["uses_count"], untouched["status"], untouched["holder_name"]) == (
        0,
        "active",
        None,
    )
    assert validate(south, theirs["code"])["result"] == "valid"
    assert validate(north, theirs["code"])["result"] == "not_found"  # not "used" either


def test_idempotency_records_never_cross_businesses(
    north: httpx.Client, south: httpx.Client
) -> None:
    mine, theirs = new_pass(north), new_pass(south)
    same = {"Idempotency-Key": "shared-key-1"}
    first = north.post("/validate", json={"code": mine["code"]}, headers=same)
    assert first.json()["data"]["result"] == "valid"
    # The same key and the same body from the other business: its own answer, not ours.
    other = south.post("/validate", json={"code": mine["code"]}, headers=same)
    assert other.status_code == 200, other.text
    assert "idempotent-replayed" not in other.headers
    assert other.json()["data"]["result"] == "not_found"
    again = south.post("/validate", json={"code": theirs["code"]}, headers={"Idempotency-Key": "k"})
    assert again.json()["data"]["result"] == "valid"
    replay = north.post(
        "/validate", json={"code": theirs["code"]}, headers={"Idempotency-Key": "k"}
    )
    assert replay.json()["data"]["result"] == "not_found"
    assert "idempotent-replayed" not in replay.headers


def test_the_default_business_and_seed_demo(businesses: Businesses) -> None:
    codes = seed_demo(businesses.db_path)
    with businesses.client("default") as plain, businesses.client("north") as north:
        assert validate(plain, codes["season"])["result"] == "valid"
        assert validate(north, codes["season"])["result"] == "not_found"


def test_create_key_refuses_a_bad_business(tmp_path: Path) -> None:
    for bad in ("", " ", "x" * 101, "a\nb"):
        with pytest.raises(ValueError, match="business"):
            create_key(tmp_path / "db.sqlite3", business=bad)


def test_an_old_database_is_migrated_into_the_default_business(tmp_path: Path) -> None:
    db = tmp_path / "v1.sqlite3"
    conn = sqlite3.connect(db)
    conn.executescript(V1_SCHEMA)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    key = create_key(db, name="new", plan="pro")  # migrates
    with (
        ServerThread(db, rate_limit=False) as server,
        httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}) as api,
    ):
        listed = api.get("/passes").json()["data"]
        assert [p["code"] for p in listed] == ["PASS-OLD00001"]
        assert api.get("/templates").json()["data"][0]["max_uses"] is None
        assert validate(api, "PASS-OLD00001")["result"] == "valid"
        other = create_key(db, plan="pro", business="elsewhere")
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {other}"}
        ) as stranger:
            assert stranger.get("/passes").json()["data"] == []
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] >= 2
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    finally:
        conn.close()


V1_SCHEMA = """
CREATE TABLE api_keys (id TEXT PRIMARY KEY, name TEXT NOT NULL,
    plan TEXT NOT NULL CHECK (plan IN ('free', 'starter', 'pro')), prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
CREATE TABLE templates (id TEXT PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL,
    description TEXT, color TEXT, logo_url TEXT, fields TEXT NOT NULL, settings TEXT NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE passes (id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE,
    template_id TEXT NOT NULL REFERENCES templates (id), holder_name TEXT, holder_email TEXT,
    data TEXT NOT NULL, status TEXT NOT NULL CHECK (status IN ('active', 'used', 'revoked')),
    uses_count INTEGER NOT NULL DEFAULT 0 CHECK (uses_count >= 0),
    max_uses INTEGER CHECK (max_uses IS NULL OR max_uses >= 1), expires_at TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX passes_template ON passes (template_id);
CREATE TABLE scans (id INTEGER PRIMARY KEY, pass_id TEXT, code TEXT NOT NULL,
    result TEXT NOT NULL, at TEXT NOT NULL, api_key_id TEXT);
CREATE INDEX scans_pass ON scans (pass_id);
CREATE TABLE idempotency (api_key_id TEXT NOT NULL, key TEXT NOT NULL,
    fingerprint TEXT NOT NULL, status INTEGER NOT NULL, body TEXT NOT NULL,
    created_at REAL NOT NULL, PRIMARY KEY (api_key_id, key));
CREATE INDEX idempotency_created ON idempotency (created_at);
INSERT INTO templates VALUES ('0f8e6c2a-3a52-4d1e-9f43-1c1b1f0c0a01', 'Old', 'event', NULL,
    '#1f6feb', NULL, '[]', '{}', '2024-01-01T00:00:00Z');
INSERT INTO passes VALUES ('0f8e6c2a-3a52-4d1e-9f43-1c1b1f0c0a02', 'PASS-OLD00001',
    '0f8e6c2a-3a52-4d1e-9f43-1c1b1f0c0a01', 'Old Holder', NULL, '{}', 'active', 0, NULL, NULL,
    '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z');
"""


# -- 4. a template's default max_uses ------------------------------------------------------


def test_a_template_max_uses_is_the_default_for_its_passes(north: httpx.Client) -> None:
    made = template(north, max_uses=3)
    assert made["max_uses"] == 3
    assert north.get(f"/templates/{made['id']}").json()["data"]["max_uses"] == 3
    assert template(north)["max_uses"] is None
    assert new_pass(north, template_id=made["id"])["max_uses"] == 3
    assert new_pass(north, template_id=made["id"], max_uses=1)["max_uses"] == 1
    assert new_pass(north, template_id=made["id"], max_uses=None)["max_uses"] is None
    patched = north.patch(f"/templates/{made['id']}", json={"max_uses": 5}).json()["data"]
    assert patched["max_uses"] == 5
    assert new_pass(north, template_id=made["id"])["max_uses"] == 5
    cleared = north.patch(f"/templates/{made['id']}", json={"max_uses": None}).json()["data"]
    assert cleared["max_uses"] is None
    assert new_pass(north, template_id=made["id"])["max_uses"] is None


@pytest.mark.parametrize("value", [0, -1, 1.5, "3", True, 10**12, {}])
def test_a_template_max_uses_must_be_a_positive_integer(north: httpx.Client, value: Any) -> None:
    assert_error(
        north.post("/templates", json={"name": "x", "max_uses": value}), 400, "Bad Request"
    )
    made = template(north)
    assert_error(
        north.patch(f"/templates/{made['id']}", json={"max_uses": value}), 400, "Bad Request"
    )


# -- 5. plan quotas ---------------------------------------------------------------------------


def test_a_plan_past_its_pass_quota_is_402(tmp_path: Path) -> None:
    db = tmp_path / "quota.sqlite3"
    starter = create_key(db, plan="starter", business="small")
    other = create_key(db, plan="starter", business="other")
    with ServerThread(db, rate_limit=False, pass_quotas={"starter": 2}) as server:
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {starter}"}
        ) as api:
            made = template(api)
            first = new_pass(api, template_id=made["id"])
            new_pass(api, template_id=made["id"])
            answer = api.post("/passes", json={"template_id": made["id"]})
            assert answer.status_code == 402, answer.text
            body = answer.json()
            assert set(body) == {"error", "message"}
            assert body["error"] == "plan_limit_reached"
            assert "2" in body["message"] and "starter" in body["message"]
            # Revoking does not give the quota back; reads and validation go on.
            api.delete(f"/passes/{first['id']}")
            assert api.post("/passes", json={"template_id": made["id"]}).status_code == 402
            assert api.get("/passes").json()["meta"]["total"] == 2
            assert validate(api, first["code"])["result"] == "revoked"
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {other}"}
        ) as api:
            new_pass(api)  # the quota is per business


def test_the_default_quotas_let_pro_create_freely(businesses: Businesses) -> None:
    with businesses.client("starter") as starter:
        made = template(starter)
        count = starter.get("/passes").json()["meta"]["total"]
        for _ in range(STARTER_QUOTA - count):
            new_pass(starter, template_id=made["id"])
        refused = starter.post("/passes", json={"template_id": made["id"]})
        assert refused.status_code == 402 and refused.json()["error"] == "plan_limit_reached"
    with businesses.client("north") as north:
        made = template(north)
        for _ in range(STARTER_QUOTA + 1):
            new_pass(north, template_id=made["id"])


# -- the property: two businesses' data never meet ----------------------------------------------

actions = st.lists(
    st.tuples(
        st.sampled_from(["north", "south"]),
        st.sampled_from(["create", "validate", "revoke", "get", "patch", "list"]),
        st.integers(0, 50),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=actions)
def test_two_businesses_never_meet(
    businesses: Businesses, steps: list[tuple[str, str, int]]
) -> None:
    """Whatever either key does, each sees and changes only its own passes.

    A model keeps each business's passes (id -> code, uses, revoked); every answer
    is checked against the model of the business that asked, and the other
    business's passes are checked unchanged at the end.
    """
    clients = {who: businesses.client(who) for who in ("north", "south")}
    try:
        templates = {who: template(api)["id"] for who, api in clients.items()}
        owned: dict[str, dict[str, dict[str, Any]]] = {"north": {}, "south": {}}
        for who, action, pick in steps:
            api = clients[who]
            other = "south" if who == "north" else "north"
            every = [*owned[who].items(), *owned[other].items()]
            target = every[pick % len(every)] if every else None
            if action == "create" or target is None:
                made = new_pass(api, template_id=templates[who])
                owned[who][made["id"]] = {"code": made["code"], "uses": 0, "revoked": False}
                continue
            pass_id, model = target
            mine = pass_id in owned[who]
            if action == "validate":
                result = validate(api, model["code"], **{"Idempotency-Key": str(uuid.uuid4())})
                if not mine:
                    assert (result["result"], result["pass"]) == ("not_found", None)
                elif model["revoked"]:
                    assert result["result"] == "revoked"
                else:
                    assert result["result"] == "valid"
                    model["uses"] += 1
                    assert result["pass"]["uses_count"] == model["uses"]
            elif action == "revoke":
                answer = api.delete(f"/passes/{pass_id}")
                assert answer.status_code == (200 if mine else 404), answer.text
                if mine:
                    model["revoked"] = True
            elif action == "get":
                answer = api.get(f"/passes/{pass_id}")
                assert answer.status_code == (200 if mine else 404), answer.text
                if mine:
                    assert answer.json()["data"]["uses_count"] == model["uses"]
            elif action == "patch":
                answer = api.patch(f"/passes/{pass_id}", json={"holder_name": who})
                assert answer.status_code == (200 if mine else 404), answer.text
            else:
                listed = api.get(
                    "/passes", params={"template_id": templates[who], "limit": 100}
                ).json()["data"]
                assert {p["id"] for p in listed} == set(owned[who])
        for who, api in clients.items():
            for pass_id, model in owned[who].items():
                stored = api.get(f"/passes/{pass_id}").json()["data"]
                assert stored["uses_count"] == model["uses"]
                assert (stored["status"] == "revoked") is model["revoked"]
                assert stored["holder_name"] in (None, who)
    finally:
        for api in clients.values():
            api.close()
