"""Is PassQR there, does it take the key, and how much of the rate budget is left?

One harmless ``GET /templates?limit=1``, twice, to tell the connection set-up
from the round trip; a recording transport keeps the last answer, whose
rate-limit headers the report reads. A failure is put in words by
:mod:`scanner.explain`, like everywhere else; a certificate the kiosk refused gets
:mod:`~scanner.doctor.tls`'s fix (a venue hub's own certificate as ``api.ca_file``).
When all went well, one ``GET /hub/status`` tells a venue hub from PassQR
(:mod:`~scanner.doctor.hub`).
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import httpx

from scanner.api import PassQRClient
from scanner.config import Config
from scanner.doctor.hub import check_hub
from scanner.doctor.report import Check, Status
from scanner.doctor.tls import certificate_fix
from scanner.errors import APIError, RateLimitedError, TransportError
from scanner.explain import describe, explain

__all__ = ["check_api", "rate_budget"]


class _Recorder(httpx.AsyncBaseTransport):
    """Keeps the last response, so the report can read its rate-limit headers."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.last: httpx.Response | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.last = response
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


_REMAINING = ("x-ratelimit-remaining", "ratelimit-remaining", "x-rate-limit-remaining")
_LIMIT = ("x-ratelimit-limit", "ratelimit-limit", "x-rate-limit-limit")


def _first_int(headers: Mapping[str, str], names: Sequence[str]) -> int | None:
    for name in names:
        value = headers.get(name, "").split(",")[0].split(";")[0].strip()
        if value.isdigit():
            return int(value)
    return None


def _structured(value: str) -> dict[str, str]:
    """draft-ietf-httpapi-ratelimit-headers: ``limit=100, remaining=50, reset=5``
    (or a named policy: ``"default";r=50;t=30``)."""
    params: dict[str, str] = {}
    for part in value.replace(";", ",").split(","):
        key, _, text = part.strip().partition("=")
        params[key.strip().lower()] = text.strip()
    return params


def rate_budget(headers: Mapping[str, str]) -> tuple[int, int | None] | None:
    """(remaining, limit) from ``X-RateLimit-*``, ``RateLimit-*`` or ``RateLimit:`` headers."""
    lower = {k.lower(): v for k, v in headers.items()}
    remaining = _first_int(lower, _REMAINING)
    limit = _first_int(lower, _LIMIT)
    if remaining is None and lower.get("ratelimit"):
        params = _structured(lower["ratelimit"])
        for key in ("remaining", "r"):
            if params.get(key, "").isdigit():
                remaining = int(params[key])
                break
        if limit is None and params.get("limit", "").isdigit():
            limit = int(params["limit"])
    if remaining is None:
        return None
    return remaining, limit


@dataclass
class _Probe:
    """What the two requests showed."""

    timings: list[float] = field(default_factory=list)
    error: APIError | None = None
    last: httpx.Response | None = None


async def _probe(config: Config, key: str, verify: ssl.SSLContext | bool) -> _Probe:
    recorder = _Recorder(httpx.AsyncHTTPTransport(verify=verify))
    api = config.api
    client = PassQRClient.from_config(api, key, transport=recorder)
    probe = _Probe()
    try:
        for _ in range(2):
            started = time.perf_counter()
            try:
                await client.list_templates(limit=1)
            except APIError as err:
                if recorder.last is not None:
                    probe.timings.append((time.perf_counter() - started) * 1000)
                probe.error = err
                break
            probe.timings.append((time.perf_counter() - started) * 1000)
    finally:
        await client.aclose()
    probe.last = recorder.last
    return probe


def _verify(config: Config) -> ssl.SSLContext | bool | Check:
    """What TLS trusts: the system's CAs, or ``api.ca_file``'s (a FAIL when it is unusable)."""
    if config.api.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(config.api.ca_file))
    except (OSError, ssl.SSLError) as err:
        return Check(
            name="api server",
            status=Status.FAIL,
            detail=f"api.ca_file {config.api.ca_file}: unusable ({err})",
            fix="point api.ca_file at a PEM bundle with the server's CA certificate",
        )


def _round_trip(base: str, timings: Sequence[float]) -> Check:
    if len(timings) == 1:
        rtt = f"answered in {timings[0]:.0f} ms"
    else:
        rtt = f"round trip {timings[1]:.0f} ms ({timings[0]:.0f} ms with connection set-up)"
    return Check(name="api server", status=Status.OK, detail=f"{base}: {rtt}")


def _key_accepted(error: APIError | None) -> Check:
    name = "api key accepted"
    if error is None:
        return Check(name=name, status=Status.OK, detail="yes (200)")
    # A 429 says the key works: only the pace is wrong.
    status = Status.WARN if isinstance(error, RateLimitedError) else Status.FAIL
    return Check(name=name, status=status, detail=describe(error), fix=explain(error).fix)


def _budget(last: httpx.Response) -> Check:
    name = "api rate budget"
    budget = rate_budget(last.headers)
    if budget is None:
        return Check(name=name, status=Status.OK, detail="not reported by the server")
    remaining, limit = budget
    of = f" of {limit}" if limit is not None else ""
    low = limit is not None and remaining < max(limit // 10, 1)
    return Check(
        name=name,
        status=Status.WARN if low else Status.OK,
        detail=f"{remaining}{of} requests left in this window",
        fix="the budget is nearly spent: something else may share this key or IP" if low else "",
    )


async def check_api(config: Config, key: str) -> list[Check]:
    """``api server`` (reached, round trip), ``api key accepted`` and ``api rate budget``;
    then, when the key was accepted, the hub's lines if ``api.base_url`` is a venue hub."""
    verify = _verify(config)
    if isinstance(verify, Check):
        return [verify]
    probe = await _probe(config, key, verify)
    if isinstance(probe.error, TransportError):
        return [
            Check(
                name="api server",
                status=Status.FAIL,
                detail=describe(probe.error),
                fix=await certificate_fix(config, probe.error) or explain(probe.error).fix,
            ),
            Check(name="api key accepted", status=Status.SKIP, detail="the server was not reached"),
        ]
    checks = [_round_trip(config.api.base_url, probe.timings)] if probe.timings else []
    checks.append(_key_accepted(probe.error))
    if probe.last is not None:
        checks.append(_budget(probe.last))
    if probe.error is None:
        checks += await check_hub(config, key, verify)
    return checks
