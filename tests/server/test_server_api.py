"""Contract tests of the local PassQR server over real loopback HTTP."""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from scanner.server import store as store_module

CODE_RE = re.compile(r"PASS-[A-Z0-9]{8}")
TIMESTAMP_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
UNKNOWN_ID = "123e4567-e89b-42d3-a456-426614174000"

MakePass = Callable[..., dict[str, Any]]
MakeTemplate = Callable[..., dict[str, Any]]


def assert_error(answer: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == error
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


def validate(api: httpx.Client, code: str, **headers: str) -> dict[str, Any]:
    answer = api.post("/validate", json={"code": code}, headers=headers)
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()["data"]
    return data


# -- discovery and authentication ---------------------------------------------------------


def test_openapi_document_needs_no_key(shared_server: Any) -> None:
    answer = httpx.get(f"{shared_server.base_url}/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    doc = answer.json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/openapi.json",
        "/passes",
        "/passes/{pass_id}",
        "/passes/{pass_id}/push",
        "/templates",
        "/templates/{template_id}",
        "/validate",
    }
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "Bearer",
        "Bearer  x",
        "Basic dXNlcjpwYXNz",
        "Bearer pqr_live_short",
        "Bearer pqr_test_" + "a" * 40,
        "pqr_live_" + "a" * 40,
        "Bearer pqr_live_" + "a" * 40,
        "Bearer pqr_live_" + "a" * 39 + "!",
    ],
)
def test_missing_malformed_or_unknown_key_is_401(
    shared_server: Any, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    answer = httpx.get(f"{shared_server.base_url}/passes", headers=headers)
    assert_error(answer, 401, "Unauthorized")
    assert answer.headers["www-authenticate"].startswith("Bearer")


def test_bearer_scheme_is_case_insensitive(shared_server: Any) -> None:
    answer = httpx.get(
        f"{shared_server.base_url}/passes",
        headers={"Authorization": f"bearer {shared_server.api_key}"},
    )
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/passes"),
        ("POST", "/passes"),
        ("GET", f"/passes/{UNKNOWN_ID}"),
        ("PATCH", f"/passes/{UNKNOWN_ID}"),
        ("DELETE", f"/passes/{UNKNOWN_ID}"),
        ("GET", "/templates"),
        ("POST", "/templates"),
        ("GET", f"/templates/{UNKNOWN_ID}"),
        ("PATCH", f"/templates/{UNKNOWN_ID}"),
        ("DELETE", f"/templates/{UNKNOWN_ID}"),
        ("POST", "/validate"),
    ],
)
def test_free_plan_is_403_everywhere(shared_server: Any, method: str, path: str) -> None:
    with shared_server.client(shared_server.free_key) as client:
        answer = client.request(method, path, json={"code": "PASS-AAAAAAAA"})
    body = assert_error(answer, 403, "Forbidden")
    assert "plan" in body["message"]


def test_starter_plan_has_api_access(local_server: Any) -> None:
    key = store_module.create_key(local_server.db_path, name="starter", plan="starter")
    answer = httpx.get(
        f"{local_server.base_url}/templates", headers={"Authorization": f"Bearer {key}"}
    )
    assert answer.status_code == 200


# -- templates ----------------------------------------------------------------------------


def test_template_create_get_list_patch(api: httpx.Client) -> None:
    answer = api.post("/templates", json={"name": "VIP"})
    assert answer.status_code == 201
    template = answer.json()["data"]
    assert set(template) == {
        "id",
        "name",
        "type",
        "description",
        "color",
        "logo_url",
        "fields",
        "settings",
        "max_uses",
        "created_at",
    }
    assert uuid.UUID(template["id"]).version == 4
    assert template["type"] == "generic"
    assert template["fields"] == []
    assert template["settings"] == {}
    assert TIMESTAMP_RE.fullmatch(template["created_at"])

    assert api.get(f"/templates/{template['id']}").json() == {"data": template}

    listing = api.get("/templates", params={"limit": 100}).json()
    assert listing["meta"]["limit"] == 100
    assert listing["meta"]["page"] == 1
    assert template in listing["data"]

    patched = api.patch(
        f"/templates/{template['id']}",
        json={
            "color": "#ff0000",
            "logo_url": "https://example.com/logo.png",
            "fields": [{"key": "seat"}],
            "settings": {"a": 1},
            "description": None,
        },
    )
    assert patched.status_code == 200
    assert patched.json()["data"] == {
        **template,
        "color": "#ff0000",
        "logo_url": "https://example.com/logo.png",
        "fields": [{"key": "seat"}],
        "settings": {"a": 1},
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": None},
        {"name": 5},
        {"name": "x", "colour": "#fff"},
        {"name": "x", "color": "red"},
        {"name": "x", "logo_url": "ftp://example.com/x"},
        {"name": "x", "logo_url": "not a url"},
        {"name": "x", "fields": {"a": 1}},
        {"name": "x", "fields": [1, 2]},
        {"name": "x", "settings": []},
        {"name": "x", "type": None},
    ],
)
def test_template_create_rejects_bad_bodies(api: httpx.Client, body: dict[str, Any]) -> None:
    assert_error(api.post("/templates", json=body), 400, "Bad Request")


def test_template_patch_rejects_bad_bodies(api: httpx.Client, make_template: MakeTemplate) -> None:
    template = make_template()
    bodies: list[Any] = [{"name": None}, {"id": UNKNOWN_ID}, {"created_at": "x"}, [], {"color": 1}]
    for body in bodies:
        assert_error(api.patch(f"/templates/{template['id']}", json=body), 400, "Bad Request")
    assert_error(api.patch(f"/templates/{UNKNOWN_ID}", json={"name": "x"}), 404, "Not Found")


def test_template_delete_unused_then_gone(api: httpx.Client, make_template: MakeTemplate) -> None:
    template = make_template()
    answer = api.delete(f"/templates/{template['id']}")
    assert answer.status_code == 200
    assert answer.json() == {"data": template, "message": "Template deleted"}
    assert_error(api.get(f"/templates/{template['id']}"), 404, "Not Found")
    assert_error(api.delete(f"/templates/{template['id']}"), 404, "Not Found")


def test_template_in_use_cannot_be_deleted(api: httpx.Client, make_pass: MakePass) -> None:
    created = make_pass()
    api.delete(f"/passes/{created['id']}")  # even a revoked pass still refers to it
    assert_error(api.delete(f"/templates/{created['template_id']}"), 409, "Conflict")
    assert api.get(f"/templates/{created['template_id']}").status_code == 200


# -- passes -------------------------------------------------------------------------------


def test_pass_create_shape_and_defaults(api: httpx.Client, make_template: MakeTemplate) -> None:
    template = make_template()
    answer = api.post("/passes", json={"template_id": template["id"]})
    assert answer.status_code == 201
    created = answer.json()["data"]
    assert set(created) == {
        "id",
        "code",
        "holder_name",
        "holder_email",
        "data",
        "status",
        "uses_count",
        "max_uses",
        "expires_at",
        "created_at",
        "updated_at",
        "template_id",
    }
    assert uuid.UUID(created["id"]).version == 4
    assert CODE_RE.fullmatch(created["code"])
    assert created["holder_name"] is None
    assert created["holder_email"] is None
    assert created["data"] == {}
    assert created["status"] == "active"
    assert created["uses_count"] == 0
    assert created["max_uses"] is None
    assert created["expires_at"] is None
    assert TIMESTAMP_RE.fullmatch(created["created_at"])
    assert created["updated_at"] == created["created_at"]
    assert created["template_id"] == template["id"]
    assert api.get(f"/passes/{created['id']}").json() == {"data": created}


def test_pass_create_full(api: httpx.Client, make_template: MakeTemplate) -> None:
    template = make_template()
    body = {
        "template_id": template["id"].upper(),
        "holder_name": "Jane Smith",
        "holder_email": "jane@example.com",
        "max_uses": 3,
        "expires_at": "2031-06-30T23:59:59.750+02:00",
        "data": {"seat": "A1", "nested": {"list": [1, 2.5, None, True]}},
    }
    created = api.post("/passes", json=body).json()["data"]
    assert created["template_id"] == template["id"]
    assert created["expires_at"] == "2031-06-30T21:59:59Z"
    assert created["max_uses"] == 3
    assert created["data"] == body["data"]
    assert created["holder_email"] == "jane@example.com"


def test_pass_codes_are_unique(api: httpx.Client, make_template: MakeTemplate) -> None:
    template_id = make_template()["id"]
    codes = {
        api.post("/passes", json={"template_id": template_id}).json()["data"]["code"]
        for _ in range(30)
    }
    assert len(codes) == 30


@pytest.mark.parametrize(
    "fields",
    [
        {"max_uses": True},
        {"max_uses": False},
        {"max_uses": 0},
        {"max_uses": -1},
        {"max_uses": 1.5},
        {"max_uses": "3"},
        {"max_uses": 10**12},
        {"expires_at": "2030-01-01T00:00:00"},
        {"expires_at": "tomorrow"},
        {"expires_at": 1893456000},
        {"expires_at": "0001-01-01T00:00:00+01:00"},
        {"holder_name": ""},
        {"holder_name": 42},
        {"holder_name": "x" * 201},
        {"holder_email": "not-an-email"},
        {"holder_email": "a@b c"},
        {"data": []},
        {"data": "x"},
        {"data": None},
        {"status": "used"},
        {"code": "PASS-AAAAAAAA"},
        {"uses_count": 3},
        {"surprise": 1},
    ],
)
def test_pass_create_rejects_bad_fields(
    api: httpx.Client, make_template: MakeTemplate, fields: dict[str, Any]
) -> None:
    body = {"template_id": make_template()["id"], **fields}
    assert_error(api.post("/passes", json=body), 400, "Bad Request")


@pytest.mark.parametrize(
    "template_id", [None, 5, "", "not-a-uuid", UNKNOWN_ID[:-1], "{" + UNKNOWN_ID + "}"]
)
def test_pass_create_rejects_bad_template_ids(api: httpx.Client, template_id: Any) -> None:
    assert_error(api.post("/passes", json={"template_id": template_id}), 400, "Bad Request")


def test_pass_create_needs_template(api: httpx.Client) -> None:
    assert_error(api.post("/passes", json={}), 400, "Bad Request")
    body = assert_error(api.post("/passes", json={"template_id": UNKNOWN_ID}), 400, "Bad Request")
    assert UNKNOWN_ID in body["message"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"   ",
        b"{",
        b"[]",
        b'"text"',
        b"42",
        b"null",
        b"true",
        b'{"template_id": NaN}',
        b'{"template_id": 1e999}',
        b'{"a": 1, "a": 2}',
        b'{"holder_name": "\\ud800"}',
        b"\xff\xfe{}",
        b"\xef\xbb\xbf{}",
        b"[" * 60_000,
    ],
)
def test_malformed_bodies_are_400(api: httpx.Client, content: bytes) -> None:
    for path in ("/passes", "/templates", "/validate"):
        answer = api.post(path, content=content, headers={"Content-Type": "application/json"})
        assert_error(answer, 400, "Bad Request")


def test_oversized_body_is_413(api: httpx.Client, make_pass: MakePass) -> None:
    big = {"template_id": UNKNOWN_ID, "data": {"blob": "x" * 70_000}}
    assert_error(api.post("/passes", json=big), 413, "Payload Too Large")
    created = make_pass()
    answer = api.patch(f"/passes/{created['id']}", json={"data": {"blob": "x" * 70_000}})
    assert_error(answer, 413, "Payload Too Large")


def test_pass_get_bad_and_unknown_ids(api: httpx.Client) -> None:
    for bad in ("abc", "1", UNKNOWN_ID + "0", "PASS-AAAAAAAA", "%20"):
        assert_error(api.get(f"/passes/{bad}"), 400, "Bad Request")
        assert_error(api.delete(f"/passes/{bad}"), 400, "Bad Request")
        assert_error(api.patch(f"/passes/{bad}", json={}), 400, "Bad Request")
        assert_error(api.get(f"/templates/{bad}"), 400, "Bad Request")
    assert_error(api.get(f"/passes/{UNKNOWN_ID}"), 404, "Not Found")
    assert_error(api.delete(f"/passes/{UNKNOWN_ID}"), 404, "Not Found")
    assert_error(api.patch(f"/passes/{UNKNOWN_ID}", json={}), 404, "Not Found")
    assert_error(api.get(f"/templates/{UNKNOWN_ID}"), 404, "Not Found")


def test_pass_list_paging_and_filters(
    api: httpx.Client, make_template: MakeTemplate, make_pass: MakePass
) -> None:
    template_id = make_template()["id"]
    made = [make_pass(template_id=template_id, max_uses=1) for _ in range(5)]
    expired = make_pass(template_id=template_id, expires_at="2020-01-01T00:00:00Z")
    revoked = make_pass(template_id=template_id)
    api.delete(f"/passes/{revoked['id']}")
    validate(api, made[0]["code"])  # -> used

    first = api.get("/passes", params={"template_id": template_id, "limit": 3}).json()
    assert first["meta"] == {"page": 1, "limit": 3, "total": 7}
    second = api.get("/passes", params={"template_id": template_id, "limit": 3, "page": 3}).json()
    assert second["meta"] == {"page": 3, "limit": 3, "total": 7}
    assert len(first["data"]) == 3
    assert len(second["data"]) == 1
    # Newest first.
    assert first["data"][0]["id"] == revoked["id"]
    assert second["data"][0]["id"] == made[0]["id"]
    beyond = api.get("/passes", params={"template_id": template_id, "page": 99}).json()
    assert beyond["data"] == []
    assert beyond["meta"]["total"] == 7

    def ids(status: str) -> set[str]:
        listing = api.get("/passes", params={"template_id": template_id, "status": status})
        assert listing.status_code == 200
        return {p["id"] for p in listing.json()["data"]}

    assert ids("active") == {p["id"] for p in made[1:]}
    assert ids("used") == {made[0]["id"]}
    assert ids("expired") == {expired["id"]}
    assert ids("revoked") == {revoked["id"]}
    default = api.get("/passes", params={"template_id": template_id}).json()["meta"]
    assert default["limit"] == 20
    none = api.get("/passes", params={"template_id": UNKNOWN_ID}).json()
    assert none == {"data": [], "meta": {"page": 1, "limit": 20, "total": 0}}


@pytest.mark.parametrize(
    "query",
    [
        "page=0",
        "page=-1",
        "page=1.5",
        "page=",
        "page=1000001",
        "limit=0",
        "limit=101",
        "limit=abc",
        "limit=+5",
        "limit= 5",
        "status=bogus",
        "status=ACTIVE",
        "template_id=nope",
        "unknown=1",
        "page=1&page=2",
        "%ff=1",
    ],
)
def test_pass_list_rejects_bad_query(api: httpx.Client, query: str) -> None:
    assert_error(api.get(f"/passes?{query}"), 400, "Bad Request")


def test_query_params_on_other_endpoints_are_400(api: httpx.Client) -> None:
    assert_error(api.get("/templates?status=active"), 400, "Bad Request")
    assert_error(api.get(f"/passes/{UNKNOWN_ID}?x=1"), 400, "Bad Request")
    assert_error(api.post("/validate?code=1", json={"code": "x"}), 400, "Bad Request")
    assert_error(httpx.get(f"{api.base_url}openapi.json?x=1"), 400, "Bad Request")


def test_pass_patch(api: httpx.Client, make_pass: MakePass) -> None:
    created = make_pass(max_uses=2)
    answer = api.patch(
        f"/passes/{created['id']}",
        json={"holder_name": "Ann Other", "holder_email": None, "data": {"vip": True}},
    )
    assert answer.status_code == 200
    patched = answer.json()["data"]
    assert patched["holder_name"] == "Ann Other"
    assert patched["holder_email"] is None
    assert patched["data"] == {"vip": True}
    assert patched["code"] == created["code"]
    assert patched["max_uses"] == 2
    assert api.get(f"/passes/{created['id']}").json()["data"] == patched
    # An empty patch changes nothing but is fine.
    assert api.patch(f"/passes/{created['id']}", json={}).json()["data"]["data"] == {"vip": True}


@pytest.mark.parametrize(
    "body",
    [
        {"status": "bogus"},
        {"status": None},
        {"status": 1},
        {"max_uses": 5},
        {"expires_at": None},
        {"template_id": UNKNOWN_ID},
        {"code": "PASS-AAAAAAAA"},
        {"data": None},
        {"holder_name": 1},
        {"holder_email": "nope"},
    ],
)
def test_pass_patch_rejects_bad_bodies(
    api: httpx.Client, make_pass: MakePass, body: dict[str, Any]
) -> None:
    created = make_pass()
    assert_error(api.patch(f"/passes/{created['id']}", json=body), 400, "Bad Request")


def test_pass_status_transitions(api: httpx.Client, make_pass: MakePass) -> None:
    created = make_pass(max_uses=1)
    path = f"/passes/{created['id']}"
    assert api.patch(path, json={"status": "revoked"}).json()["data"]["status"] == "revoked"
    assert validate(api, created["code"])["result"] == "revoked"
    assert api.patch(path, json={"status": "active"}).json()["data"]["status"] == "active"
    assert api.patch(path, json={"status": "used"}).json()["data"]["status"] == "used"
    assert validate(api, created["code"])["result"] == "used"
    assert api.patch(path, json={"status": "active"}).json()["data"]["status"] == "active"
    assert validate(api, created["code"])["result"] == "valid"
    # Uses exhausted: it cannot be made active again.
    assert_error(api.patch(path, json={"status": "active"}), 409, "Conflict")


def test_delete_revokes(api: httpx.Client, make_pass: MakePass) -> None:
    created = make_pass()
    answer = api.delete(f"/passes/{created['id']}")
    assert answer.status_code == 200
    body = answer.json()
    assert set(body) == {"data", "message"}
    assert body["message"] == "Pass revoked"
    assert body["data"]["status"] == "revoked"
    assert body["data"]["id"] == created["id"]
    # Soft delete: still there, and no longer validates.
    assert api.get(f"/passes/{created['id']}").json()["data"]["status"] == "revoked"
    result = validate(api, created["code"])
    assert (result["result"], result["message"]) == ("revoked", "Pass revoked")
    again = api.delete(f"/passes/{created['id']}")
    assert again.status_code == 200
    assert again.json()["message"] == "Pass was already revoked"


# -- validation ---------------------------------------------------------------------------


def test_validate_seeded_states(api: httpx.Client, seeded: dict[str, str]) -> None:
    expected = {
        "valid": ("valid", "Access granted"),
        "season": ("valid", "Access granted"),
        "used": ("used", "Pass already used"),
        "expired": ("expired", "Pass expired"),
        "revoked": ("revoked", "Pass revoked"),
    }
    for label, code in seeded.items():
        data = validate(api, code)
        assert (data["result"], data["message"]) == expected[label], label
        assert data["pass"]["code"] == code
        assert data["template"]["name"] == "Demo Festival"
        assert set(data["template"]) == {"id", "name", "type", "color"}
        assert data["template"]["type"] == "event"


def test_validate_counts_uses_and_marks_used(api: httpx.Client, make_pass: MakePass) -> None:
    created = make_pass(max_uses=2)
    first = validate(api, created["code"])
    assert first["result"] == "valid"
    assert (first["pass"]["uses_count"], first["pass"]["status"]) == (1, "active")
    second = validate(api, created["code"])
    assert second["result"] == "valid"
    assert (second["pass"]["uses_count"], second["pass"]["status"]) == (2, "used")
    third = validate(api, created["code"])
    assert (third["result"], third["message"]) == ("used", "Pass already used")
    assert third["pass"]["uses_count"] == 2
    stored = api.get(f"/passes/{created['id']}").json()["data"]
    assert (stored["uses_count"], stored["status"]) == (2, "used")
    assert stored["updated_at"] >= created["updated_at"]


def test_validate_unlimited_pass(api: httpx.Client, make_pass: MakePass) -> None:
    created = make_pass(max_uses=None)
    for count in range(1, 6):
        data = validate(api, created["code"])
        assert data["result"] == "valid"
        assert data["pass"]["uses_count"] == count
        assert data["pass"]["status"] == "active"


def test_validate_is_case_insensitive_and_trimmed(api: httpx.Client, make_pass: MakePass) -> None:
    created = make_pass()
    for spelling in (created["code"].lower(), f"  {created['code']}\n", created["code"].title()):
        assert validate(api, spelling)["pass"]["id"] == created["id"]


@pytest.mark.parametrize(
    "code",
    [
        "PASS-ZZZZZZZZ",
        "nothing",
        "https://www.passqr.com/p/PASS-AAAAAAAA",
        "PASS-ıAAAAAAA",
        "x" * 256,
    ],
)
def test_validate_not_found(api: httpx.Client, code: str) -> None:
    data = validate(api, code)
    assert data == {
        "result": "not_found",
        "message": "Pass not found",
        "pass": None,
        "template": None,
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"code": None},
        {"code": 12345678},
        {"code": ""},
        {"code": "   "},
        {"code": "x" * 257},
        {"code": "PASS-AAAAAAAA", "gate": 1},
        {"code": ["PASS-AAAAAAAA"]},
    ],
)
def test_validate_rejects_bad_bodies(api: httpx.Client, body: dict[str, Any]) -> None:
    assert_error(api.post("/validate", json=body), 400, "Bad Request")


def test_validate_order_of_checks(api: httpx.Client, make_pass: MakePass) -> None:
    past = "2020-01-01T00:00:00Z"
    revoked_and_expired = make_pass(expires_at=past)
    api.delete(f"/passes/{revoked_and_expired['id']}")
    assert validate(api, revoked_and_expired["code"])["result"] == "revoked"

    used_and_expired = make_pass(max_uses=1, expires_at=past)
    api.patch(f"/passes/{used_and_expired['id']}", json={"status": "used"})
    assert validate(api, used_and_expired["code"])["result"] == "expired"

    used = make_pass(max_uses=1)
    api.patch(f"/passes/{used['id']}", json={"status": "used"})
    assert validate(api, used["code"])["result"] == "used"

    expired = make_pass(max_uses=1, expires_at=past)
    data = validate(api, expired["code"])
    assert (data["result"], data["message"]) == ("expired", "Pass expired")
    assert data["pass"]["status"] == "expired"
    assert data["pass"]["uses_count"] == 0
    assert api.get(f"/passes/{expired['id']}").json()["data"]["status"] == "expired"

    future = make_pass(max_uses=1, expires_at="2099-12-31T23:59:59Z")
    assert validate(api, future["code"])["result"] == "valid"


def test_every_validation_is_recorded_as_a_scan(
    api: httpx.Client, shared_server: Any, make_pass: MakePass
) -> None:
    created = make_pass(max_uses=1)
    validate(api, created["code"])
    validate(api, created["code"].lower())
    validate(api, "PASS-NOPE0000")
    with sqlite3.connect(shared_server.db_path) as conn:
        rows = conn.execute(
            "SELECT result, code, api_key_id IS NOT NULL FROM scans WHERE pass_id = ? ORDER BY id",
            (created["id"],),
        ).fetchall()
        missing = conn.execute("SELECT pass_id FROM scans WHERE code = 'PASS-NOPE0000'").fetchall()
    conn.close()
    assert rows == [
        ("valid", created["code"], 1),
        ("used", created["code"].lower(), 1),
    ]
    assert missing == [(None,)]


# -- envelopes for routing errors -----------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/passes/", "/passes/a/b", "/validate/", "/", "/api/v2/passes"]
)
def test_unknown_routes_are_json_404(shared_server: Any, path: str) -> None:
    base = shared_server.base_url
    url = f"{base}{path}" if not path.startswith("/api/") else base.replace("/api/v1", "") + path
    for method in ("GET", "POST", "DELETE"):
        assert_error(httpx.request(method, url), 404, "Not Found")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/passes", "GET, POST"),
        ("DELETE", "/passes", "GET, POST"),
        ("HEAD", "/passes", "GET, POST"),
        ("OPTIONS", "/passes", "GET, POST"),
        ("POST", f"/passes/{UNKNOWN_ID}", "DELETE, GET, PATCH"),
        ("PUT", f"/templates/{UNKNOWN_ID}", "DELETE, GET, PATCH"),
        ("GET", "/validate", "POST"),
        ("POST", "/openapi.json", "GET"),
    ],
)
def test_wrong_method_is_json_405_with_allow(
    api: httpx.Client, method: str, path: str, allow: str
) -> None:
    answer = api.request(method, path)
    assert answer.status_code == 405
    assert answer.headers["allow"] == allow
    if method != "HEAD":
        assert_error(answer, 405, "Method Not Allowed")


def test_unexpected_error_is_generic_500(
    local_server: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(self: object, pass_id: str) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(store_module.Store, "get_pass", explode)
    with httpx.Client(
        base_url=local_server.base_url,
        headers={"Authorization": f"Bearer {local_server.api_key}"},
    ) as client:
        answer = client.get(f"/passes/{UNKNOWN_ID}")
        body = assert_error(answer, 500, "Internal Server Error")
        assert "secret" not in answer.text
        assert "Traceback" not in answer.text
        assert "secret" not in body["message"]
        # The server carries on.
        assert client.get("/passes").status_code == 200
    assert any("Unexpected error" in record.getMessage() for record in caplog.records)
    assert local_server.api_key not in caplog.text


def test_nesting_is_bounded(api: httpx.Client, make_template: MakeTemplate) -> None:
    template_id = make_template()["id"]

    def nested(depth: int) -> str:
        # The body is level 1, the object in `data` level 2, and so on.
        inner = '{"a":' * (depth - 1) + "1" + "}" * (depth - 1)
        return f'{{"template_id":"{template_id}","data":{inner}}}'

    json_type = {"Content-Type": "application/json"}
    created = api.post("/passes", content=nested(32), headers=json_type)
    assert created.status_code == 201, created.text
    assert api.get(f"/passes/{created.json()['data']['id']}").status_code == 200
    for depth in (33, 970, 5000):
        answer = api.post("/passes", content=nested(depth), headers=json_type)
        assert_error(answer, 400, "Bad Request")
