"""Fuzzing the server against its own OpenAPI document.

Random methods, paths, query strings, headers and bodies go to a live server;
whatever comes back must be documented: never a 500, always JSON, a status the
document lists for that route and method (404 off the map, 405 with the
right `Allow` for an undocumented method), and a body that validates against
the schema declared for that status. Well-formed requests built from the
document's own constraints must succeed. This is what keeps the document honest.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scanner.server import ServerThread, create_key

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SMALL = settings(SETTINGS, max_examples=30)
METHODS = ["get", "post", "patch", "delete", "put", "options", "head"]
UNKNOWN_ID = "123e4567-e89b-42d3-a456-426614174000"


@dataclass
class Fuzzed:
    base_url: str
    origin: str
    template_id: str
    pass_id: str
    codes: list[str]
    doc: dict[str, Any] = field(repr=False)
    keys: dict[str, str] = field(repr=False)
    client: httpx.Client = field(repr=False)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    db: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.sqlite3"
    keys = {
        "pro": create_key(db, plan="pro"),
        "free": create_key(db, plan="free"),
        # A small quota, so that 402 plan_limit_reached (and plan_not_supported) are met.
        "starter": create_key(db, plan="starter", business="small"),
        "other": create_key(db, plan="pro", business="other"),
    }
    with (
        ServerThread(db, rate_limit=False, pass_quotas={"starter": 3}) as server,
        httpx.Client(timeout=10.0) as client,
    ):
        auth = {"Authorization": f"Bearer {keys['pro']}"}
        doc = client.get(f"{server.base_url}/openapi.json").json()
        template = client.post(
            f"{server.base_url}/templates", json={"name": "Fuzz"}, headers=auth
        ).json()["data"]
        created = client.post(
            f"{server.base_url}/passes",
            json={"template_id": template["id"], "max_uses": 1000},
            headers=auth,
        ).json()["data"]
        yield Fuzzed(
            base_url=server.base_url,
            origin=server.base_url.removesuffix("/api/v1"),
            doc=doc,
            keys=keys,
            template_id=template["id"],
            pass_id=created["id"],
            codes=[created["code"], created["code"].lower(), "PASS-00000000"],
            client=client,
        )


# -- checking an answer against the document ----------------------------------------------------


def _route_regex(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    pattern = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(f"/api/v1{pattern}")


def _resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node and node["$ref"].startswith("#/components/responses/"):
        node = doc["components"]["responses"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _check_schema(doc: dict[str, Any], schema: dict[str, Any], instance: Any) -> None:
    # Refs like #/components/schemas/Pass resolve against this root, which carries them.
    root = {**schema, "components": doc["components"]}
    jsonschema.Draft202012Validator(root).validate(instance)


def check_answer(fuzz: Fuzzed, method: str, path: str, answer: httpx.Response) -> None:
    """Assert that `answer` to `method path` (path as the server decoded it) is documented."""
    doc = fuzz.doc
    status = answer.status_code
    assert status < 500, answer.text
    if method != "head":
        assert answer.headers["content-type"] == "application/json", answer.text
    body = None if method == "head" else answer.json()
    error_schema = {"$ref": "#/components/schemas/Error"}
    for template, item in doc["paths"].items():  # noqa: B007 - item is used after the loop
        if _route_regex(template).fullmatch(path):
            break
    else:
        assert status == 404, (method, path, status, answer.text)
        if body is not None:
            _check_schema(doc, error_schema, body)
        return
    documented = sorted(m.upper() for m in item if m in METHODS)
    if method not in item:
        assert status == 405, (method, path, status, answer.text)
        assert answer.headers["allow"] == ", ".join(documented)
        if body is not None:
            _check_schema(doc, error_schema, body)
        return
    responses = item[method]["responses"]
    assert str(status) in responses, (method, path, status, answer.text)
    response = _resolve(doc, responses[str(status)])
    if body is not None:
        _check_schema(doc, response["content"]["application/json"]["schema"], body)
    for header in response.get("headers", {}):
        if header == "Idempotent-Replayed":
            continue
        if header == "Idempotency-Key":
            # Echoed exactly when the request carried one.
            assert answer.headers.get(header) == answer.request.headers.get(header), status
            continue
        assert header.lower() in answer.headers, (header, status)
        schema = response["headers"][header].get("schema", {})
        if schema.get("type") == "integer":
            assert answer.headers[header].isdigit()


# -- strategies ------------------------------------------------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELD_NAMES = [
    "template_id",
    "holder_name",
    "holder_email",
    "max_uses",
    "expires_at",
    "data",
    "status",
    "code",
    "name",
    "type",
    "description",
    "color",
    "logo_url",
    "fields",
    "settings",
    "attempted",
]
interesting: st.SearchStrategy[Any] = st.sampled_from(
    [
        "",
        " ",
        "PASS-AAAAAAAA",
        "pass-aaaaaaaa",
        "active",
        "expired",
        "revoked",
        "used",
        "#1f6feb",
        "https://example.com/x.png",
        "2030-01-01T00:00:00Z",
        "2030-01-01T00:00:00",
        "1969-01-01T00:00:00Z",
        "a@b.c",
        "123e4567-e89b-42d3-a456-426614174000",
        "x" * 300,
        "\ud800",
        "\x00",
        0,
        1,
        -1,
        True,
        10**10,
        1.5,
        [],
        {},
        None,
    ]
)
object_bodies = st.dictionaries(
    st.sampled_from(FIELD_NAMES) | st.text(max_size=10),
    interesting | json_values,
    max_size=6,
)


def _encoded(value: Any) -> bytes:
    return json.dumps(value).encode()


bodies = st.one_of(
    st.none(),
    object_bodies.map(_encoded),
    json_values.map(_encoded),
    st.binary(max_size=60),
    st.sampled_from([b"{", b"NaN", b'{"a":1,"a":2}', b"\xef\xbb\xbf{}", b'{"code":"\\udc00"}']),
)
segment_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=12
).filter(lambda s: s not in (".", ".."))


@st.composite
def paths(draw: st.DrawFn, fuzz: Fuzzed) -> tuple[str, str, str | None]:
    """(encoded path to send, the path as the server will decode it, its doc template)."""
    choice = draw(st.integers(0, 9))
    template: str | None = None
    if choice == 0:
        segments = draw(st.lists(segment_text, min_size=0, max_size=3))
        encoded = "/api/v1/" + "/".join(quote(s, safe="") for s in segments)
    else:
        template = draw(st.sampled_from(sorted(fuzz.doc["paths"])))
        value = draw(
            st.sampled_from(
                [fuzz.pass_id, fuzz.template_id, fuzz.pass_id.upper(), "not-a-uuid", ""]
            )
            | st.uuids().map(str)
            | segment_text
        )
        encoded = "/api/v1" + re.sub(r"\{[^}]+\}", quote(value, safe="") or "x", template)
        if draw(st.integers(0, 15)) == 0:
            encoded += "/"
    return encoded, unquote(encoded), template


query_params = st.dictionaries(
    st.sampled_from(["page", "limit", "status", "template_id"]) | st.text(max_size=6),
    st.sampled_from(["0", "1", "2", "20", "100", "101", "-1", "abc", "", "active", "expired"])
    | st.integers(-5, 2_000_000).map(str)
    | st.uuids().map(str)
    | st.text(max_size=8),
    max_size=3,
)
header_values = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.:/+= ", max_size=40
).map(str.strip)


@st.composite
def headers(draw: st.DrawFn, fuzz: Fuzzed) -> dict[str, str]:
    result: dict[str, str] = {}
    auth = draw(
        st.sampled_from(["pro", "pro", "pro", "free", "starter", "other", "none", "junk", "scheme"])
    )
    if auth in fuzz.keys:
        result["Authorization"] = f"Bearer {fuzz.keys[auth]}"
    elif auth == "junk":
        result["Authorization"] = "Bearer " + (draw(header_values) or "x")
    elif auth == "scheme":
        result["Authorization"] = f"Basic {fuzz.keys['pro']}"
    if draw(st.booleans()):
        result["Idempotency-Key"] = draw(st.sampled_from(["k1", "k2"]) | header_values)
    # Mostly JSON, so that bodies get past the media type check (415) to be judged.
    content_type = draw(
        st.sampled_from(
            [
                "application/json",
                "application/json",
                "application/json; charset=utf-8",
                "text/plain",
                "application/x-www-form-urlencoded",
                None,
            ]
        )
    )
    if content_type is not None:
        result["Content-Type"] = content_type
    return result


# -- the fuzz tests -------------------------------------------------------------------------------


def _doc_schema(fuzz: Fuzzed, name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _valid_text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]),
        min_size=1,
        max_size=max_size,
    )


emails = st.builds(
    lambda local, domain: f"{local}@{domain}",
    st.text(alphabet=string.ascii_letters + string.digits + "._+-", min_size=1, max_size=20),
    st.text(alphabet=string.ascii_lowercase + ".", min_size=1, max_size=20),
)
timestamps = st.builds(
    lambda moment, offset: moment.replace(tzinfo=UTC).astimezone(timezone(offset)).isoformat(),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(9999, 12, 30)),
    st.integers(-14 * 60, 14 * 60).map(lambda minutes: timedelta(minutes=minutes)),
)
small_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
template_bodies = st.fixed_dictionaries(
    {"name": _valid_text(200)},
    optional={
        "type": _valid_text(50),
        "description": st.none() | _valid_text(2000),
        "color": st.none() | st.from_regex(r"\A#[0-9A-Fa-f]{6}\Z"),
        "logo_url": st.none()
        | st.builds(
            lambda host: f"https://{host}.example/logo.png", st.from_regex(r"\A[a-z]{1,20}\Z")
        ),
        "fields": st.lists(small_objects, max_size=5),
        "settings": small_objects,
        "max_uses": st.none() | st.integers(1, 1_000_000_000),
    },
)
pass_bodies = st.fixed_dictionaries(
    {},
    optional={
        "holder_name": st.none() | _valid_text(200),
        "holder_email": st.none() | emails,
        "max_uses": st.none() | st.integers(1, 1_000_000_000),
        "expires_at": st.none() | timestamps,
        "data": small_objects,
    },
)
pass_changes = st.fixed_dictionaries(
    {},
    optional={
        "holder_name": st.none() | _valid_text(200),
        "holder_email": st.none() | emails,
        "data": small_objects,
        "status": st.sampled_from(["active", "used", "expired", "revoked"]),
    },
)


def _send(fuzz: Fuzzed, method: str, path: str, body: Any, key: str = "pro") -> httpx.Response:
    answer = fuzz.client.request(
        method.upper(),
        f"{fuzz.base_url}{path}",
        json=body,
        headers={"Authorization": f"Bearer {fuzz.keys[key]}"},
    )
    check_answer(fuzz, method, f"/api/v1{path}", answer)
    return answer


def _assert_request_documented(fuzz: Fuzzed, schema: str, body: Any) -> None:
    _check_schema(fuzz.doc, _doc_schema(fuzz, schema), body)


@SMALL
@given(body=template_bodies)
def test_documented_template_bodies_succeed(fuzzed: Fuzzed, body: dict[str, Any]) -> None:
    _assert_request_documented(fuzzed, "TemplateCreate", body)
    created = _send(fuzzed, "post", "/templates", body)
    assert created.status_code == 201, created.text
    template = created.json()["data"]
    changes = {k: v for k, v in body.items() if k != "name"}
    _assert_request_documented(fuzzed, "TemplateUpdate", changes)
    patched = _send(fuzzed, "patch", f"/templates/{template['id']}", changes)
    assert patched.status_code == 200, patched.text
    assert _send(fuzzed, "delete", f"/templates/{template['id']}", None).status_code == 200


@SMALL
@given(body=pass_bodies, changes=pass_changes)
def test_documented_pass_bodies_succeed(
    fuzzed: Fuzzed, body: dict[str, Any], changes: dict[str, Any]
) -> None:
    body = {"template_id": fuzzed.template_id, **body}
    _assert_request_documented(fuzzed, "PassCreate", body)
    created = _send(fuzzed, "post", "/passes", body)
    assert created.status_code == 201, created.text
    pass_id = created.json()["data"]["id"]
    _assert_request_documented(fuzzed, "PassUpdate", changes)
    patched = _send(fuzzed, "patch", f"/passes/{pass_id}", changes)
    assert patched.status_code in (200, 409), patched.text
    code = created.json()["data"]["code"]
    assert _send(fuzzed, "post", "/validate", {"code": code}).status_code == 200


@SMALL
@given(body=pass_bodies, key=st.sampled_from(["pro", "starter", "other", "free"]))
def test_every_plan_and_business_gets_documented_answers(
    fuzzed: Fuzzed, body: dict[str, Any], key: str
) -> None:
    """Creates past the starter quota (402), push by plan (200/402), another business (404)."""
    created = _send(fuzzed, "post", "/passes", {"template_id": fuzzed.template_id, **body}, key)
    expected = {"pro": 201, "starter": 400, "other": 400, "free": 403}[key]
    assert created.status_code == expected, created.text
    pushed = _send(fuzzed, "post", f"/passes/{fuzzed.pass_id}/push", None, key)
    assert pushed.status_code == {"pro": 200, "starter": 402, "other": 404, "free": 403}[key]
    if key == "starter":
        own = _send(fuzzed, "post", "/templates", {"name": "Small"}, key).json()["data"]
        made = _send(fuzzed, "post", "/passes", {"template_id": own["id"], **body}, key)
        assert made.status_code in (201, 402), made.text


@SMALL
@given(code=_valid_text(256))
def test_documented_codes_get_a_decision(fuzzed: Fuzzed, code: str) -> None:
    _assert_request_documented(fuzzed, "ValidateRequest", {"code": code})
    answer = _send(fuzzed, "post", "/validate", {"code": code})
    if code.strip():
        assert answer.status_code == 200, answer.text
    else:
        assert answer.status_code == 400, answer.text


@st.composite
def near_valid_bodies(draw: st.DrawFn, fuzz: Fuzzed, template: str, method: str) -> bytes:
    """A documented body for the route, perhaps with one field broken or one added."""
    body: dict[str, Any]
    if template == "/templates" or template == "/templates/{template_id}":
        body = draw(template_bodies)
    elif template == "/passes":
        body = draw(pass_bodies)
        body["template_id"] = draw(st.sampled_from([fuzz.template_id, UNKNOWN_ID]))
    elif template == "/passes/{pass_id}":
        body = draw(pass_changes)
    else:
        body = {"code": draw(st.sampled_from(fuzz.codes) | _valid_text(20))}
    mutation = draw(st.integers(0, 3))
    if mutation == 1:
        body[draw(st.sampled_from(FIELD_NAMES) | st.text(max_size=6))] = draw(interesting)
    elif mutation == 2 and body:
        body.pop(draw(st.sampled_from(sorted(body))))
    return _encoded(body)


@SETTINGS
@given(data=st.data())
def test_random_requests_get_documented_answers(fuzzed: Fuzzed, data: st.DataObject) -> None:
    encoded, decoded, template = data.draw(paths(fuzzed), label="path")
    documented = [m for m in fuzzed.doc["paths"].get(template or "", {}) if m in METHODS]
    if documented and data.draw(st.integers(0, 4), label="documented method?") > 0:
        method = data.draw(st.sampled_from(documented), label="method")
    else:
        method = data.draw(st.sampled_from(METHODS), label="method")
    params = data.draw(query_params if data.draw(st.booleans()) else st.just({}), label="query")
    sent_headers = data.draw(headers(fuzzed), label="headers")
    body: bytes | None
    if template is not None and method in ("post", "patch") and data.draw(st.booleans()):
        body = data.draw(near_valid_bodies(fuzzed, template, method), label="body")
    else:
        body = data.draw(bodies, label="body")
    answer = fuzzed.client.request(
        method.upper(),
        fuzzed.origin + encoded,
        params=params,
        headers=sent_headers,
        content=body,
    )
    event(f"{method.upper()} -> {answer.status_code}")
    check_answer(fuzzed, method, decoded, answer)
