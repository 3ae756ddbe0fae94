"""Hostile clients: huge or endless headers, idle and slow-drip connections, non-JSON
bodies, values crafted to bloat or leak an error message, a database locked elsewhere.

Each attack goes to a real server over loopback, through raw sockets where the
attack is below HTTP. The server must refuse early, answer with the JSON error
envelope where an answer is still possible, and keep serving everyone else.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scanner.server import ConnectionLimits, ServerThread, create_key
from tests.server.conftest import Served

#: Timeouts of the `strict` server; the defaults are longer (see docs/server.md).
SHORT = ConnectionLimits(head_timeout=1.0, body_timeout=1.0)
#: How late a cut-off may come after its timeout on a loaded two-core machine.
SLACK = 2.0

MakePass = Callable[..., dict[str, Any]]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server with short connection timeouts, so that cut-offs can be waited for."""
    db = tmp_path_factory.mktemp("strict") / "server.sqlite3"
    key = create_key(db, name="tests", plan="pro")
    free = create_key(db, name="free", plan="free")
    with ServerThread(db, rate_limit=False, connection_limits=SHORT) as server:
        yield Served(base_url=server.base_url, api_key=key, free_key=free, db_path=db)


def _address(served: Served) -> tuple[str, int]:
    url = httpx.URL(served.base_url)
    assert url.host is not None and url.port is not None
    return url.host, url.port


def _connect(served: Served, timeout: float = 10.0) -> socket.socket:
    sock = socket.create_connection(_address(served), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (a reset after an answer ends it too)."""
    chunks: list[bytes] = []
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def _assert_envelope(raw: bytes, status: int, error: str) -> dict[str, Any]:
    got, headers, body = _parse(raw)
    assert got == status, raw[:300]
    assert headers["content-type"] == "application/json", raw[:300]
    payload: dict[str, Any] = json.loads(body)
    assert set(payload) == {"error", "message"}
    assert payload["error"] == error
    assert payload["message"]
    return payload


def _assert_error(answer: httpx.Response, status: int, error: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    body: dict[str, Any] = answer.json()
    assert set(body) == {"error", "message"}
    assert body["error"] == error
    return body


def _request(method: str, path: str, *extra: str, body: bytes = b"") -> bytes:
    lines = [f"{method} /api/v1{path} HTTP/1.1", "Host: test", *extra]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# -- header size and count -------------------------------------------------------------------


def test_oversized_header_is_refused_while_validations_stay_fast(
    shared_server: Served, make_pass: MakePass, api: httpx.Client
) -> None:
    """Up to 64 MiB of one header value: cut off early, and a validation meanwhile is fast."""
    code = make_pass(max_uses=None)["code"]
    sent = 0
    ended = threading.Event()
    took: list[float] = []

    def attack() -> None:
        nonlocal sent
        chunk = b"a" * (1024 * 1024)
        started = time.monotonic()
        with _connect(shared_server) as sock:
            try:
                sock.sendall(b"GET /api/v1/passes HTTP/1.1\r\nHost: test\r\nX-Big: ")
                while sent < 64 * 1024 * 1024 and time.monotonic() - started < 20:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass  # the server hung up: what it should do
            took.append(time.monotonic() - started)
        ended.set()

    thread = threading.Thread(target=attack, daemon=True)
    thread.start()
    slowest = 0.0
    while not ended.is_set():
        started = time.monotonic()
        answer = api.post("/validate", json={"code": code})
        slowest = max(slowest, time.monotonic() - started)
        assert answer.status_code == 200, answer.text
    thread.join(5)
    # The kernel's socket buffers take a few MiB before the server can refuse.
    assert sent < 16 * 1024 * 1024, f"the server read {sent} bytes of one header"
    assert took[0] < 5.0
    assert slowest < 1.0, f"a validation took {slowest:.2f} s during the attack"


def test_oversized_head_gets_json_431(shared_server: Served) -> None:
    request = _request("GET", "/openapi.json", "X-Big: " + "a" * 20_000, "Connection: close")
    with _connect(shared_server) as sock:
        sock.sendall(request)
        raw = _read_all(sock)
    body = _assert_envelope(raw, 431, "Request Header Fields Too Large")
    assert "16384" in body["message"]


def test_too_many_headers_get_json_431(shared_server: Served) -> None:
    headers = [f"X-Many-{n}: 1" for n in range(150)]
    with _connect(shared_server) as sock:
        sock.sendall(_request("GET", "/openapi.json", *headers, "Connection: close"))
        raw = _read_all(sock)
    body = _assert_envelope(raw, 431, "Request Header Fields Too Large")
    assert "100" in body["message"]


def test_protocol_errors_answer_json(shared_server: Served) -> None:
    for garbage in (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", b"\x00\x01\x02\r\n\r\n"):
        with _connect(shared_server) as sock:
            sock.sendall(garbage)
            raw = _read_all(sock)
        _assert_envelope(raw, 400, "Bad Request")


# -- idle and slow connections -----------------------------------------------------------------


def test_idle_connection_is_closed(strict: Served) -> None:
    with _connect(strict) as sock:
        started = time.monotonic()
        assert _read_all(sock) == b""
        assert time.monotonic() - started < SHORT.head_timeout + SLACK


def test_slow_drip_head_is_cut_off(strict: Served) -> None:
    """A byte every 50 ms keeps a keep-alive timer reset forever, not the head deadline."""
    request = _request("GET", "/openapi.json")
    with _connect(strict) as sock:
        started = time.monotonic()
        try:
            for byte in request[:-4]:
                sock.sendall(bytes([byte]))
                time.sleep(0.05)
                if time.monotonic() - started > SHORT.head_timeout + SLACK:
                    break
        except OSError:
            pass
        sock.settimeout(SLACK)
        raw = _read_all(sock)
        assert time.monotonic() - started < SHORT.head_timeout + 2 * SLACK
    _assert_envelope(raw, 408, "Request Timeout")


def test_half_sent_body_is_cut_off(strict: Served) -> None:
    head = _request(
        "POST",
        "/validate",
        f"Authorization: Bearer {strict.api_key}",
        "Content-Type: application/json",
        "Content-Length: 100",
    )
    with _connect(strict) as sock:
        sock.sendall(head + b'{"code": ')
        started = time.monotonic()
        raw = _read_all(sock)
        assert time.monotonic() - started < SHORT.body_timeout + SLACK
    _assert_envelope(raw, 408, "Request Timeout")


def test_slow_drip_body_is_cut_off(strict: Served) -> None:
    head = _request(
        "POST",
        "/validate",
        f"Authorization: Bearer {strict.api_key}",
        "Content-Type: application/json",
        "Content-Length: 1000",
    )
    with _connect(strict) as sock:
        sock.sendall(head)
        started = time.monotonic()
        try:
            for _ in range(1000):
                sock.sendall(b" ")
                time.sleep(0.05)
                if time.monotonic() - started > SHORT.body_timeout + SLACK:
                    break
        except OSError:
            pass
        sock.settimeout(SLACK)
        raw = _read_all(sock)
        assert time.monotonic() - started < SHORT.body_timeout + 2 * SLACK
    _assert_envelope(raw, 408, "Request Timeout")


# -- content types -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
        "text/xml",
        "application/jsonp",
        "application/json; charset=latin-1",
        None,
    ],
)
def test_non_json_bodies_are_415(
    api: httpx.Client, make_pass: MakePass, content_type: str | None
) -> None:
    created = make_pass()
    pass_id, template_id = created["id"], created["template_id"]
    cases = [
        ("POST", "/validate", {"code": created["code"]}),
        ("POST", "/templates", {"name": "Refused"}),
        ("POST", "/passes", {"template_id": template_id}),
        ("PATCH", f"/passes/{pass_id}", {"holder_name": "Refused"}),
        ("PATCH", f"/templates/{template_id}", {"name": "Refused"}),
    ]
    for method, path, body in cases:
        headers = {} if content_type is None else {"Content-Type": content_type}
        answer = api.request(method, path, content=json.dumps(body), headers=headers)
        message = _assert_error(answer, 415, "Unsupported Media Type")["message"]
        assert "application/json" in message
    # Nothing was changed by a refused request.
    assert api.get(f"/passes/{pass_id}").json()["data"]["uses_count"] == 0
    assert api.get(f"/passes/{pass_id}").json()["data"]["holder_name"] == "Jane Smith"


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=utf-8", "Application/JSON", "application/vnd.passqr+json"],
)
def test_json_media_types_are_accepted_and_text_is_not(
    api: httpx.Client, make_pass: MakePass, content_type: str
) -> None:
    code = make_pass()["code"]
    body = json.dumps({"code": code})
    refused = api.post("/validate", content=body, headers={"Content-Type": "text/plain"})
    _assert_error(refused, 415, "Unsupported Media Type")
    answer = api.post("/validate", content=body, headers={"Content-Type": content_type})
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"]["result"] == "valid"


def test_bodiless_post_needs_no_content_type_but_a_wrong_one_is_415(api: httpx.Client) -> None:
    # No body and no Content-Type: judged as an empty JSON body (400), not as a media type.
    bare = _assert_error(api.post("/validate"), 400, "Bad Request")
    assert bare["message"] == "Request body must be a JSON object"
    # A declared non-JSON type is refused even with nothing after it.
    _assert_error(
        api.post("/validate", headers={"Content-Type": "text/plain"}), 415, "Unsupported Media Type"
    )


# -- what an error message may echo ------------------------------------------------------------


def test_bad_values_are_echoed_briefly(api: httpx.Client) -> None:
    long_path = "/x" * 5_000
    message = _assert_error(api.get(long_path), 404, "Not Found")["message"]
    assert len(message) < 200, len(message)
    assert message.endswith("…")
    name = "n" * 6_000
    answer = api.get(f"/passes?{name}=1&{name}=2")
    message = _assert_error(answer, 400, "Bad Request")["message"]
    assert len(message) < 200, len(message)
    fields = {f"field_{n}_" + "x" * 1000: 1 for n in range(8)}
    message = _assert_error(api.post("/templates", json=fields), 400, "Bad Request")["message"]
    assert len(message) < 600, len(message)


@pytest.mark.parametrize("literal", ["1" * 5_000, "-" + "9" * 5_000], ids=["big", "negative"])
def test_huge_numbers_get_a_plain_message(
    api: httpx.Client, make_pass: MakePass, literal: str
) -> None:
    template_id = make_pass()["template_id"]
    for number in (literal, literal + ".5", "1e" + literal.lstrip("-")):
        for body in (
            f'{{"template_id": "{template_id}", "max_uses": {number}}}',
            f'{{"template_id": "{template_id}", "data": {{"n": [{number}]}}}}',
        ):
            answer = api.post("/passes", content=body, headers={"Content-Type": "application/json"})
            message = _assert_error(answer, 400, "Bad Request")["message"]
            assert "sys." not in message and "set_int_max_str_digits" not in message
            assert len(message) < 200


# -- the database locked by another process ------------------------------------------------------


def test_write_lock_held_elsewhere_gives_503_and_reads_go_on(
    local_server: Any,
) -> None:
    headers = {"Authorization": f"Bearer {local_server.api_key}"}
    with httpx.Client(base_url=local_server.base_url, headers=headers, timeout=30) as client:
        template = client.post("/templates", json={"name": "Locked"}).json()["data"]
        created = client.post("/passes", json={"template_id": template["id"]}).json()["data"]
        other = sqlite3.connect(str(Path(local_server.db_path)), isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            outcome: list[tuple[httpx.Response, float]] = []

            def write() -> None:
                started = time.monotonic()
                answer = client.post("/validate", json={"code": created["code"]})
                outcome.append((answer, time.monotonic() - started))

            writer = threading.Thread(target=write, daemon=True)
            writer.start()
            time.sleep(0.2)  # the write is now waiting for the lock
            for path in (f"/passes/{created['id']}", "/passes", "/templates"):
                started = time.monotonic()
                assert client.get(path).status_code == 200
                assert time.monotonic() - started < 1.0, f"GET {path} waited behind the lock"
            writer.join(30)
            answer, took = outcome[0]
            body = _assert_error(answer, 503, "Service Unavailable")
            assert "lock" in body["message"].lower() or "busy" in body["message"].lower()
            assert answer.headers["retry-after"].isdigit()
            assert took < 4.0, f"the write waited {took:.1f} s for the lock"
        finally:
            other.execute("ROLLBACK")
            other.close()
        # Nothing was counted, and once the lock is gone the write goes through.
        assert client.get(f"/passes/{created['id']}").json()["data"]["uses_count"] == 0
        again = client.post("/validate", json={"code": created["code"]})
        assert again.json()["data"]["result"] == "valid"
