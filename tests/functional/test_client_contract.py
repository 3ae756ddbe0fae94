"""The PassQR client against the project's own server over loopback HTTP.

Every endpoint and every error status the client maps, with real requests.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from scanner.api import PassQRClient
from scanner.errors import (
    AuthenticationError,
    NotFoundError,
    PlanError,
    PlanLimitError,
    RateLimitedError,
    RequestRejectedError,
)
from scanner.models import ValidationOutcome
from scanner.server import RateLimits, ServerThread, create_key
from tests.conftest import LocalServer


def client(server: LocalServer, key: str | None = None) -> PassQRClient:
    return PassQRClient(server.base_url, key or server.api_key, timeout_s=5)


def key() -> str:
    return str(uuid.uuid4())


async def test_every_validation_outcome(local_server: LocalServer) -> None:
    codes = local_server.seed()
    async with client(local_server) as api:
        first = await api.validate(codes["valid"].lower(), idempotency_key=key())
        assert first.outcome is ValidationOutcome.VALID
        assert first.pass_ is not None and first.pass_.holder_name == "Ada Lovelace"
        assert first.pass_.uses_left == 0
        assert first.template is not None and first.template.name
        again = await api.validate(codes["valid"], idempotency_key=key())
        assert again.outcome is ValidationOutcome.USED
        for label, outcome in (
            ("used", ValidationOutcome.USED),
            ("expired", ValidationOutcome.EXPIRED),
            ("revoked", ValidationOutcome.REVOKED),
        ):
            result = await api.validate(codes[label], idempotency_key=key())
            assert result.outcome is outcome, label
        missing = await api.validate("PASS-ZZZZ0000", idempotency_key=key())
        assert missing.outcome is ValidationOutcome.NOT_FOUND
        assert missing.pass_ is None and missing.template is None and missing.message


async def test_same_idempotency_key_never_uses_twice(local_server: LocalServer) -> None:
    codes = local_server.seed()
    scan_id = key()
    async with client(local_server) as api:
        first = await api.validate(codes["valid"], idempotency_key=scan_id)
        retry = await api.validate(codes["valid"], idempotency_key=scan_id)
        assert first.outcome is retry.outcome is ValidationOutcome.VALID
        assert (first.replayed, retry.replayed) == (False, True)
        with pytest.raises(RequestRejectedError) as info:
            await api.validate(codes["season"], idempotency_key=scan_id)
        assert info.value.status == 422
        page = await api.list_passes(limit=100)
    (valid,) = [p for p in page.items if p.code == codes["valid"]]
    assert valid.uses_count == 1 and valid.status == "used"


async def test_the_local_server_says_it_honours_idempotency_keys(local_server: LocalServer) -> None:
    codes = local_server.seed()
    async with client(local_server) as api:
        assert await api.honours_idempotency()
        page = await api.list_passes(limit=100)
    assert all(p.uses_count == 0 for p in page.items if p.code == codes["valid"]), "no use"


async def test_racing_validations_of_a_single_use_pass(local_server: LocalServer) -> None:
    codes = local_server.seed()
    clients = [client(local_server) for _ in range(8)]
    try:
        results = await asyncio.gather(
            *(c.validate(codes["valid"], idempotency_key=key()) for c in clients)
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    outcomes = [r.outcome for r in results]
    assert outcomes.count(ValidationOutcome.VALID) == 1
    assert outcomes.count(ValidationOutcome.USED) == 7


async def test_templates_and_passes_lifecycle(local_server: LocalServer) -> None:
    async with client(local_server) as api:
        template = await api.create_template(name="Gala", type="event", color="#ff0000")
        assert template.id and template.name == "Gala"
        assert (await api.get_template(template.id)).color == "#ff0000"
        renamed = await api.update_template(template.id, name="Gala 2026")
        assert renamed.name == "Gala 2026"
        assert any(t.id == template.id for t in (await api.list_templates(limit=100)).items)

        created = await api.create_pass(
            template_id=template.id,
            holder_name="Eve",
            holder_email="eve@example.com",
            max_uses=2,
            data={"seat": "A1"},
        )
        assert created.code and created.code.startswith("PASS-")
        assert created.status == "active" and created.uses_count == 0
        assert created.data == {"seat": "A1"}
        fetched = await api.get_pass(created.id or "")
        assert fetched.holder_email == "eve@example.com"
        patched = await api.update_pass(created.id or "", holder_name="Eve Adams")
        assert patched.holder_name == "Eve Adams"
        listed = await api.list_passes(template_id=template.id, limit=1)
        assert listed.total == 1 and listed.limit == 1 and listed.items[0].id == created.id
        active = await api.list_passes(status="active", limit=100)
        assert any(p.id == created.id for p in active.items)
        revoked = await api.revoke_pass(created.id or "")
        assert revoked.status == "revoked"
        result = await api.validate(created.code or "", idempotency_key=key())
        assert result.outcome is ValidationOutcome.REVOKED

        other = await api.create_template(name="Spare")
        await api.delete_template(other.id or "")
        with pytest.raises(NotFoundError):
            await api.get_template(other.id or "")


async def test_not_found_and_bad_requests(local_server: LocalServer) -> None:
    async with client(local_server) as api:
        with pytest.raises(NotFoundError):
            await api.get_pass(str(uuid.uuid4()))
        with pytest.raises(RequestRejectedError) as info:
            await api.list_passes(limit=101)
        assert info.value.status == 400
        with pytest.raises(RequestRejectedError):
            await api.update_pass(str(uuid.uuid4()), uses_count=99)


async def test_wrong_key_is_an_authentication_error(local_server: LocalServer) -> None:
    async with client(local_server, "pqr_live_" + "x" * 40) as api:
        with pytest.raises(AuthenticationError) as info:
            await api.validate("PASS-ABCD1234", idempotency_key=key())
    assert info.value.status == 401
    assert "x" * 40 not in str(info.value)


async def test_free_plan_is_a_plan_error(local_server: LocalServer) -> None:
    free = create_key(local_server.db_path, name="free", plan="free")
    async with client(local_server, free) as api:
        with pytest.raises(PlanError) as info:
            await api.list_templates()
    assert info.value.status == 403


async def test_rate_limit_carries_retry_after(tmp_path: Path) -> None:
    db = tmp_path / "limited.sqlite3"
    api_key = create_key(db, plan="pro")
    limits = RateLimits(read=120, write=60, validate=3, window=60.0)
    with ServerThread(db, rate_limit=True, limits=limits) as server:
        async with PassQRClient(server.base_url, api_key) as api:
            for _ in range(3):
                await api.validate("PASS-ZZZZ0000", idempotency_key=key())
            with pytest.raises(RateLimitedError) as info:
                await api.validate("PASS-ZZZZ0000", idempotency_key=key())
            assert 1 <= info.value.retry_after <= 60
            # the validate budget is its own: reads still go through
            await api.list_templates()


async def test_plan_limits_businesses_and_expiry_through_the_client(tmp_path: Path) -> None:
    """Issue 14 through the kiosk's own client: 402 is a PlanLimitError, never a PlanError."""
    db = tmp_path / "plans.sqlite3"
    starter = create_key(db, plan="starter", business="small")
    other = create_key(db, plan="pro", business="other")
    with ServerThread(db, rate_limit=False, pass_quotas={"starter": 1}) as server:
        async with PassQRClient(server.base_url, starter) as api:
            template = await api.create_template(name="Small", max_uses=2)
            assert template.id is not None
            created = await api.create_pass(template_id=template.id)
            assert created.id is not None and created.code is not None
            assert created.max_uses == 2  # the template's default
            with pytest.raises(PlanLimitError) as info:
                await api.create_pass(template_id=template.id)
            assert (info.value.status, info.value.code) == (402, "plan_limit_reached")
            assert not isinstance(info.value, PlanError)
            assert "starter" in info.value.message and "{" not in info.value.message
            expired = await api.update_pass(created.id, status="expired")
            assert expired.status == "expired"
            result = await api.validate(created.code, idempotency_key=key())
            assert result.outcome is ValidationOutcome.EXPIRED
        async with PassQRClient(server.base_url, other) as api:
            with pytest.raises(NotFoundError):
                await api.get_pass(created.id)
            result = await api.validate(created.code, idempotency_key=key())
            assert result.outcome is ValidationOutcome.NOT_FOUND
