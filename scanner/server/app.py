"""The Starlette application: routes, authentication, envelopes and errors.

Order of checks for a request: rate limit (middleware, before anything else),
route and method (404/405), authentication (401/403), query string, path
parameters, headers and body (400/415/413), the plan (402), then the store
(404/409/422, 402 past the plan's pass quota, or 503 when another process
holds the write lock too long). Every store call names the business of the
request's key: nothing of another business is ever read or changed. Every answer,
including Starlette's own 404/405 and unexpected failures, is JSON:
`{"data": ...}` on success and `{"error", "message"}` otherwise; the HTTP
layer's own refusals (`protocol`) use the same envelope.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scanner.server import openapi
from scanner.server.auth import (
    DEFAULT_PASS_QUOTAS,
    PLANS,
    ApiKey,
    KeyCache,
    hash_key,
    key_from_header,
)
from scanner.server.database import Database
from scanner.server.errors import (
    ERROR_TYPES,
    ApiError,
    ConflictError,
    DatabaseBusyError,
    DatabaseFullError,
    NotFoundError,
    QuotaError,
    StoreError,
    UnknownTemplateError,
    shown,
)
from scanner.server.fields import (
    PASS_CREATE_FIELDS,
    PASS_UPDATE_FIELDS,
    TEMPLATE_FIELDS,
    VALIDATE_FIELDS,
    names,
    read,
)
from scanner.server.ratelimit import RateLimitMiddleware, RateLimits
from scanner.server.store import IdempotencyMismatchError, IdempotencyScope, Operation, Store, dumps
from scanner.server.validation import (
    MAX_BODY_BYTES,
    canonical_json,
    idempotency_key,
    json_media_type,
    normalise_code,
    page_params,
    parse_object,
    parse_query,
    status_param,
    uuid_value,
)

logger = logging.getLogger(__name__)

PREFIX = "/api/v1"
JSON = "application/json"
_WWW_AUTHENTICATE = {"WWW-Authenticate": 'Bearer realm="passqr"'}
#: Seconds a client is told to wait after the database was busy (503).
_BUSY_RETRY_AFTER = 1
#: Seconds a client is told to wait after the disk was full (503).
_FULL_RETRY_AFTER = 30


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(dumps(payload), status_code=status, media_type=JSON, headers=headers)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, *, error: str | None = None
) -> Response:
    return json_response(
        status, {"error": error or ERROR_TYPES.get(status, "Error"), "message": message}, headers
    )


def _fingerprint(method: str, path: str, body: str | bytes) -> str:
    digest = hashlib.sha256(f"{method} {path}\n".encode())
    digest.update(body.encode("utf-8") if isinstance(body, str) else body)
    return digest.hexdigest()


async def read_body(request: Request) -> bytes:
    """The request body: JSON by its Content-Type (415), at most `MAX_BODY_BYTES` (413).

    Both are judged from the headers before any of the body is read.
    """
    declared = request.headers.get("content-length")
    has_body = (declared is not None and declared.strip() != "0") or (
        "transfer-encoding" in request.headers
    )
    json_media_type(request.headers.get("content-type"), has_body=has_body)
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"Request body is larger than {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"Request body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class ErrorGuard:
    """Outermost middleware: any unexpected exception becomes a logged, generic 500.

    Starlette's own `ServerErrorMiddleware` would re-raise after answering
    (a second traceback in the server log); this one answers once and stops.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except ClientDisconnect:
            logger.debug("Client went away during %s %s", scope["method"], scope["path"])
        except Exception:
            logger.exception("Unexpected error answering %s %s", scope["method"], scope["path"])
            if not started:
                response = error_response(500, "The server failed to answer; see its log")
                await response(scope, receive, send)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.headers, error=exc.error)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own errors (unknown route, wrong method) in the API's error shape."""
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 404:
        message = f"No such endpoint: {shown(request.scope['path'])}"
    elif exc.status_code == 405:
        allowed = sorted(m.strip() for m in headers.get("Allow", "").split(",") if m.strip())
        headers["Allow"] = ", ".join(allowed)
        message = (
            f"Method {shown(request.method, 20)} is not allowed here; allowed: {headers['Allow']}"
        )
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, message, headers)


class PassQRService:
    """The endpoints; holds the database (opened by the lifespan) and the key cache."""

    def __init__(
        self,
        db_path: Path,
        *,
        auth_cache_ttl: float,
        pass_quotas: Mapping[str, int | None] = DEFAULT_PASS_QUOTAS,
    ) -> None:
        self.db_path = db_path
        self.pass_quotas = dict(pass_quotas)
        self._db: Database | None = None
        self._keys = KeyCache(auth_cache_ttl)
        self._openapi = dumps(openapi.DOCUMENT)

    @property
    def db(self) -> Database:
        if self._db is None:  # pragma: no cover - only before lifespan startup
            raise RuntimeError("the database is not open (lifespan not started)")
        return self._db

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._db = await Database.open(self.db_path)
        logger.info("Database %s open", self.db_path)
        try:
            yield
        finally:
            db, self._db = self._db, None
            await db.close()
            logger.info("Database %s closed", self.db_path)

    def routes(self) -> list[Route]:
        routes = [
            Route(f"{PREFIX}/openapi.json", self.openapi_document, methods=["GET"]),
            Route(f"{PREFIX}/passes", self.passes, methods=["GET", "POST"]),
            Route(
                f"{PREFIX}/passes/{{pass_id}}", self.pass_item, methods=["GET", "PATCH", "DELETE"]
            ),
            Route(f"{PREFIX}/passes/{{pass_id}}/push", self.push, methods=["POST"]),
            Route(f"{PREFIX}/templates", self.templates, methods=["GET", "POST"]),
            Route(
                f"{PREFIX}/templates/{{template_id}}",
                self.template_item,
                methods=["GET", "PATCH", "DELETE"],
            ),
            Route(f"{PREFIX}/validate", self.validate, methods=["POST"]),
        ]
        for route in routes:
            # Starlette adds HEAD to every GET route; the API does not offer it (405).
            assert route.methods is not None
            route.methods.discard("HEAD")
        return routes

    # -- plumbing ------------------------------------------------------------------------

    async def authenticate(self, request: Request) -> ApiKey:
        key = key_from_header(request.headers.get("authorization"))
        if key is None:
            raise ApiError(
                401,
                "Missing or malformed Authorization header; expected 'Bearer pqr_live_...'",
                headers=_WWW_AUTHENTICATE,
            )
        key_hash = hash_key(key)
        api_key = self._keys.get(key_hash)
        if api_key is None:
            api_key = await self.db.read(Store.find_key, key_hash)
            if api_key is None:
                raise ApiError(401, "Invalid API key", headers=_WWW_AUTHENTICATE)
            self._keys.put(key_hash, api_key)
        if not api_key.has_api_access:
            raise ApiError(
                403, f"The {api_key.plan} plan has no API access; upgrade to starter or pro"
            )
        return api_key

    async def _read(self, fn: Callable[..., Any], *args: Any) -> Response:
        """`fn(store, *args)` on the read-only connection, as a 200."""
        try:
            payload = await self.db.read(fn, *args)
        except StoreError as err:
            raise _translate(err) from err
        return json_response(200, payload)

    async def _write(self, operation: Operation, scope: IdempotencyScope | None = None) -> Response:
        try:
            answer = await self.db.execute(operation, scope)
        except StoreError as err:
            raise _translate(err) from err
        headers: dict[str, str] = {}
        if scope is not None:
            # Echoed (as Stripe does) so a client knows this server honours the key.
            headers["Idempotency-Key"] = scope.key
        if answer.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(answer.body, status_code=answer.status, media_type=JSON, headers=headers)

    async def _post(
        self,
        request: Request,
        api_key: ApiKey,
        allowed: Iterable[str],
        build: Callable[[dict[str, Any]], Operation],
    ) -> Response:
        """A POST: strict body, then the operation under the request's Idempotency-Key."""
        idem = idempotency_key(request.headers.get("idempotency-key"))
        raw = await read_body(request)
        return await self._post_raw(request, api_key, idem, raw, allowed, build)

    async def _post_raw(
        self,
        request: Request,
        api_key: ApiKey,
        idem: str | None,
        raw: bytes,
        allowed: Iterable[str],
        build: Callable[[dict[str, Any]], Operation],
    ) -> Response:
        """`_post` of a body already read."""
        try:
            body = parse_object(raw, allowed)
            operation = build(body)
        except ApiError:
            if idem is not None:
                raw_scope = self.scope_of(request, api_key, idem, raw)
                if await self.db.read(Store.idempotency_mismatch, raw_scope):
                    raise _idempotency_mismatch() from None
            raise
        scope = None if idem is None else self.scope_of(request, api_key, idem, body)
        return await self._write(operation, scope)

    @staticmethod
    def scope_of(
        request: Request, api_key: ApiKey, idem: str, body: bytes | dict[str, Any]
    ) -> IdempotencyScope:
        """The Idempotency-Key's scope: the key's business and id, and the request's fingerprint
        (of the canonical JSON of a parsed body, or of the raw bytes of one that is not)."""
        content = body if isinstance(body, bytes) else canonical_json(body)
        return IdempotencyScope(
            business=api_key.business,
            api_key_id=api_key.id,
            key=idem,
            fingerprint=_fingerprint(request.method, request.scope["path"], content),
        )

    # -- endpoints -----------------------------------------------------------------------

    async def openapi_document(self, request: Request) -> Response:
        parse_query(request.scope["query_string"], ())
        return Response(self._openapi, media_type=JSON)

    async def passes(self, request: Request) -> Response:
        api_key = await self.authenticate(request)
        business = api_key.business
        if request.method == "GET":
            params = parse_query(
                request.scope["query_string"], ("page", "limit", "template_id", "status")
            )
            page = page_params(params)
            template_id = (
                uuid_value(params["template_id"], "template_id")
                if "template_id" in params
                else None
            )
            status = status_param(params)
            return await self._read(
                lambda store: store.list_passes(
                    page, business, template_id=template_id, status=status
                )
            )
        parse_query(request.scope["query_string"], ())
        quota = self.pass_quotas.get(api_key.plan)
        return await self._post(
            request,
            api_key,
            names(PASS_CREATE_FIELDS),
            lambda body: _build_pass_create(body, api_key, quota),
        )

    async def pass_item(self, request: Request) -> Response:
        business = (await self.authenticate(request)).business
        parse_query(request.scope["query_string"], ())
        pass_id = uuid_value(request.path_params["pass_id"], "pass id")
        if request.method == "GET":
            return await self._read(lambda store: {"data": store.get_pass(pass_id, business)})
        if request.method == "DELETE":
            return await self._write(lambda store: (200, store.revoke_pass(pass_id, business)))
        body = parse_object(await read_body(request), names(PASS_UPDATE_FIELDS))
        changes = read(PASS_UPDATE_FIELDS, body, creating=False)
        return await self._write(
            lambda store: (200, {"data": store.update_pass(pass_id, changes, business)})
        )

    async def push(self, request: Request) -> Response:
        """Notify the pass's wallet holders, as PassQR's studio asks for it (no body).

        This server has no wallet devices registered, so a pro key gets
        `attempted: 0`; a plan without push gets PassQR's 402.
        """
        api_key = await self.authenticate(request)
        parse_query(request.scope["query_string"], ())
        pass_id = uuid_value(request.path_params["pass_id"], "pass id")
        raw = await read_body(request)
        if raw.strip():
            parse_object(raw, ())
        if not api_key.can_push:
            raise ApiError(
                402,
                f"Push notifications need the pro plan; this key's plan is {api_key.plan}",
                error="plan_not_supported",
            )
        business = api_key.business

        def answer(store: Store) -> dict[str, Any]:
            return {
                "attempted": 0,
                "message": "This server has no wallet devices registered: no push was sent",
                "data": store.get_pass(pass_id, business),
            }

        return await self._read(answer)

    async def templates(self, request: Request) -> Response:
        api_key = await self.authenticate(request)
        business = api_key.business
        if request.method == "GET":
            page = page_params(parse_query(request.scope["query_string"], ("page", "limit")))
            return await self._read(Store.list_templates, page, business)
        parse_query(request.scope["query_string"], ())
        return await self._post(
            request,
            api_key,
            names(TEMPLATE_FIELDS),
            lambda body: _build_template_create(body, business),
        )

    async def template_item(self, request: Request) -> Response:
        business = (await self.authenticate(request)).business
        parse_query(request.scope["query_string"], ())
        template_id = uuid_value(request.path_params["template_id"], "template id")
        if request.method == "GET":
            return await self._read(
                lambda store: {"data": store.get_template(template_id, business)}
            )
        if request.method == "DELETE":
            return await self._write(
                lambda store: (
                    200,
                    {
                        "data": store.delete_template(template_id, business),
                        "message": "Template deleted",
                    },
                )
            )
        body = parse_object(await read_body(request), names(TEMPLATE_FIELDS))
        changes = read(TEMPLATE_FIELDS, body, creating=False)
        return await self._write(
            lambda store: (200, {"data": store.update_template(template_id, changes, business)})
        )

    async def validate(self, request: Request) -> Response:
        api_key = await self.authenticate(request)
        parse_query(request.scope["query_string"], ())
        key_id, business = api_key.id, api_key.business

        def build(body: dict[str, Any]) -> Operation:
            given: str = read(VALIDATE_FIELDS, body, creating=True)["code"]
            code = normalise_code(given)
            return lambda store: (200, store.validate(code, given, key_id, business))

        return await self._post(request, api_key, names(VALIDATE_FIELDS), build)


def _translate(err: StoreError) -> ApiError:
    if isinstance(err, NotFoundError):
        return ApiError(404, str(err))
    if isinstance(err, ConflictError):
        return ApiError(409, str(err))
    if isinstance(err, UnknownTemplateError):
        return ApiError(400, str(err))
    if isinstance(err, QuotaError):
        return ApiError(402, str(err), error="plan_limit_reached")
    if isinstance(err, IdempotencyMismatchError):
        return _idempotency_mismatch()
    if isinstance(err, DatabaseBusyError):
        return _busy()
    if isinstance(err, DatabaseFullError):
        logger.error("Database write failed: the disk is full (%s)", err)
        return ApiError(
            503,
            "The server's disk is full: nothing can be recorded until space is freed",
            headers={"Retry-After": str(_FULL_RETRY_AFTER)},
        )
    raise err


def _busy() -> ApiError:
    return ApiError(
        503,
        f"The database is locked by another process; retry in {_BUSY_RETRY_AFTER} s",
        headers={"Retry-After": str(_BUSY_RETRY_AFTER)},
    )


async def _store_busy(request: Request, exc: Exception) -> Response:
    """A lock held elsewhere outside `_read`/`_write` (an API key lookup, say)."""
    assert isinstance(exc, DatabaseBusyError)
    error = _busy()
    return error_response(error.status, error.message, error.headers)


def _idempotency_mismatch() -> ApiError:
    return ApiError(
        422, "This Idempotency-Key was already used for a different request; use a new key"
    )


def _build_pass_create(body: dict[str, Any], api_key: ApiKey, quota: int | None) -> Operation:
    """The create, behind the plan's quota (counted in the same transaction, so races hold)."""
    values = read(PASS_CREATE_FIELDS, body, creating=True)
    business = api_key.business

    limit = None if quota is None else (api_key.plan, quota)

    def create(store: Store) -> tuple[int, Any]:
        return 201, {"data": store.create_pass(business=business, quota=limit, **values)}

    return create


def _build_template_create(body: dict[str, Any], business: str) -> Operation:
    values = read(TEMPLATE_FIELDS, body, creating=True)
    return lambda store: (201, {"data": store.create_template(values, business)})


def check_quotas(given: Mapping[str, int | None]) -> dict[str, int | None]:
    """`DEFAULT_PASS_QUOTAS` with `given` over it.

    Raises:
        ValueError: an unknown plan or a negative quota.
    """
    quotas = dict(DEFAULT_PASS_QUOTAS)
    for plan, quota in given.items():
        if plan not in PLANS:
            raise ValueError(f"unknown plan {plan!r} for a pass quota; plans: {', '.join(PLANS)}")
        if quota is not None and quota < 0:
            raise ValueError(f"the {plan} pass quota must be 0 or more, or unlimited")
        quotas[plan] = quota
    return quotas


def create_app(
    db_path: Path,
    *,
    rate_limit: bool = True,
    limits: RateLimits | None = None,
    auth_cache_ttl: float = 5.0,
    pass_quotas: Mapping[str, int | None] | None = None,
) -> Starlette:
    """Build the PassQR API as a Starlette application.

    The database is opened (and created) by the application's lifespan, on
    a dedicated thread, and closed on shutdown.

    Args:
        db_path: the SQLite file; it and its parent directory are created if missing.
        rate_limit: apply per-IP rate limits (off for tests and benchmarks).
        limits: the limits and window; PassQR's documented ones by default.
        auth_cache_ttl: seconds a successful key lookup is cached.
        pass_quotas: plan -> most passes a business may hold (None: no limit); plans
            not named keep `DEFAULT_PASS_QUOTAS`.

    Raises:
        ValueError: `pass_quotas` names an unknown plan or a negative quota.
    """
    quotas = check_quotas(pass_quotas or {})
    service = PassQRService(db_path, auth_cache_ttl=auth_cache_ttl, pass_quotas=quotas)
    return application(service, limits=(limits or RateLimits()) if rate_limit else None)


def application(service: PassQRService, *, limits: RateLimits | None) -> Starlette:
    """The Starlette application of `service`: its routes, the JSON error envelope for
    everything, and per-IP rate limits when `limits` is given."""
    middleware = [Middleware(ErrorGuard)]
    if limits is not None:
        middleware.append(Middleware(RateLimitMiddleware, limits=limits))
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        ApiError: _api_error,
        HTTPException: _http_error,
        DatabaseBusyError: _store_busy,
    }
    app = Starlette(
        routes=service.routes(),
        middleware=middleware,
        exception_handlers=handlers,
        lifespan=service.lifespan,
    )
    app.router.redirect_slashes = False
    app.state.service = service
    return app
