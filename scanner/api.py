"""The PassQR REST client.

One long-lived :class:`httpx.AsyncClient` with explicit timeouts. Every httpx
exception and every unexpected answer is translated here, once, into the tree of
:mod:`scanner.errors`; nothing above this module sees httpx. The API key lives
only inside an :class:`httpx.Auth` whose ``repr`` hides it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import html
import json
import logging
import math
import re
import ssl
import time
import uuid
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

import httpx

from scanner import __version__
from scanner.answers import bounded_body
from scanner.config import ApiConfig, check_base_url
from scanner.errors import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadAnswerError,
    NetworkError,
    NotFoundError,
    PlanError,
    PlanLimitError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    redact,
)
from scanner.models import Page, PassInfo, TemplateInfo, ValidationOutcome, ValidationResult

_log = logging.getLogger(__name__)

_MAX_MESSAGE = 200

#: PassQR's limits are per minute: no Retry-After needs to close a bucket for longer.
RETRY_AFTER_CAP_S = 60.0

#: What :meth:`PassQRClient.honours_idempotency` validates: never a pass code.
IDEMPOTENCY_PROBE_CODE = "PASSQR-SCANNER-IDEMPOTENCY-PROBE"


class _BearerAuth(httpx.Auth):
    """Adds the bearer header; its repr never shows the key."""

    def __init__(self, key: str) -> None:
        self._key = key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._key}"
        yield request

    def __repr__(self) -> str:
        return "<BearerAuth pqr_***>"


def _retry_after(value: str | None) -> float:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), 1 to 60."""
    if not value:
        return 1.0
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return 1.0
        seconds = when.timestamp() - time.time()
    if math.isnan(seconds) or math.isinf(seconds):
        return 1.0
    return min(max(seconds, 1.0), RETRY_AFTER_CAP_S)


#: Lists PassQR always has (and /validate, whose "not found" is a 200 result): a 404
#: for one of them is a wrong base URL, not a missing pass.
_ALWAYS_THERE = ("/passes", "/templates")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return redact(text[:_MAX_MESSAGE] + ("…" if len(text) > _MAX_MESSAGE else ""))


#: An `error` that is a machine word (`plan_limit_reached`), not a title or a sentence.
_CODE_WORD_RE = re.compile(r"[a-z][a-z0-9_]*")
_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_NOT_TEXT_RE = re.compile(r"<(script|style)[^>]*>.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)


def _string(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _word(value: Any) -> str | None:
    text = _string(value)
    return text if _CODE_WORD_RE.fullmatch(text) else None


def _humanised(code: str | None) -> str:
    return f"{code.replace('_', ' ')} ({code})" if code else ""


def explain(payload: Any) -> tuple[str, str | None]:
    """The best human message, and the machine word if any, of an error body.

    Reads every shape PassQR's own code handles: ``{"error": "msg"}``,
    ``{"message": "msg"}``, ``{"error": {"message": "msg"}}`` (or ``msg``,
    ``detail``, ``code`` inside), ``{"error": "Title", "message": "msg"}`` and
    ``{"error": "plan_limit_reached", "message": "msg"}``, or a bare JSON
    string. Anything else gives ``""``: never a repr of what came.
    """
    if isinstance(payload, str):
        return _short(payload), None
    if not isinstance(payload, dict):
        return "", None
    error = payload.get("error")
    message = _string(payload.get("message"))
    if isinstance(error, dict):
        code = _word(error.get("code"))
        inner = next(
            (_string(error.get(k)) for k in ("message", "msg", "detail") if _string(error.get(k))),
            "",
        )
        return _short(inner or message or _humanised(code)), code
    title = _string(error)
    code = _word(title)
    if code is not None:
        return _short(message or _humanised(code)), code
    return _short(": ".join(part for part in (title, message) if part)), None


def _page_text(response: httpx.Response) -> str:
    """What a person would read in a non-JSON answer: a page's title, or its words."""
    try:
        text = response.text
    except (UnicodeDecodeError, LookupError):
        return ""
    if "html" in response.headers.get("content-type", "").lower() or text.lstrip().startswith("<"):
        title = _TITLE_RE.search(text)
        text = title.group(1) if title and title.group(1).strip() else _NOT_TEXT_RE.sub(" ", text)
        text = html.unescape(text)
    return _short(text)


class PassQRClient:
    """Speaks the PassQR API (``../shared/spec/passqr-api.md``).

    Args:
        base_url: API root, e.g. ``https://passqr.com/api/v1``.
        api_key: the bearer key; kept out of every repr, log and exception.
        timeout_s: the whole-request deadline of one try: connecting, sending and
            reading the full answer (httpx's own timeouts are per read, so a server
            that drips its answer a byte at a time would otherwise hold a scan).
        allow_insecure_http: allow ``http://`` to a host that is not loopback.
        ca_file: an extra CA bundle; TLS is always verified.
        transport: an httpx transport (tests use :class:`httpx.MockTransport`
            only for failures the local server cannot provoke).

    Raises:
        ConfigError: at construction, for a base URL that is not allowed.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout_s: float = 3.0,
        allow_insecure_http: bool = False,
        ca_file: Path | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        check_base_url(base_url, allow_insecure_http=allow_insecure_http)
        self.base_url = base_url.rstrip("/")
        self._deadline_s = timeout_s
        timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0))
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            auth=_BearerAuth(api_key),
            timeout=timeout,
            headers={"User-Agent": f"passqr-scanner/{__version__}", "Accept": "application/json"},
            verify=ssl.create_default_context(cafile=str(ca_file)) if ca_file else True,
            transport=transport,
            limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=30.0),
            follow_redirects=False,
        )

    @classmethod
    def from_config(
        cls, api: ApiConfig, api_key: str, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> PassQRClient:
        """The client ``[api]`` describes: the one way the kiosk and the tools build it.

        Raises:
            ConfigError: a base URL that is not allowed.
        """
        return cls(
            api.base_url,
            api_key,
            timeout_s=api.timeout_s,
            allow_insecure_http=api.allow_insecure_http,
            ca_file=api.ca_file,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"<PassQRClient {self.base_url}>"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> PassQRClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- transport and error mapping -------------------------------------------------

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        return self._decode(
            await self._send(method, path, body=body, params=params, key=idempotency_key)
        )

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        key: str | None,
    ) -> httpx.Response:
        headers = {"Idempotency-Key": key} if key else None
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            async with (
                asyncio.timeout(self._deadline_s),
                self._http.stream(
                    method, path.lstrip("/"), json=body, params=query, headers=headers
                ) as response,
            ):
                content = await bounded_body(response, f"{method} {path}")
                return httpx.Response(
                    response.status_code,
                    headers=[
                        (k, v)
                        for k, v in response.headers.items()
                        if k.lower() not in ("content-encoding", "content-length")
                    ],
                    content=content,
                    request=response.request,
                )
        except TimeoutError as err:
            raise APITimeoutError(
                f"no full answer from {self.base_url} within {self._deadline_s:g} s"
            ) from err
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as err:
            raise APITimeoutError(
                f"cannot connect to {self.base_url} in time", maybe_delivered=False
            ) from err
        except httpx.TimeoutException as err:
            raise APITimeoutError(f"no answer from {self.base_url} in time") from err
        except (httpx.ConnectError, httpx.LocalProtocolError, httpx.UnsupportedProtocol) as err:
            reason = _short(str(err)) or type(err).__name__
            raise NetworkError(
                f"cannot reach {self.base_url}: {reason}", maybe_delivered=False
            ) from err
        except httpx.DecodingError as err:
            raise BadAnswerError(f"{method} {path}: the answer cannot be decoded") from err
        except httpx.TransportError as err:
            reason = _short(str(err)) or type(err).__name__
            raise NetworkError(f"connection to {self.base_url} lost: {reason}") from err

    def _decode(self, response: httpx.Response) -> Any:
        status = response.status_code
        payload: Any = None
        is_json = "json" in response.headers.get("content-type", "").lower()
        if is_json:
            try:
                payload = json.loads(response.content)
            except (ValueError, RecursionError):  # RecursionError: nested absurdly deep
                is_json = False
        where = f"{response.request.method} {response.request.url.path}"
        if 200 <= status < 300:
            if not is_json or not isinstance(payload, dict):
                raise BadAnswerError(
                    f"{where} answered {status} without a JSON object "
                    f"({response.headers.get('content-type', 'no content type')}): "
                    "is api.base_url right?",
                    status=status,
                )
            return payload
        message, code = explain(payload) if is_json else (_page_text(response), None)
        if status == 401:
            raise AuthenticationError(message or "API key rejected", status=status, code=code)
        if status == 402:
            # PassQR's answer to one action its plan does not allow (a quota spent, push
            # without pro): not a plan without API access, so scanning goes on.
            raise PlanLimitError(
                message or "the plan does not allow this", status=status, code=code
            )
        if status == 403:
            raise PlanError(message or "the plan has no API access", status=status, code=code)
        if status == 429:
            raise RateLimitedError(
                message or "rate limited",
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if not is_json:
            kind = response.headers.get("content-type", "no content type")
            said = f" ({message})" if message else ""
            raise BadAnswerError(
                f"{where} answered {status} with {kind} instead of JSON{said}: "
                "is api.base_url right?",
                status=status,
            )
        if status == 404:
            self._check_api_root(response.request, where)
            raise NotFoundError(message or "not found", status=status, code=code)
        if 400 <= status < 500:
            raise RequestRejectedError(
                message or f"request refused ({status})", status=status, code=code
            )
        if status >= 500:
            raise ServerError(message or f"server error ({status})", status=status, code=code)
        raise BadAnswerError(f"{where} answered unexpected status {status}", status=status)

    def _check_api_root(self, request: httpx.Request, where: str) -> None:
        """A 404 for what PassQR always has means this is not PassQR's API root.

        Raises:
            BadAnswerError: then.
        """
        path = request.url.path.rstrip("/")
        if path.endswith("/validate") or (request.method == "GET" and path.endswith(_ALWAYS_THERE)):
            raise BadAnswerError(
                f"{where} answered 404: no PassQR API at {self.base_url}: is api.base_url "
                "right? (it ends in /api/v1)",
                status=404,
            )

    @staticmethod
    def _data(payload: Mapping[str, Any], what: str) -> Any:
        if "data" not in payload:
            raise BadAnswerError(f"{what}: answer has no 'data'")
        return payload["data"]

    @staticmethod
    def _object(payload: Mapping[str, Any], what: str) -> Mapping[str, Any]:
        data = PassQRClient._data(payload, what)
        if not isinstance(data, dict):
            raise BadAnswerError(f"{what}: 'data' is not an object")
        return data

    def _page(self, payload: Mapping[str, Any], what: str, parse: Any) -> Page[Any]:
        data = self._data(payload, what)
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise BadAnswerError(f"{what}: 'data' is not a list of objects")
        meta = payload.get("meta") if isinstance(payload.get("meta"), dict) else {}
        assert isinstance(meta, dict)

        def num(key: str, default: int) -> int:
            value = meta.get(key)
            return value if isinstance(value, int) and not isinstance(value, bool) else default

        return Page(
            items=tuple(parse(x) for x in data),
            page=num("page", 1),
            limit=num("limit", len(data)),
            total=num("total", len(data)),
        )

    # -- validation -------------------------------------------------------------------

    async def validate(self, code: str, *, idempotency_key: str) -> ValidationResult:
        """Ask PassQR about one code; a ``valid`` answer has used the pass.

        Args:
            code: a normalised pass code.
            idempotency_key: the scan's UUID, the same on every try of one scan.

        Raises:
            APIError: any subclass; never for a denial (denials are results).
        """
        response = await self._send(
            "POST", "/validate", body={"code": code}, params=None, key=idempotency_key
        )
        result = parse_validation(self._decode(response))
        if response.headers.get("idempotent-replayed", "").lower() == "true":
            result = dataclasses.replace(result, replayed=True)
        return result

    async def honours_idempotency(self) -> bool:
        """Whether the server honours ``Idempotency-Key`` on ``POST /validate``.

        Asks about :data:`IDEMPOTENCY_PROBE_CODE`, which can never be a pass code
        (so nothing is used), with a fresh key: a server that honours keys echoes
        it (the local server and the hub do, as Stripe does).

        Raises:
            APIError: the server could not be asked.
        """
        key = str(uuid.uuid4())
        response = await self._send(
            "POST", "/validate", body={"code": IDEMPOTENCY_PROBE_CODE}, params=None, key=key
        )
        self._decode(response)
        return bool(response.headers.get("idempotency-key") == key)

    # -- passes -----------------------------------------------------------------------

    async def list_passes(
        self,
        *,
        page: int = 1,
        limit: int = 20,
        template_id: str | None = None,
        status: str | None = None,
    ) -> Page[PassInfo]:
        params = {"page": page, "limit": limit, "template_id": template_id, "status": status}
        payload = await self._request("GET", "/passes", params=params)
        return self._page(payload, "GET /passes", PassInfo.parse)

    async def get_pass(self, pass_id: str) -> PassInfo:
        payload = await self._request("GET", f"/passes/{pass_id}")
        return PassInfo.parse(self._object(payload, "GET /passes/{id}"))

    async def create_pass(
        self,
        *,
        template_id: str,
        holder_name: str | None = None,
        holder_email: str | None = None,
        max_uses: int | None = None,
        expires_at: str | None = None,
        data: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> PassInfo:
        body: dict[str, Any] = {"template_id": template_id}
        for key, value in (
            ("holder_name", holder_name),
            ("holder_email", holder_email),
            ("max_uses", max_uses),
            ("expires_at", expires_at),
            ("data", dict(data) if data is not None else None),
        ):
            if value is not None:
                body[key] = value
        response = await self._send("POST", "/passes", body=body, params=None, key=idempotency_key)
        info = PassInfo.parse(self._object(self._decode(response), "POST /passes"))
        if response.headers.get("idempotent-replayed", "").lower() == "true":
            info = dataclasses.replace(info, replayed=True)
        return info

    async def update_pass(self, pass_id: str, **fields: Any) -> PassInfo:
        payload = await self._request("PATCH", f"/passes/{pass_id}", body=fields)
        return PassInfo.parse(self._object(payload, "PATCH /passes/{id}"))

    async def revoke_pass(self, pass_id: str) -> PassInfo:
        payload = await self._request("DELETE", f"/passes/{pass_id}")
        return PassInfo.parse(self._object(payload, "DELETE /passes/{id}"))

    # -- templates --------------------------------------------------------------------

    async def list_templates(self, *, page: int = 1, limit: int = 20) -> Page[TemplateInfo]:
        payload = await self._request("GET", "/templates", params={"page": page, "limit": limit})
        return self._page(payload, "GET /templates", TemplateInfo.parse)

    async def get_template(self, template_id: str) -> TemplateInfo:
        payload = await self._request("GET", f"/templates/{template_id}")
        return TemplateInfo.parse(self._object(payload, "GET /templates/{id}"))

    async def create_template(
        self, *, name: str, idempotency_key: str | None = None, **fields: Any
    ) -> TemplateInfo:
        payload = await self._request(
            "POST", "/templates", body={"name": name, **fields}, idempotency_key=idempotency_key
        )
        return TemplateInfo.parse(self._object(payload, "POST /templates"))

    async def update_template(self, template_id: str, **fields: Any) -> TemplateInfo:
        payload = await self._request("PATCH", f"/templates/{template_id}", body=fields)
        return TemplateInfo.parse(self._object(payload, "PATCH /templates/{id}"))

    async def delete_template(self, template_id: str) -> None:
        await self._request("DELETE", f"/templates/{template_id}")


_OLD_STATUS = {
    "valid": ValidationOutcome.VALID,
    "expired": ValidationOutcome.EXPIRED,
    "used": ValidationOutcome.USED,
    "revoked": ValidationOutcome.REVOKED,
    "not_found": ValidationOutcome.NOT_FOUND,
}


def parse_validation(payload: Mapping[str, Any]) -> ValidationResult:
    """Read a validation answer in either spelling the spec knows.

    Current: ``{"data": {"result", "message", "pass", "template"}}``. Older:
    ``{"valid": true, "status": "valid", "pass": {"usesCount", ...}}``, bare or
    inside ``data``. Anything else with a recognisable shape but an unknown
    result is a denial that keeps the server's message.

    Raises:
        BadAnswerError: the answer has neither shape.
    """
    body: Any = payload.get("data", payload)
    if not isinstance(body, dict):
        raise BadAnswerError("POST /validate: 'data' is not an object")
    if isinstance(body.get("result"), str):
        word = body["result"]
    elif isinstance(body.get("status"), str) or isinstance(body.get("valid"), bool):
        word = body.get("status") if isinstance(body.get("status"), str) else None
        if word is None:
            word = "valid" if body.get("valid") is True else "denied"
        if body.get("valid") is False and word == "valid":
            word = "denied"
    else:
        raise BadAnswerError("POST /validate: answer has no 'result'")
    outcome = _OLD_STATUS.get(word.strip().lower(), ValidationOutcome.UNKNOWN)
    if outcome is ValidationOutcome.VALID and body.get("valid") is False:
        outcome = ValidationOutcome.UNKNOWN
    message = body.get("message") if isinstance(body.get("message"), str) else ""
    raw_pass = body.get("pass")
    raw_template = body.get("template")
    return ValidationResult(
        outcome=outcome,
        result=_short(word),
        message=_short(message or ""),
        pass_=PassInfo.parse(raw_pass) if isinstance(raw_pass, dict) else None,
        template=TemplateInfo.parse(raw_template) if isinstance(raw_template, dict) else None,
    )


__all__ = ["APIError", "PassQRClient", "parse_validation"]
