"""Client behaviour the local server cannot provoke: foreign answers and dead sockets.

Answers PassQR's real server (or a captive portal, or a wrong base URL) might
give are replayed through httpx's MockTransport; timeouts and refused
connections use real sockets on loopback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from scanner.api import PassQRClient, parse_validation
from scanner.errors import (
    APITimeoutError,
    AuthenticationError,
    BadAnswerError,
    ConfigError,
    NetworkError,
    NotFoundError,
    PlanError,
    PlanLimitError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
)
from scanner.models import ValidationOutcome

KEY = "pqr_live_" + "S3cr3t" * 6


def client_for(handler: Callable[[httpx.Request], httpx.Response]) -> PassQRClient:
    return PassQRClient("https://passqr.test/api/v1", KEY, transport=httpx.MockTransport(handler))


def answer(
    status: int, body: Any = None, *, text: str | None = None, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if text is not None:
            return httpx.Response(
                status, text=text, headers=headers or {"content-type": "text/html"}
            )
        return httpx.Response(status, json=body, headers=headers)

    return handler


async def test_request_shape_bearer_idempotency_and_url() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            200, json={"data": {"result": "valid", "message": "ok", "pass": None, "template": None}}
        )

    async with client_for(handler) as client:
        await client.validate("PASS-ABCD1234", idempotency_key="k-1")
    (request,) = seen
    assert request.method == "POST"
    assert str(request.url) == "https://passqr.test/api/v1/validate"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["idempotency-key"] == "k-1"
    assert json.loads(request.content) == {"code": "PASS-ABCD1234"}


def test_both_spellings_are_read() -> None:
    new = parse_validation(
        {
            "data": {
                "result": "valid",
                "message": "Access granted",
                "extra": 1,
                "pass": {
                    "code": "PASS-A",
                    "holder_name": "Jane",
                    "uses_count": 1,
                    "max_uses": 3,
                    "surprise": {"x": 1},
                },
                "template": {"id": "t", "name": "VIP", "color": "#fff"},
            }
        }
    )
    assert new.outcome is ValidationOutcome.VALID
    assert new.pass_ is not None and new.pass_.uses_left == 2
    assert new.template is not None and new.template.name == "VIP"
    old = parse_validation(
        {
            "valid": True,
            "status": "valid",
            "pass": {"holderName": "Jane", "usesCount": 2, "maxUses": 5, "scansRemaining": 3},
        }
    )
    assert old.outcome is ValidationOutcome.VALID
    assert old.pass_ is not None and old.pass_.holder_name == "Jane" and old.pass_.uses_left == 3
    old_denied = parse_validation({"valid": False, "status": "used", "message": "Used"})
    assert old_denied.outcome is ValidationOutcome.USED
    contradiction = parse_validation({"valid": False, "status": "valid"})
    assert contradiction.outcome is ValidationOutcome.UNKNOWN


def test_unknown_result_keeps_the_message() -> None:
    result = parse_validation({"data": {"result": "suspended", "message": "Event paused"}})
    assert result.outcome is ValidationOutcome.UNKNOWN
    assert not result.admitted
    assert result.message == "Event paused"


@pytest.mark.parametrize(
    "body",
    [{"data": []}, {"data": "valid"}, {"nothing": 1}, {"data": {"message": "x"}}],
)
def test_shapeless_answers_are_bad_answers(body: dict[str, Any]) -> None:
    with pytest.raises(BadAnswerError):
        parse_validation(body)


@pytest.mark.parametrize(
    ("handler", "error", "check"),
    [
        (
            answer(401, {"error": "Unauthorized", "message": "Invalid API key"}),
            AuthenticationError,
            "Invalid API key",
        ),
        (answer(403, {"error": "Forbidden", "message": "Plan"}), PlanError, "Plan"),
        (
            answer(402, {"error": "Payment Required", "message": "Upgrade"}),
            PlanLimitError,
            "Upgrade",
        ),
        (
            answer(
                429,
                {"error": "Too Many Requests", "message": "slow"},
                headers={"Retry-After": "17"},
            ),
            RateLimitedError,
            "slow",
        ),
        (answer(500, {"error": "Internal", "message": "db down"}), ServerError, "db down"),
        (answer(503, text="<html>Bad gateway</html>"), BadAnswerError, "instead of JSON"),
        (answer(200, text="<html>Welcome to hotel wifi</html>"), BadAnswerError, "base_url"),
        (answer(404, text="<html>Not Found</html>"), BadAnswerError, "base_url"),
        (answer(404, {"error": "Not Found", "message": "no pass"}), NotFoundError, "no pass"),
        (
            answer(400, {"error": "Bad Request", "message": "code missing"}),
            RequestRejectedError,
            "code missing",
        ),
        (
            answer(200, text="{not json", headers={"content-type": "application/json"}),
            BadAnswerError,
            "without a JSON object",
        ),
        (answer(200, [1, 2]), BadAnswerError, "JSON object"),
    ],
)
async def test_statuses_map_to_the_error_tree(
    handler: Callable[[httpx.Request], httpx.Response], error: type[Exception], check: str
) -> None:
    async with client_for(handler) as client:
        with pytest.raises(error, match=check) as info:
            await client.get_pass("p-1")
    if isinstance(info.value, RateLimitedError):
        assert info.value.retry_after == 17


@pytest.mark.parametrize(
    ("header", "expected"),
    [("0", 1.0), ("2.5", 2.5), ("soon", 1.0), ("99999", 60.0), ("99999999999", 60.0)],
)
async def test_retry_after_is_sane(header: str, expected: float) -> None:
    async with client_for(
        answer(429, {"error": "x", "message": "y"}, headers={"Retry-After": header})
    ) as client:
        with pytest.raises(RateLimitedError) as info:
            await client.validate("PASS-ABCD1234", idempotency_key="k")
    assert info.value.retry_after == expected


def test_plain_http_is_refused_off_loopback() -> None:
    with pytest.raises(ConfigError, match="unencrypted"):
        PassQRClient("http://passqr.com/api/v1", KEY)
    PassQRClient("http://192.168.1.10/api/v1", KEY, allow_insecure_http=True)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A loopback socket that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock.getsockname()[1]
    sock.close()


async def test_timeout_is_a_timeout(silent_server: int) -> None:
    async with PassQRClient(
        f"http://127.0.0.1:{silent_server}/api/v1", KEY, timeout_s=0.3
    ) as client:
        with pytest.raises(APITimeoutError):
            await client.validate("PASS-ABCD1234", idempotency_key="k")


async def test_refused_connection_is_a_network_error() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    async with PassQRClient(f"http://127.0.0.1:{port}/api/v1", KEY, timeout_s=1) as client:
        with pytest.raises(NetworkError, match="cannot reach"):
            await client.validate("PASS-ABCD1234", idempotency_key="k")


async def test_the_key_never_shows(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(answer(401, {"error": "Unauthorized", "message": f"bad key {KEY}"}))
    assert KEY not in repr(client)
    assert KEY not in repr(client._http.auth)
    with pytest.raises(AuthenticationError) as info:
        await client.validate("PASS-ABCD1234", idempotency_key="k")
    await client.aclose()
    assert KEY not in str(info.value)
    assert KEY not in repr(info.value)
    assert KEY not in caplog.text
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("handler", "error", "message", "code"),
    [
        # The shapes PassQR's own code reads (its studio's errMsg), and ours.
        (
            answer(400, {"error": "holder_email is invalid"}),
            RequestRejectedError,
            "holder_email is invalid",
            None,
        ),
        (
            answer(400, {"message": "max_uses must be positive"}),
            RequestRejectedError,
            "max_uses must be positive",
            None,
        ),
        (
            answer(400, {"error": {"message": "template not found", "code": "bad_template"}}),
            RequestRejectedError,
            "template not found",
            "bad_template",
        ),
        (answer(400, {"error": {"msg": "too long"}}), RequestRejectedError, "too long", None),
        (
            answer(422, {"error": {"code": "bad_thing"}}),
            RequestRejectedError,
            "bad_thing",
            "bad_thing",
        ),
        (
            answer(400, {"error": "Bad Request", "message": "code missing"}),
            RequestRejectedError,
            "Bad Request: code missing",
            None,
        ),
        (answer(404, {"error": ["odd"], "message": 7}), NotFoundError, "not found", None),
        (answer(500, "database down"), ServerError, "database down", None),
        # Plain text and HTML: the text itself, or the page's title, never markup.
        (
            answer(401, text="Invalid API key", headers={"content-type": "text/plain"}),
            AuthenticationError,
            "Invalid API key",
            None,
        ),
        (
            answer(
                403, text="<html><head><title>Plan required</title></head><body>x</body></html>"
            ),
            PlanError,
            "Plan required",
            None,
        ),
        (
            answer(
                502,
                text="<html><head><title>502 Bad Gateway</title></head>"
                "<body><h1>502</h1></body></html>",
            ),
            BadAnswerError,
            "502 Bad Gateway",
            None,
        ),
        (
            answer(500, text="upstream exploded", headers={"content-type": "text/plain"}),
            BadAnswerError,
            "upstream exploded",
            None,
        ),
        # 402: a plan limit on one action, not a plan without API access.
        (
            answer(
                402, {"error": "plan_limit_reached", "message": "The starter plan allows 3 passes"}
            ),
            PlanLimitError,
            "The starter plan allows 3 passes",
            "plan_limit_reached",
        ),
        (
            answer(402, {"error": "plan_not_supported"}),
            PlanLimitError,
            "plan not supported",
            "plan_not_supported",
        ),
        (
            answer(402, {"error": {"message": "Upgrade to Pro", "code": "plan_not_supported"}}),
            PlanLimitError,
            "Upgrade to Pro",
            "plan_not_supported",
        ),
    ],
)
async def test_every_error_shape_gives_the_best_human_message(
    handler: Callable[[httpx.Request], httpx.Response],
    error: type[Exception],
    message: str,
    code: str | None,
) -> None:
    async with client_for(handler) as client:
        with pytest.raises(error) as info:
            await client.create_pass(template_id="t")
    text = str(info.value)
    assert message in text
    for junk in ("[object", "{'", '{"', "<", "None"):
        assert junk not in text, text
    assert getattr(info.value, "code", None) == code
    if isinstance(info.value, PlanLimitError):
        assert not isinstance(info.value, PlanError)  # a limit never halts scanning


async def test_a_long_html_page_is_cut_to_its_words() -> None:
    page = "<html><body>" + "<div>word</div>" * 500 + "</body></html>"
    async with client_for(answer(400, text=page)) as client:
        with pytest.raises(BadAnswerError) as info:
            await client.create_pass(template_id="t")
    assert "<" not in str(info.value) and len(str(info.value)) < 400
