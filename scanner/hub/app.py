"""The hub's API: PassQR's own, decided from the mirror, with the upstream behind it.

`HubService` is the local server's service with these differences:

- keys are the hub's (`hub gate-key`), each with a role: a gate validates and reads,
  staff and admin keys may also write; no per-IP limits (the LAN is the venue's);
- `POST /validate` is decided in the mirror, and an admission is queued for the
  upstream in the same transaction; a code the mirror does not know is asked
  upstream at once (live budget) instead of answered `not_found`;
- writes (passes, templates, push) go upstream under the request's Idempotency-Key
  and reach the mirror when the upstream accepts them; a pass id the mirror does not
  know is looked up upstream;
- `GET /hub/status` (any hub key) and the `/hub` dashboard.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from scanner.explain import GATE_KEY_READ_ONLY
from scanner.hub import fresh, mirror, tables
from scanner.hub.config import HubConfig
from scanner.hub.status import status_payload
from scanner.hub.upstream import Budget, Upstream, UpstreamError, budget_recorder
from scanner.hub.worker import HubWorkers
from scanner.server.app import JSON, PassQRService, application, read_body
from scanner.server.auth import PLANS, ApiKey
from scanner.server.errors import ApiError
from scanner.server.fields import (
    PASS_CREATE_FIELDS,
    PASS_UPDATE_FIELDS,
    RESULTS,
    TEMPLATE_FIELDS,
    VALIDATE_FIELDS,
    names,
    read,
)
from scanner.server.ratelimit import SlidingWindowLimiter
from scanner.server.store import Operation, Store
from scanner.server.validation import (
    idempotency_key,
    normalise_code,
    now_timestamp,
    page_params,
    parse_object,
    parse_query,
    status_param,
    uuid_value,
)

logger = logging.getLogger(__name__)

#: How long a gate's scan may wait for the upstream budget, and for the upstream's answer,
#: when the mirror does not know the code (the kiosk's own timeout is longer).
LIVE_WAIT_S = 1.0
LIVE_TIMEOUT_S = 3.0
#: How long an unanswered ask's key is reused for the same code (a rescan after a timeout).
IN_DOUBT_TTL_S = 600.0
#: A code the upstream said it does not know is not asked again for this long.
NOT_FOUND_TTL_S = 60.0
_NOT_FOUND_MAX = 10_000
#: Seconds a key's lookup (and role) is cached: a revoked gate key stops working within it.
KEY_CACHE_S = 5.0


class HubService(PassQRService):
    """The endpoints of the hub; owns the upstream client and the background workers."""

    def __init__(self, config: HubConfig, upstream_key: str, *, transport: Any = None) -> None:
        super().__init__(config.hub.db, auth_cache_ttl=5.0, pass_quotas=dict.fromkeys(PLANS, None))
        self.config = config
        self._upstream_key = upstream_key
        self._transport = transport
        self._upstream: Upstream | None = None
        self._workers: HubWorkers | None = None
        self._roles: dict[str, tuple[str, float]] = {}
        self.last_seen: dict[str, float] = {}
        self._not_found: dict[str, float] = {}
        self._asking: dict[str, asyncio.Future[None]] = {}
        self._in_doubt: dict[str, tuple[str, float]] = {}
        #: Upstream asks for unknown codes one gate may make per window.
        self._asked = SlidingWindowLimiter(
            max(5, config.upstream.validate_per_min // 4), config.upstream.window_s
        )
        self.started_at = now_timestamp()

    @property
    def upstream(self) -> Upstream:
        if self._upstream is None:  # pragma: no cover - only before lifespan startup
            raise RuntimeError("the hub is not started")
        return self._upstream

    @property
    def workers(self) -> HubWorkers:
        if self._workers is None:  # pragma: no cover - only before lifespan startup
            raise RuntimeError("the hub is not started")
        return self._workers

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        async with super().lifespan(app):
            db = self.db
            await db.call(tables.create_tables, db.store.connection)
            up = self.config.upstream
            limits = {
                "validate": up.validate_per_min,
                "read": up.read_per_min,
                "write": up.write_per_min,
            }
            budget = Budget(
                limits, up.window_s, budget_recorder(lambda fn: db.call(fn, db.store.connection))
            )
            since = time.time() - budget.window_s
            budget.load(await db.read(lambda store: tables.spent(store.connection, since)))
            self._upstream = Upstream(up, self._upstream_key, budget, transport=self._transport)
            self._workers = HubWorkers(db, self._upstream, sync_interval_s=up.sync_interval_s)
            self._workers.start()
            # Everything loaded so far lives as long as the hub: out of the collector's
            # sight, a full collection no longer stalls a round of gates for ~20 ms
            # (benchmarks/bench_hub.py: p99 28-36 ms before, 14-21 ms after).
            gc.freeze()
            logger.info("Hub upstream %s", self._upstream.base_url)
            try:
                yield
            finally:
                await self._workers.stop()
                await self._upstream.close()

    def routes(self) -> list[BaseRoute]:  # type: ignore[override]
        from scanner.hub.dashboard import dashboard_routes

        routes: list[BaseRoute] = [*super().routes()]
        status = Route("/hub/status", self.status, methods=["GET"])
        assert status.methods is not None
        status.methods.discard("HEAD")
        return [*routes, status, *dashboard_routes()]

    # -- keys and roles ------------------------------------------------------------------

    async def authenticate(self, request: Request) -> ApiKey:
        """The request's key and its role (`request.state.role`), once per request: a
        staff-read check before the server's own handler does not look it up twice."""
        known: ApiKey | None = getattr(request.state, "api_key", None)
        if known is not None:
            return known
        api_key = await super().authenticate(request)
        cached = self._roles.get(api_key.id)
        if cached is not None and cached[1] > time.monotonic():
            role = cached[0]
        else:
            found = await self.db.read(lambda store: tables.role_of(store.connection, api_key.id))
            if found is None:
                raise ApiError(401, "This key is not one of this hub's keys (hub gate-key)")
            role = found
            if len(self._roles) > 1000:
                self._roles.clear()
            self._roles[api_key.id] = (role, time.monotonic() + KEY_CACHE_S)
        self.last_seen[api_key.name] = time.time()
        request.state.role = role
        request.state.api_key = api_key
        return api_key

    async def _writer(self, request: Request) -> ApiKey:
        api_key = await self.authenticate(request)
        if request.state.role not in tables.WRITERS:
            raise ApiError(
                403,
                "A gate key validates and reads only; creating, changing or revoking passes "
                "and templates needs a staff key (passqr-scanner hub gate-key --role staff)",
                error=GATE_KEY_READ_ONLY,
            )
        return api_key

    # -- writes go upstream ----------------------------------------------------------------

    async def _forward(
        self, request: Request, path: str, raw: bytes, apply: Callable[..., Any] | None
    ) -> Response:
        """The write upstream (live budget); applied to the mirror when it succeeds."""
        idem = idempotency_key(request.headers.get("idempotency-key"))
        try:
            reply = await self.upstream.send(
                request.method,
                path,
                live=True,
                max_wait_s=2 * LIVE_WAIT_S,
                body=raw if raw.strip() else None,
                idem_key=idem,
            )
        except UpstreamError as err:
            raise _unavailable(err, "This change must be made by PassQR") from None
        if 200 <= reply.status < 300 and apply is not None:
            try:
                await self.workers.write(apply, reply.payload)
                await fresh.fill_templates(self.upstream, self.workers)
            except mirror.MirrorError as err:
                logger.warning(
                    "PassQR's answer to %s %s not mirrored: %s", request.method, path, err
                )
        headers = {"Idempotency-Key": idem} if idem else {}
        if reply.headers.get("idempotent-replayed"):
            headers["Idempotent-Replayed"] = "true"
        return Response(reply.body, status_code=reply.status, media_type=JSON, headers=headers)

    async def _staff_read(
        self,
        request: Request,
        path: str,
        query: tuple[str, ...],
        apply: Callable[[Any, Any, float], None],
    ) -> Response | None:
        """A staff or admin key's GET, from PassQR (see `fresh`); None for a gate's, or
        when PassQR cannot answer now: the mirror answers then."""
        await self.authenticate(request)
        if request.state.role not in tables.WRITERS:
            return None
        params = parse_query(request.scope["query_string"], query)
        if "page" in query:
            page_params(params)
        if "template_id" in params:
            uuid_value(params["template_id"], "template_id")
        if "status" in query:
            status_param(params)
        for name, value in request.path_params.items():
            uuid_value(value, name.replace("_", " "))
        return await fresh.from_upstream(self.upstream, self.workers, path, params, apply)

    async def passes(self, request: Request) -> Response:
        if request.method == "GET":
            query = ("page", "limit", "template_id", "status")
            answer = await self._staff_read(request, "/passes", query, fresh.pass_page)
            return answer or await super().passes(request)
        await self._writer(request)
        parse_query(request.scope["query_string"], ())
        raw = await read_body(request)
        read(PASS_CREATE_FIELDS, parse_object(raw, names(PASS_CREATE_FIELDS)), creating=True)
        return await self._forward(request, "/passes", raw, mirror.apply_pass)

    async def pass_item(self, request: Request) -> Response:
        if request.method == "GET":
            path = f"/passes/{request.path_params['pass_id']}"
            answer = await self._staff_read(request, path, (), fresh.one_pass)
            if answer is not None:
                return answer
            try:
                return await super().pass_item(request)
            except ApiError as err:
                if err.status != 404:
                    raise
                return await self._look_up_pass(request, err)
        await self._writer(request)
        parse_query(request.scope["query_string"], ())
        pass_id = uuid_value(request.path_params["pass_id"], "pass id")
        raw = await read_body(request)
        if request.method == "PATCH":
            read(PASS_UPDATE_FIELDS, parse_object(raw, names(PASS_UPDATE_FIELDS)), creating=False)
        return await self._forward(request, f"/passes/{pass_id}", raw, mirror.apply_pass)

    async def _look_up_pass(self, request: Request, not_here: ApiError) -> Response:
        """A pass made since the last sync: asked upstream (live read budget)."""
        pass_id = uuid_value(request.path_params["pass_id"], "pass id")
        try:
            reply = await self.upstream.send(
                "GET",
                f"/passes/{pass_id}",
                live=True,
                max_wait_s=LIVE_WAIT_S,
                deadline_s=LIVE_TIMEOUT_S,
            )
        except UpstreamError:
            raise not_here from None
        if reply.status != 200:
            raise not_here
        try:
            await self.workers.write(mirror.apply_pass, reply.payload)
        except mirror.MirrorError as err:
            logger.warning("PassQR's pass %s not mirrored: %s", pass_id, err)
            raise not_here from None
        return await super().pass_item(request)

    async def push(self, request: Request) -> Response:
        await self._writer(request)
        parse_query(request.scope["query_string"], ())
        pass_id = uuid_value(request.path_params["pass_id"], "pass id")
        raw = await read_body(request)
        if raw.strip():
            parse_object(raw, ())
        return await self._forward(request, f"/passes/{pass_id}/push", raw, None)

    async def templates(self, request: Request) -> Response:
        if request.method == "GET":
            query = ("page", "limit")
            answer = await self._staff_read(request, "/templates", query, fresh.template_page)
            return answer or await super().templates(request)
        await self._writer(request)
        parse_query(request.scope["query_string"], ())
        raw = await read_body(request)
        read(TEMPLATE_FIELDS, parse_object(raw, names(TEMPLATE_FIELDS)), creating=True)
        return await self._forward(request, "/templates", raw, mirror.apply_template)

    async def template_item(self, request: Request) -> Response:
        if request.method == "GET":
            path = f"/templates/{request.path_params['template_id']}"
            answer = await self._staff_read(request, path, (), fresh.one_template)
            return answer or await super().template_item(request)
        await self._writer(request)
        parse_query(request.scope["query_string"], ())
        template_id = uuid_value(request.path_params["template_id"], "template id")
        raw = await read_body(request)
        if request.method == "PATCH":
            read(TEMPLATE_FIELDS, parse_object(raw, names(TEMPLATE_FIELDS)), creating=False)
            return await self._forward(
                request, f"/templates/{template_id}", raw, mirror.apply_template
            )
        return await self._forward(
            request,
            f"/templates/{template_id}",
            raw,
            lambda conn, _: mirror.drop_template(conn, template_id),
        )

    # -- validation ----------------------------------------------------------------------

    async def validate(self, request: Request) -> Response:
        api_key = await self.authenticate(request)
        parse_query(request.scope["query_string"], ())
        idem = idempotency_key(request.headers.get("idempotency-key"))
        raw = await read_body(request)
        try:
            return await self._decide(request, api_key, idem, raw)
        except NotInMirror as unknown:
            code = unknown.code
        asking = self._asking.get(code)
        if asking is not None:
            # Another gate is asking PassQR about this code now: one ask, then the mirror.
            await asyncio.wait([asking])
            try:
                return await self._decide(request, api_key, idem, raw)
            except NotInMirror:
                raise ApiError(
                    503,
                    "This code is not in the venue's copy yet, and PassQR could not be asked; "
                    "retry",
                    headers={"Retry-After": "2"},
                ) from None
        self._check_allowance(api_key.name)
        done = asyncio.get_running_loop().create_future()
        self._asking[code] = done
        try:
            return await self._validate_upstream(request, api_key, idem, raw, code)
        finally:
            del self._asking[code]
            done.set_result(None)

    async def _decide(
        self, request: Request, api_key: ApiKey, idem: str | None, raw: bytes
    ) -> Response:
        """The mirror's decision (raises :class:`NotInMirror` for a code it lacks)."""
        upstream_key = idem or str(uuid.uuid4())
        response = await self._post_raw(
            request,
            api_key,
            idem,
            raw,
            names(VALIDATE_FIELDS),
            lambda body: _decide_here(body, api_key, upstream_key, self._recently_unknown),
        )
        self.workers.queued.set()
        return response

    def _check_allowance(self, gate: str) -> None:
        """At most a quarter of `validate_per_min` (at least 5) upstream asks for unknown codes
        per window per gate: one gate (or someone showing it random codes) cannot spend the
        venue's live budget.

        Raises:
            ApiError: 429 with Retry-After, this gate has asked its share.
        """
        retry = self._asked.hit(gate)
        if retry is not None:
            raise ApiError(
                429,
                f"This gate asked PassQR about {self._asked.limit} codes the venue's copy lacks "
                f"in {self._asked.window:g} s, its share; retry in {retry} s",
                headers={"Retry-After": str(retry)},
            )

    def _recently_unknown(self, code: str) -> bool:
        """Whether the upstream said lately that it does not know the code either.

        Read on the database's writer thread: a dict lookup, safe beside the loop's writes.
        """
        expiry = self._not_found.get(code)
        return expiry is not None and expiry > time.monotonic()

    async def _validate_upstream(
        self, request: Request, api_key: ApiKey, idem: str | None, raw: bytes, code: str
    ) -> Response:
        """A code the mirror does not know (a pass made minutes ago): PassQR decides.

        An ask that got no answer may still have counted a use upstream; the next ask for
        the same code (a rescan, at any gate) goes under the same key, so PassQR answers
        it with what it decided then instead of `used`.
        """
        doubt = self._in_doubt.get(code)
        if doubt is not None and doubt[1] > time.monotonic():
            upstream_key = doubt[0]
        else:
            upstream_key = idem or str(uuid.uuid4())
        try:
            reply = await self.upstream.send(
                "POST",
                "/validate",
                live=True,
                max_wait_s=LIVE_WAIT_S,
                body=json.dumps({"code": code}).encode(),
                idem_key=upstream_key,
                deadline_s=LIVE_TIMEOUT_S,
            )
        except UpstreamError as err:
            if err.reason in ("unreachable", "bad_answer"):
                if len(self._in_doubt) > _NOT_FOUND_MAX:
                    self._in_doubt = {}
                self._in_doubt[code] = (upstream_key, time.monotonic() + IN_DOUBT_TTL_S)
            raise _unavailable(err, "This code is not in the venue's copy yet") from None
        self._in_doubt.pop(code, None)
        data = reply.payload.get("data") if isinstance(reply.payload, dict) else None
        result = data.get("result") if isinstance(data, dict) else None
        if reply.status != 200 or not isinstance(data, dict) or result not in RESULTS:
            raise ApiError(502, f"PassQR's answer for this code could not be read ({reply.status})")
        if result == "not_found":
            if len(self._not_found) > _NOT_FOUND_MAX:
                self._not_found = {}
            self._not_found[code] = time.monotonic() + NOT_FOUND_TTL_S
        given = json.loads(raw)["code"]
        operation = _record_upstream(data, given, code, api_key, upstream_key)
        scope = None if idem is None else self.scope_of(request, api_key, idem, json.loads(raw))
        return await self._write(operation, scope)

    # -- status --------------------------------------------------------------------------

    async def status(self, request: Request) -> Response:
        await self.authenticate(request)
        parse_query(request.scope["query_string"], ())
        payload = await self.db.read(
            lambda store: status_payload(
                store.connection,
                started_at=self.started_at,
                last_seen=dict(self.last_seen),
                upstream=self.upstream,
                now_s=time.time(),
                synced_since_start=self.workers.last_sync is not None,
            )
        )
        return Response(json.dumps(payload), media_type=JSON, headers={"Cache-Control": "no-store"})


def _unavailable(err: UpstreamError, what: str) -> ApiError:
    """A request the hub cannot answer without the upstream, as 429/502/503 with Retry-After."""
    retry = max(1, math.ceil(err.retry_after_s or 5.0))
    headers = {"Retry-After": str(retry)}
    if err.reason in ("budget", "rate_limited"):
        return ApiError(
            429,
            f"{what}, and the venue's PassQR budget is spent; retry in {retry} s",
            headers=headers,
        )
    if err.reason == "unauthorized":
        return ApiError(502, f"{what}, and PassQR refuses the hub's own key (see the hub's log)")
    return ApiError(
        503, f"{what}, and the hub cannot reach PassQR now; retry in {retry} s", headers=headers
    )


class NotInMirror(Exception):
    """A well-formed code the mirror does not hold: the upstream is asked (nothing written)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def _decide_here(
    body: dict[str, Any],
    api_key: ApiKey,
    upstream_key: str,
    recently_unknown: Callable[[str], bool],
) -> Operation:
    """The mirror's decision; an admission is queued for the upstream in the same transaction.

    A code the mirror lacks (and the upstream did not lately say it lacks too) rolls the
    transaction back with :class:`NotInMirror`: the upstream decides it.
    """
    given: str = read(VALIDATE_FIELDS, body, creating=True)["code"]
    code = normalise_code(given)

    def decide(store: Store) -> tuple[int, Any]:
        conn = store.connection
        if code is not None and not mirror.knows_code(conn, code) and not recently_unknown(code):
            raise NotInMirror(code)
        answer = store.validate(code, given, api_key.id, api_key.business)
        data = answer["data"]
        if data["result"] == "valid" and code is not None:
            key = upstream_key if not tables.key_taken(conn, upstream_key) else str(uuid.uuid4())
            tables.enqueue(
                conn,
                idem_key=key,
                code=code,
                pass_id=data["pass"]["id"],
                gate=api_key.name,
                decided_at=now_timestamp(),
            )
        return 200, answer

    return decide


def _record_upstream(
    data: dict[str, Any], given: str, code: str, api_key: ApiKey, upstream_key: str
) -> Operation:
    """The upstream's decision on an unknown code: into the scan log, the mirror and (sent)
    the outbox; answered to the gate as the upstream gave it."""

    def record(store: Store) -> tuple[int, Any]:
        conn = store.connection
        record = data.get("pass")
        pass_id = record.get("id") if isinstance(record, dict) else None
        mirror.apply_validation(conn, data, code)
        tables.log_scan(
            conn,
            pass_id if isinstance(pass_id, str) else None,
            given,
            str(data["result"]),
            api_key.id,
        )
        if data["result"] == "valid" and not tables.key_taken(conn, upstream_key):
            tables.enqueue(
                conn,
                idem_key=upstream_key,
                code=code,
                pass_id=pass_id if isinstance(pass_id, str) else None,
                gate=api_key.name,
                decided_at=now_timestamp(),
                state="sent",
                upstream_result="valid",
            )
        return 200, {"data": data}

    return record


def create_hub_app(config: HubConfig, upstream_key: str, *, transport: Any = None) -> Starlette:
    """The hub as a Starlette application (the database opens with its lifespan)."""
    return application(HubService(config, upstream_key, transport=transport), limits=None)
