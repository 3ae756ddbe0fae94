"""Typed values that travel through the scanner.

Client-side views of PassQR objects (:class:`PassInfo`, :class:`TemplateInfo`,
:class:`ValidationResult`) are parsed tolerantly: both spellings the spec knows
(``uses_count`` and ``usesCount``), unknown fields ignored. Kiosk-side values
(:class:`Scan`, :class:`Decision`) are frozen so a decision cannot change after
it was journaled and shown.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ValidationOutcome(enum.StrEnum):
    """What PassQR said about a code. ``UNKNOWN`` is any result we do not know: a denial."""

    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    REVOKED = "revoked"
    NOT_FOUND = "not_found"
    UNKNOWN = "unknown"


def _pick(obj: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        if name in obj and obj[name] is not None:
            return obj[name]
    return None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


@dataclass(frozen=True, kw_only=True)
class PassInfo:
    """A pass as the client understands it; every field but ``code`` may be missing."""

    id: str | None = None
    code: str | None = None
    holder_name: str | None = None
    holder_email: str | None = None
    status: str | None = None
    uses_count: int | None = None
    max_uses: int | None = None
    scans_remaining: int | None = None
    expires_at: str | None = None
    template_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    replayed: bool = field(default=False, compare=False)
    """A create answered with the server's stored first answer to its ``Idempotency-Key``."""

    @property
    def uses_left(self) -> int | None:
        """Uses left after this one, or None when unlimited or unknown."""
        if self.scans_remaining is not None:
            return max(self.scans_remaining, 0)
        if self.max_uses is None or self.uses_count is None:
            return None
        return max(self.max_uses - self.uses_count, 0)

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> PassInfo:
        data = obj.get("data")
        return cls(
            id=_as_str(_pick(obj, "id")),
            code=_as_str(_pick(obj, "code")),
            holder_name=_as_str(_pick(obj, "holder_name", "holderName")),
            holder_email=_as_str(_pick(obj, "holder_email", "holderEmail")),
            status=_as_str(_pick(obj, "status")),
            uses_count=_as_int(_pick(obj, "uses_count", "usesCount")),
            max_uses=_as_int(_pick(obj, "max_uses", "maxUses")),
            scans_remaining=_as_int(_pick(obj, "scans_remaining", "scansRemaining")),
            expires_at=_as_str(_pick(obj, "expires_at", "expiresAt")),
            template_id=_as_str(_pick(obj, "template_id", "templateId")),
            created_at=_as_str(_pick(obj, "created_at", "createdAt")),
            updated_at=_as_str(_pick(obj, "updated_at", "updatedAt")),
            data=dict(data) if isinstance(data, Mapping) else {},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.code,
            "holder_name": self.holder_name,
            "holder_email": self.holder_email,
            "status": self.status,
            "uses_count": self.uses_count,
            "max_uses": self.max_uses,
            "expires_at": self.expires_at,
            "template_id": self.template_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "data": dict(self.data),
        }


@dataclass(frozen=True, kw_only=True)
class TemplateInfo:
    """A pass template as the client understands it."""

    id: str | None = None
    name: str | None = None
    type: str | None = None
    description: str | None = None
    color: str | None = None
    logo_url: str | None = None
    fields: tuple[Any, ...] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    created_at: str | None = None

    @classmethod
    def parse(cls, obj: Mapping[str, Any]) -> TemplateInfo:
        fields = obj.get("fields")
        settings = obj.get("settings")
        return cls(
            id=_as_str(_pick(obj, "id")),
            name=_as_str(_pick(obj, "name")),
            type=_as_str(_pick(obj, "type")),
            description=_as_str(_pick(obj, "description")),
            color=_as_str(_pick(obj, "color")),
            logo_url=_as_str(_pick(obj, "logo_url", "logoUrl")),
            fields=tuple(fields) if isinstance(fields, list) else (),
            settings=dict(settings) if isinstance(settings, Mapping) else {},
            created_at=_as_str(_pick(obj, "created_at", "createdAt")),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "color": self.color,
            "logo_url": self.logo_url,
            "fields": list(self.fields),
            "settings": dict(self.settings),
            "created_at": self.created_at,
        }


@dataclass(frozen=True, kw_only=True)
class ValidationResult:
    """PassQR's answer to ``POST /validate``.

    Attributes:
        outcome: the known outcome, ``UNKNOWN`` for anything else (a denial).
        result: the server's own word for it, kept for the journal.
        message: the server's human-readable message.
    """

    outcome: ValidationOutcome
    result: str
    message: str
    pass_: PassInfo | None = None
    template: TemplateInfo | None = None
    replayed: bool = False
    """The server answered with its stored first answer to this ``Idempotency-Key``."""

    @property
    def admitted(self) -> bool:
        return self.outcome is ValidationOutcome.VALID


@dataclass(frozen=True, kw_only=True)
class Page(Generic[T]):
    """One page of a list endpoint."""

    items: tuple[T, ...]
    page: int
    limit: int
    total: int

    @property
    def is_last(self) -> bool:
        """No page after this one: it came back empty, or it reaches ``total``."""
        return not self.items or self.page * max(self.limit, 1) >= self.total


class Reason(enum.StrEnum):
    """Why a decision went the way it did; the journal and the JSON lines use these words."""

    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"
    NOT_FOUND = "not_found"
    INVALID_PAYLOAD = "invalid_payload"
    OFFLINE = "offline"
    RATE_LIMITED = "rate_limited"
    ERROR = "error"


#: What a person at the gate reads for each reason.
REASON_TEXT: Mapping[Reason, str] = {
    Reason.VALID: "Welcome",
    Reason.USED: "Already used",
    Reason.EXPIRED: "Expired",
    Reason.REVOKED: "Pass revoked",
    Reason.NOT_FOUND: "Unknown pass",
    Reason.INVALID_PAYLOAD: "Not a pass code",
    Reason.OFFLINE: "Server unreachable",
    Reason.RATE_LIMITED: "Busy, please scan again",
    Reason.ERROR: "Cannot check pass, please see staff",
}


#: The headline of an admission whose relay failed: the guest must not walk into a shut door.
DOOR_FAULT_TEXT = "Door did not open - admit by hand"
#: The line of an admission staff made over a "used" refusal (``Gate.let_in``).
LET_IN_TEXT = "Let in by staff"


def can_let_in(decision: Decision) -> bool:
    """Whether staff may overrule this refusal with ``Gate.let_in``.

    Only "used" refusals of a real code: the pass may have been counted for this very
    guest (a first try without an answer, an offline admission not uploaded yet), and
    asking PassQR again would count another use or be refused again.
    """
    return not decision.accepted and decision.reason is Reason.USED and bool(decision.scan.code)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_scan_id() -> str:
    """One UUID per physical scan: it is also the Idempotency-Key of every try."""
    return str(uuid.uuid4())


@dataclass(frozen=True, kw_only=True)
class RawScan:
    """Text as a source read it, before anything is trusted.

    Attributes:
        source: the name of the source that read it (``serial:/dev/ttyACM0``).
        text: the payload, possibly junk.
        at: monotonic seconds when it was read, for latency figures.
        manual: typed by staff rather than scanned.
    """

    source: str
    text: str
    at: float
    manual: bool = False


@dataclass(frozen=True, kw_only=True)
class Scan:
    """A physical scan the gate decided to act on (repeats are not scans)."""

    id: str
    ts: datetime
    gate: str
    source: str
    raw: str
    code: str | None
    manual: bool = False


@dataclass(frozen=True, kw_only=True)
class Decision:
    """What the gate decided about one scan.

    Attributes:
        message: the line a person at the gate reads.
        detail: extra words for staff (server message, error), never shown as the headline.
    """

    scan: Scan
    accepted: bool
    reason: Reason
    message: str
    detail: str = ""
    holder: str | None = None
    template: str | None = None
    uses_left: int | None = None
    offline: bool = False
    latency_ms: float = 0.0
    relay_fault: str | None = None
    """An admission whose door did not open: the relay's fault, for staff to admit by hand."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """The pass's own ``data`` (seat, table...); the screen shows what ``[gate] show_data``
    names."""

    def to_json(self) -> dict[str, Any]:
        """The headless JSON line; keys are a contract for scripts."""
        return {
            "ts": self.scan.ts.isoformat().replace("+00:00", "Z"),
            "gate": self.scan.gate,
            "source": self.scan.source,
            "code": self.scan.code if self.scan.code is not None else self.scan.raw,
            "decision": "accepted" if self.accepted else "rejected",
            "reason": self.reason.value,
            "holder": self.holder,
            "offline": self.offline,
            "latency_ms": round(self.latency_ms, 2),
            "relay_fault": self.relay_fault,
        }
