"""Races and idempotency: exactly one use per admitted scan, whatever the timing."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from scanner.server import ServerThread, create_key

UNKNOWN_ID = "123e4567-e89b-42d3-a456-426614174000"


def race(
    urls: list[str], key: str, code: str, *, idempotency_key: str | None = None
) -> list[httpx.Response]:
    """Send one validation per URL, each from its own connection, released together."""
    barrier = threading.Barrier(len(urls))
    answers: list[httpx.Response | BaseException] = [RuntimeError("not run")] * len(urls)
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key is not None:
        headers["Idempotency-Key"] = idempotency_key

    def scan(index: int, url: str) -> None:
        with httpx.Client(headers=headers, timeout=20.0) as client:
            client.get(url.rsplit("/", 1)[0] + "/openapi.json")  # connect before the gun
            barrier.wait()
            try:
                answers[index] = client.post(url, json={"code": code})
            except httpx.HTTPError as err:
                answers[index] = err

    threads = [threading.Thread(target=scan, args=(i, url)) for i, url in enumerate(urls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    results: list[httpx.Response] = []
    for answer in answers:
        assert isinstance(answer, httpx.Response), answer
        assert answer.status_code == 200, answer.text
        results.append(answer)
    return results


def new_pass(base_url: str, key: str, **fields: Any) -> dict[str, Any]:
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"}) as client:
        template = client.post("/templates", json={"name": "Race"}).json()["data"]
        answer = client.post("/passes", json={"template_id": template["id"], **fields})
        assert answer.status_code == 201
        created: dict[str, Any] = answer.json()["data"]
        return created


@pytest.mark.parametrize("attempt", range(4))
def test_racing_validations_admit_exactly_once(shared_server: Any, attempt: int) -> None:
    created = new_pass(shared_server.base_url, shared_server.api_key, max_uses=1)
    answers = race(
        [f"{shared_server.base_url}/validate"] * 20, shared_server.api_key, created["code"]
    )
    results = sorted(answer.json()["data"]["result"] for answer in answers)
    assert results == ["used"] * 19 + ["valid"]
    with shared_server.client() as client:
        stored = client.get(f"/passes/{created['id']}").json()["data"]
    assert (stored["uses_count"], stored["status"]) == (1, "used")


def test_race_across_two_servers_sharing_a_database(tmp_path: Path) -> None:
    """Two processes' worth of connections to one SQLite file: still exactly one."""
    db = tmp_path / "shared.sqlite3"
    key = create_key(db, name="race")
    with ServerThread(db, rate_limit=False) as one, ServerThread(db, rate_limit=False) as two:
        for _ in range(3):
            created = new_pass(one.base_url, key, max_uses=2)
            urls = [f"{one.base_url}/validate", f"{two.base_url}/validate"] * 8
            results = sorted(a.json()["data"]["result"] for a in race(urls, key, created["code"]))
            assert results == ["used"] * 14 + ["valid"] * 2


def test_same_key_same_body_replays_without_a_second_use(
    api: httpx.Client, make_pass: Callable[..., dict[str, Any]]
) -> None:
    created = make_pass(max_uses=None)
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    first = api.post("/validate", json={"code": created["code"]}, headers=headers)
    assert first.status_code == 200
    assert "idempotent-replayed" not in first.headers
    # Same request, spelled differently (spacing) and retried twice.
    for content in (f'{{"code": "{created["code"]}"}}', f'{{ "code":"{created["code"]}" }}'):
        again = api.post(
            "/validate",
            content=content,
            headers={**headers, "Content-Type": "application/json"},
        )
        assert again.status_code == first.status_code
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
    stored = api.get(f"/passes/{created['id']}").json()["data"]
    assert stored["uses_count"] == 1
    # A fresh key counts a fresh use.
    fresh = api.post(
        "/validate", json={"code": created["code"]}, headers={"Idempotency-Key": "other"}
    )
    assert fresh.json()["data"]["pass"]["uses_count"] == 2


def test_same_key_different_request_is_422(
    api: httpx.Client, make_pass: Callable[..., dict[str, Any]]
) -> None:
    one, two = make_pass(), make_pass()
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    assert api.post("/validate", json={"code": one["code"]}, headers=headers).status_code == 200
    answer = api.post("/validate", json={"code": two["code"]}, headers=headers)
    assert answer.status_code == 422
    assert answer.json()["error"] == "Unprocessable Entity"
    assert set(answer.json()) == {"error", "message"}
    # Another endpoint with the same key is a different request too.
    other = api.post("/passes", json={"template_id": one["template_id"]}, headers=headers)
    assert other.status_code == 422
    # So is an invalid body under a used key.
    invalid = api.post("/validate", json={"code": 5}, headers=headers)
    assert invalid.status_code == 422
    assert api.get(f"/passes/{two['id']}").json()["data"]["uses_count"] == 0


def test_idempotency_keys_are_scoped_per_api_key(
    shared_server: Any, make_pass: Callable[..., dict[str, Any]]
) -> None:
    created = make_pass(max_uses=None)
    other_key = create_key(shared_server.db_path, name="other", plan="starter")
    headers = {"Idempotency-Key": "shared-key-" + str(uuid.uuid4())}
    counts = []
    for key in (shared_server.api_key, other_key):
        with shared_server.client(key) as client:
            answer = client.post("/validate", json={"code": created["code"]}, headers=headers)
            counts.append(answer.json()["data"]["pass"]["uses_count"])
    assert counts == [1, 2]


def test_idempotent_pass_creation(
    api: httpx.Client, make_template: Callable[..., dict[str, Any]]
) -> None:
    template_id = make_template()["id"]
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"template_id": template_id, "holder_name": "Once"}
    first = api.post("/passes", json=body, headers=headers)
    second = api.post("/passes", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    listing = api.get("/passes", params={"template_id": template_id}).json()
    assert listing["meta"]["total"] == 1


def test_error_answers_are_not_stored(
    api: httpx.Client, make_template: Callable[..., dict[str, Any]]
) -> None:
    headers = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"template_id": UNKNOWN_ID}
    assert api.post("/passes", json=body, headers=headers).status_code == 400
    assert api.post("/passes", json=body, headers=headers).status_code == 400
    fixed = {"template_id": make_template()["id"]}
    assert api.post("/passes", json=fixed, headers=headers).status_code == 201


@pytest.mark.parametrize("value", ["", "a b", "x" * 256, "ключ"])
def test_malformed_idempotency_key_is_400(api: httpx.Client, value: str) -> None:
    answer = api.post(
        "/validate",
        json={"code": "PASS-AAAAAAAA"},
        headers=[(b"Idempotency-Key", value.encode("utf-8"))],
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "Bad Request"


def test_racing_duplicates_count_one_use(shared_server: Any) -> None:
    created = new_pass(shared_server.base_url, shared_server.api_key, max_uses=None)
    answers = race(
        [f"{shared_server.base_url}/validate"] * 12,
        shared_server.api_key,
        created["code"],
        idempotency_key=str(uuid.uuid4()),
    )
    assert len({answer.content for answer in answers}) == 1
    assert answers[0].json()["data"]["result"] == "valid"
    assert sum("idempotent-replayed" in answer.headers for answer in answers) == 11
    with shared_server.client() as client:
        stored = client.get(f"/passes/{created['id']}").json()["data"]
    assert stored["uses_count"] == 1


def test_idempotency_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "restart.sqlite3"
    key = create_key(db, name="restart")
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "scan-1"}
    with ServerThread(db, rate_limit=False) as server:
        created = new_pass(server.base_url, key, max_uses=1)
        first = httpx.post(
            f"{server.base_url}/validate", json={"code": created["code"]}, headers=headers
        )
        assert first.json()["data"]["result"] == "valid"
    with ServerThread(db, rate_limit=False) as server:
        again = httpx.post(
            f"{server.base_url}/validate", json={"code": created["code"]}, headers=headers
        )
        assert again.status_code == 200
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        other = httpx.post(
            f"{server.base_url}/validate",
            json={"code": "PASS-00000000"},
            headers=headers,
        )
        assert other.status_code == 422
