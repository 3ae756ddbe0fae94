"""Rate limits over HTTP, and the sliding-window limiter with a fake clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scanner.server import RateLimits, ServerThread, create_key
from scanner.server.ratelimit import SlidingWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def assert_429(answer: httpx.Response, window: float) -> int:
    assert answer.status_code == 429, answer.text
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == "Too Many Requests"
    retry_after = answer.headers["retry-after"]
    assert retry_after.isdigit(), retry_after
    assert 1 <= int(retry_after) <= window
    return int(retry_after)


@pytest.fixture
def small_limits(tmp_path: Path) -> Iterator[tuple[str, str]]:
    db = tmp_path / "limits.sqlite3"
    key = create_key(db, name="limits")
    limits = RateLimits(read=3, write=2, validate=2, window=30.0)
    with ServerThread(db, limits=limits) as server:
        yield server.base_url, key


def test_reads_are_limited_per_ip(small_limits: tuple[str, str]) -> None:
    base, key = small_limits
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        for _ in range(3):
            assert client.get("/templates").status_code == 200
        assert_429(client.get("/templates"), 30.0)
        # Every read shares the bucket, even the OpenAPI document.
        assert_429(client.get("/openapi.json"), 30.0)
        # Writes have their own.
        assert client.post("/templates", json={"name": "x"}).status_code == 201


def test_validate_has_its_own_bucket(small_limits: tuple[str, str]) -> None:
    base, key = small_limits
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as client:
        template = client.post("/templates", json={"name": "x"}).json()["data"]
        assert client.patch(f"/templates/{template['id']}", json={}).status_code == 200
        # POST and PATCH used the write bucket up; DELETE shares it.
        assert_429(client.delete(f"/templates/{template['id']}"), 30.0)
        assert_429(client.post("/passes", json={}), 30.0)
        for _ in range(2):
            answer = client.post("/validate", json={"code": "PASS-AAAAAAAA"})
            assert answer.json()["data"]["result"] == "not_found"
        assert_429(client.post("/validate", json={"code": "PASS-AAAAAAAA"}), 30.0)


def test_limits_count_before_authentication(small_limits: tuple[str, str]) -> None:
    base, _ = small_limits
    for _ in range(3):
        assert httpx.get(f"{base}/passes").status_code == 401
    assert_429(httpx.get(f"{base}/passes"), 30.0)
    assert_429(httpx.get(f"{base}/no/such/route"), 30.0)


def test_spec_limits_on_limited_server(limited_server: Any) -> None:
    headers = {"Authorization": f"Bearer {limited_server.api_key}"}
    with httpx.Client(base_url=limited_server.base_url, headers=headers) as client:
        for _ in range(60):
            assert client.post("/validate", json={"code": "PASS-AAAAAAAA"}).status_code == 200
        assert_429(client.post("/validate", json={"code": "PASS-AAAAAAAA"}), 60.0)
        for _ in range(120):
            assert client.get("/templates").status_code == 200
        assert_429(client.get("/templates"), 60.0)
        for _ in range(60):
            assert client.post("/templates", json={"name": "t"}).status_code == 201
        assert_429(client.post("/templates", json={"name": "t"}), 60.0)


def test_no_rate_limit_means_none(local_server: Any) -> None:
    headers = {"Authorization": f"Bearer {local_server.api_key}"}
    with httpx.Client(base_url=local_server.base_url, headers=headers) as client:
        for _ in range(70):
            assert client.post("/validate", json={"code": "PASS-AAAAAAAA"}).status_code == 200


def test_sliding_window_frees_slots_as_they_age() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, 60.0, clock)
    assert limiter.hit("a") is None
    clock.now += 10
    assert limiter.hit("a") is None
    assert limiter.hit("a") is None
    assert limiter.hit("b") is None  # another client has its own window
    clock.now += 5
    assert limiter.hit("a") == 45  # the first hit ages out 45 s from now
    clock.now += 44.5
    assert limiter.hit("a") == 1  # never 0: Retry-After is at least 1
    clock.now += 0.5
    assert limiter.hit("a") is None
    assert limiter.hit("a") == 10  # the two hits at +10 s remain, plus this one
    clock.now += 10.0
    assert limiter.hit("a") is None


def test_refused_requests_do_not_count() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(1, 10.0, clock)
    assert limiter.hit("a") is None
    for _ in range(100):
        clock.now += 0.05
        assert limiter.hit("a") is not None
    clock.now = 1010.0
    assert limiter.hit("a") is None


def test_idle_clients_are_swept() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 10.0, clock)
    for n in range(100):
        limiter.hit(f"10.0.0.{n}")
    clock.now += 25
    limiter.hit("10.0.1.1")
    assert len(limiter._hits) == 1


def test_limiter_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="limit"):
        SlidingWindowLimiter(0, 10.0)
    with pytest.raises(ValueError, match="window"):
        SlidingWindowLimiter(1, 0.0)
