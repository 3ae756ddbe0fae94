"""A base_url without ``/api/v1`` is a configuration fault, said as such (issue 13, point 9)."""

from __future__ import annotations

import pytest

from scanner.api import PassQRClient
from scanner.errors import BadAnswerError, NotFoundError
from tests.conftest import LocalServer


async def test_a_base_url_without_the_api_root_is_not_passes_not_found(
    local_server: LocalServer,
) -> None:
    root = local_server.base_url.removesuffix("/api/v1")
    async with PassQRClient(root, local_server.api_key) as api:
        with pytest.raises(BadAnswerError, match=r"is api.base_url right\? \(it ends in /api/v1\)"):
            await api.list_passes()
        with pytest.raises(BadAnswerError, match="no PassQR API at"):
            await api.validate("PASS-AAAA0001", idempotency_key="k-1")


async def test_a_missing_pass_is_still_not_found(local_server: LocalServer) -> None:
    async with PassQRClient(local_server.base_url, local_server.api_key) as api:
        with pytest.raises(NotFoundError):
            await api.get_pass("00000000-0000-4000-8000-000000000000")
