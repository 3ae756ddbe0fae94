"""What the kiosk and the tools need of PassQR: one interface, one real client, one fake.

:class:`scanner.api.PassQRClient` speaks HTTP; ``tests/support/fakes.py``
``FakeClient`` answers from tables. Everything that talks to PassQR (the pipeline,
the offline catalogue and replays, the running kiosk, ``manage`` and staff mode)
depends on :class:`PassQRApi`, never on the HTTP client, so either can be passed.

Every method raises only the :class:`scanner.errors.APIError` tree (the client
translates httpx once, at its boundary).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from scanner.models import Page, PassInfo, TemplateInfo, ValidationResult


class PassQRApi(Protocol):
    """The PassQR API (``../shared/spec/passqr-api.md``) as the scanner uses it."""

    base_url: str
    """The API root, for messages and to tell one server's journal rows from another's."""

    async def aclose(self) -> None:
        """Let go of connections; the client is not used again."""

    async def validate(self, code: str, *, idempotency_key: str) -> ValidationResult:
        """Ask about one code; a ``valid`` answer has used the pass.

        Raises:
            APIError: any subclass; never for a denial (denials are results).
        """
        ...

    async def honours_idempotency(self) -> bool:
        """Whether ``Idempotency-Key`` on ``POST /validate`` is honoured (nothing is used).

        Raises:
            APIError: the server could not be asked.
        """
        ...

    async def list_passes(
        self,
        *,
        page: int = 1,
        limit: int = 20,
        template_id: str | None = None,
        status: str | None = None,
    ) -> Page[PassInfo]: ...

    async def get_pass(self, pass_id: str) -> PassInfo: ...

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
    ) -> PassInfo: ...

    async def update_pass(self, pass_id: str, **fields: Any) -> PassInfo: ...

    async def revoke_pass(self, pass_id: str) -> PassInfo: ...

    async def list_templates(self, *, page: int = 1, limit: int = 20) -> Page[TemplateInfo]: ...

    async def get_template(self, template_id: str) -> TemplateInfo: ...

    async def create_template(
        self, *, name: str, idempotency_key: str | None = None, **fields: Any
    ) -> TemplateInfo: ...

    async def update_template(self, template_id: str, **fields: Any) -> TemplateInfo: ...

    async def delete_template(self, template_id: str) -> None: ...
