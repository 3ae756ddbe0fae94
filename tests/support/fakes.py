"""Test doubles shared by every test layer: one fake of each interface.

``FakeClient`` is the PassQR API (:class:`scanner.api_protocol.PassQRApi`) answered
from tables, as ``httpx.MockTransport`` is for httpx: it subclasses the protocol,
so mypy checks every signature against the real client's interface.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from scanner.api_protocol import PassQRApi
from scanner.errors import NotFoundError
from scanner.models import Page, PassInfo, TemplateInfo, ValidationOutcome, ValidationResult

NOT_FOUND = ValidationResult(
    outcome=ValidationOutcome.NOT_FOUND, result="not_found", message="Pass not found"
)


class FakeClient(PassQRApi):
    """PassQR from tables; records what it was asked.

    Args:
        answers: code -> the validation result, or an exception to raise.
        default: the answer for a code not in the table (``not_found``).
        passes: what ``list_passes`` and ``get_pass`` serve.
        templates: what ``list_templates`` serves.
        honours: what ``honours_idempotency`` says.

    Attributes:
        codes: every code validated, in order.
        calls: every ``(code, idempotency_key)`` validated, in order.
        hold: while set and not yet set free, ``validate`` waits on it (a slow server).
        closed: ``aclose`` was called.
    """

    base_url = "http://127.0.0.1:9/api/v1"

    def __init__(
        self,
        answers: Mapping[str, ValidationResult | Exception] | None = None,
        *,
        passes: tuple[PassInfo, ...] = (),
        templates: tuple[TemplateInfo, ...] = (),
        honours: bool = True,
        default: ValidationResult = NOT_FOUND,
    ) -> None:
        # The caller's own dict is kept, so a test can change an answer mid-run.
        self.answers: dict[str, ValidationResult | Exception] = (
            answers if isinstance(answers, dict) else dict(answers or {})
        )
        self.default = default
        self.passes = passes
        self.templates = templates
        self.honours = honours
        self.codes: list[str] = []
        self.calls: list[tuple[str, str]] = []
        self.probes = 0
        self.hold: asyncio.Event | None = None
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True

    async def validate(self, code: str, *, idempotency_key: str) -> ValidationResult:
        self.codes.append(code)
        self.calls.append((code, idempotency_key))
        if self.hold is not None:
            await self.hold.wait()
        answer = self.answers.get(code, self.default)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def honours_idempotency(self) -> bool:
        self.probes += 1
        return self.honours

    async def list_passes(
        self,
        *,
        page: int = 1,
        limit: int = 20,
        template_id: str | None = None,
        status: str | None = None,
    ) -> Page[PassInfo]:
        start = (page - 1) * limit
        return Page(
            items=self.passes[start : start + limit],
            page=page,
            limit=limit,
            total=len(self.passes),
        )

    async def get_pass(self, pass_id: str) -> PassInfo:
        for info in self.passes:
            if pass_id in (info.id, info.code):
                return info
        raise NotFoundError("not found", status=404)

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
        raise NotImplementedError("FakeClient serves reads and validations only")

    async def update_pass(self, pass_id: str, **fields: Any) -> PassInfo:
        raise NotImplementedError("FakeClient serves reads and validations only")

    async def revoke_pass(self, pass_id: str) -> PassInfo:
        raise NotImplementedError("FakeClient serves reads and validations only")

    async def list_templates(self, *, page: int = 1, limit: int = 20) -> Page[TemplateInfo]:
        start = (page - 1) * limit
        return Page(
            items=self.templates[start : start + limit],
            page=page,
            limit=limit,
            total=len(self.templates),
        )

    async def get_template(self, template_id: str) -> TemplateInfo:
        raise NotFoundError("not found", status=404)

    async def create_template(
        self, *, name: str, idempotency_key: str | None = None, **fields: Any
    ) -> TemplateInfo:
        raise NotImplementedError("FakeClient serves reads and validations only")

    async def update_template(self, template_id: str, **fields: Any) -> TemplateInfo:
        raise NotImplementedError("FakeClient serves reads and validations only")

    async def delete_template(self, template_id: str) -> None:
        raise NotImplementedError("FakeClient serves reads and validations only")
