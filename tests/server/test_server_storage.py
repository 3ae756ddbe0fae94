"""The database: keys stored hashed, WAL, creation, seed data; parsing helpers."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from scanner.server import ServerThread, StoreOpenError, create_key, seed_demo
from scanner.server.auth import KeyCache, hash_key, key_from_header
from scanner.server.errors import ApiError
from scanner.server.store import Store
from scanner.server.validation import normalise_code, parse_query, parse_timestamp

KEY_RE = re.compile(r"pqr_live_[A-Za-z0-9]{32,}")


def read_all_bytes(db: Path) -> bytes:
    return b"".join(
        path.read_bytes() for path in db.parent.iterdir() if path.name.startswith(db.name)
    )


def test_keys_are_never_stored_in_plain_text(tmp_path: Path) -> None:
    db = tmp_path / "keys.sqlite3"
    keys = [create_key(db, name=f"k{n}", plan=plan) for n, plan in enumerate(("pro", "free"))]
    with ServerThread(db, rate_limit=False) as server:
        for key in keys:
            httpx.get(f"{server.base_url}/passes", headers={"Authorization": f"Bearer {key}"})
        blob = read_all_bytes(db)
    blob += read_all_bytes(db)  # after the server closed (checkpointed) it too
    for key in keys:
        assert KEY_RE.fullmatch(key)
        assert key.encode() not in blob
        assert key[9:].encode() not in blob  # not even the secret part
        assert hash_key(key).encode() in blob


def test_key_format_and_plans(tmp_path: Path) -> None:
    db = tmp_path / "plans.sqlite3"
    assert len({create_key(db) for _ in range(5)}) == 5
    with pytest.raises(ValueError, match="plan"):
        create_key(db, plan="enterprise")
    conn = sqlite3.connect(db)
    try:
        plans = conn.execute("SELECT plan, length(prefix) FROM api_keys").fetchall()
    finally:
        conn.close()
    assert plans == [("pro", 13)] * 5


def test_database_and_parent_directory_are_created_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "deep" / "er" / "server.sqlite3"
    create_key(db)
    create_key(db)  # schema creation is idempotent
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert {"api_keys", "templates", "passes", "scans", "idempotency"} <= tables


def test_unusable_database_paths_are_clear_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreOpenError, match="cannot create directory"):
        create_key(blocker / "sub" / "db.sqlite3")
    with pytest.raises(StoreOpenError, match="is a directory"):
        create_key(tmp_path)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreOpenError, match="not a database"):
        Store.open(garbage)
    with pytest.raises(StoreOpenError):
        ServerThread(blocker / "db.sqlite3").start()


def test_seed_demo_twice(tmp_path: Path) -> None:
    db = tmp_path / "seed.sqlite3"
    first = seed_demo(db)
    second = seed_demo(db)
    assert list(first) == ["valid", "season", "used", "expired", "revoked"]
    assert set(first) == set(second)
    assert not set(first.values()) & set(second.values())
    key = create_key(db)
    with ServerThread(db, rate_limit=False) as server:
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.base_url, headers=headers) as client:
            passes = {p["code"]: p for p in client.get("/passes?limit=100").json()["data"]}
    assert passes[first["valid"]]["holder_name"] == "Ada Lovelace"
    assert passes[first["valid"]]["max_uses"] == 1
    assert passes[first["season"]]["holder_name"] == "Grace Hopper"
    assert passes[first["season"]]["max_uses"] is None
    used = passes[first["used"]]
    assert (used["uses_count"], used["max_uses"], used["status"]) == (1, 1, "used")
    assert passes[first["expired"]]["status"] == "expired"
    assert passes[first["revoked"]]["status"] == "revoked"


def test_server_thread_api(tmp_path: Path) -> None:
    server = ServerThread(tmp_path / "x.sqlite3", port=0)
    with pytest.raises(RuntimeError):
        _ = server.base_url
    server.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/v1", server.base_url)
        assert server.port != 0
        with pytest.raises(RuntimeError):
            server.start()
        assert httpx.get(f"{server.base_url}/openapi.json").status_code == 200
    finally:
        server.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.base_url}/openapi.json")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2030-01-31T23:59:59Z", "2030-01-31T23:59:59Z"),
        ("2030-01-31T23:59:59.999999Z", "2030-01-31T23:59:59Z"),
        ("2030-02-01T01:59:59+02:00", "2030-01-31T23:59:59Z"),
        ("2030-01-31 23:59:59-00:30", "2030-02-01T00:29:59Z"),
    ],
)
def test_timestamps_are_normalised_to_utc(given: str, expected: str) -> None:
    assert parse_timestamp(given, "expires_at") == expected


@pytest.mark.parametrize(
    "given", ["2030-01-31", "2030-01-31T23:59:59", "1969-12-31T23:59:59Z", "nope", ""]
)
def test_bad_timestamps(given: str) -> None:
    with pytest.raises(ApiError):
        parse_timestamp(given, "expires_at")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("PASS-ABC12345", "PASS-ABC12345"),
        (" pass-abc12345\t", "PASS-ABC12345"),
        ("PASS-ABC1234", None),
        ("PASS-ABC123456", None),
        ("PASS-ABC1234\u0131", None),
        ("https://www.passqr.com/p/PASS-ABC12345", None),
    ],
)
def test_normalise_code(given: str, expected: str | None) -> None:
    assert normalise_code(given) == expected


def test_parse_query() -> None:
    assert parse_query(b"", ("page",)) == {}
    assert parse_query(b"page=2&limit=5", ("page", "limit")) == {"page": "2", "limit": "5"}
    assert parse_query(b"status=a%20b", ("status",)) == {"status": "a b"}
    for bad in (b"page=1&page=2", b"x=1", b"page=%ff"):
        with pytest.raises(ApiError):
            parse_query(bad, ("page",))


@pytest.mark.parametrize(
    ("header", "found"),
    [
        ("Bearer pqr_live_" + "a" * 32, True),
        ("BEARER   pqr_live_" + "a" * 40 + " ", True),
        ("Bearer pqr_live_" + "a" * 31, False),
        ("Bearer pqr_live_" + "a" * 129, False),
        ("Token pqr_live_" + "a" * 40, False),
        (None, False),
    ],
)
def test_authorization_header(header: str | None, found: bool) -> None:
    assert (key_from_header(header) is not None) is found


def test_key_cache_expires() -> None:
    now = [0.0]
    cache = KeyCache(5.0, clock=lambda: now[0])
    from scanner.server.auth import ApiKey

    key = ApiKey(id="1", name="n", plan="pro", business="default")
    cache.put("h", key)
    assert cache.get("h") == key
    now[0] = 5.0
    assert cache.get("h") is None


def test_scan_rows_cover_not_found(tmp_path: Path) -> None:
    db = tmp_path / "scans.sqlite3"
    store = Store.open(db)
    try:
        answer = store.execute(lambda s: (200, s.validate(None, "junk", None, "default")), None)
        assert b'"not_found"' in answer.body
        assert store.count_scans() == 1
    finally:
        store.close()


def test_store_rolls_back_failed_operations(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "rollback.sqlite3")

    def half_done(s: Store) -> tuple[int, Any]:
        s.validate(None, "junk", None, "default")
        raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError):
            store.execute(half_done, None)
        assert store.count_scans() == 0
    finally:
        store.close()
