"""Strict parsing of request bodies, query strings and path parameters.

The server is the reference the client is tested against, so it rejects
rather than guesses: unknown fields, wrong types (a bool is not an int),
non-finite numbers, lone surrogates and duplicate keys are all a 400.
Every function here is pure and runs on the event loop.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from scanner.server.errors import ApiError, bad_request, shown

#: Largest request body accepted, in bytes (413 beyond).
MAX_BODY_BYTES = 64 * 1024
#: Deepest nesting of arrays and objects accepted in a body (the body itself is level 1).
MAX_JSON_DEPTH = 32
#: Largest `page` accepted by list endpoints.
MAX_PAGE = 1_000_000
#: Largest `max_uses` accepted.
MAX_USES_LIMIT = 1_000_000_000
#: Longest `code` accepted by /validate.
MAX_CODE_LENGTH = 256
#: Most digits in an integer literal of a body (Python's own limit, 4300, has a message
#: that names `sys.set_int_max_str_digits()`; no field needs more than a handful).
MAX_INT_DIGITS = 100

#: A pass's status as shown (and as a list filter).
PASS_STATUSES = ("active", "used", "expired", "revoked")

CODE_RE = re.compile(r"PASS-[A-Z0-9]{8}")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"
_EMAIL_RE = re.compile(EMAIL_PATTERN)
COLOR_PATTERN = r"^#[0-9A-Fa-f]{6}$"
_COLOR_RE = re.compile(COLOR_PATTERN)
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]{1,255}$"
_IDEMPOTENCY_KEY_RE = re.compile(IDEMPOTENCY_KEY_PATTERN)
_UINT_RE = re.compile(r"[0-9]{1,9}")
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_UUID_RE = re.compile(UUID_PATTERN[1:-1])

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# -- time --------------------------------------------------------------------------------


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 UTC with a `Z`, whole seconds: lexicographic order is time order."""
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def now_timestamp() -> str:
    return format_timestamp(datetime.now(UTC))


def parse_timestamp(value: str, field: str) -> str:
    """Parse an ISO 8601 timestamp with an offset into the canonical UTC form.

    Fractions of a second are dropped. A timestamp without an offset is
    ambiguous and rejected rather than read as local or UTC time.
    """
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request(f"{field} must be an ISO 8601 timestamp") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise bad_request(f"{field} must include a UTC offset, e.g. 2030-01-31T23:59:59Z")
    try:
        utc = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise bad_request(f"{field} is out of range") from None
    if not 1970 <= utc.year <= 9999:
        raise bad_request(f"{field} is out of range (years 1970 to 9999)")
    return format_timestamp(utc)


# -- JSON bodies -------------------------------------------------------------------------


class _Defect(ValueError):
    """A body defect found by a decoding hook; its message is fit for the client."""


def _reject_constant(name: str) -> Any:
    raise _Defect(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Defect("number out of range")
    return value


def _bounded_int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INT_DIGITS:
        raise _Defect(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _Defect("duplicate key in object")
    return result


def parse_json(raw: bytes) -> Any:
    """Decode a request body; any defect is a 400 with a short reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad_request("Malformed JSON body: not UTF-8") from None
    if not text.strip():
        raise bad_request("Request body must be a JSON object")
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            object_pairs_hook=_no_duplicates,
        )
    except RecursionError:
        raise bad_request("Malformed JSON body: nested too deeply") from None
    except json.JSONDecodeError as err:
        raise bad_request(
            f"Malformed JSON body: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except _Defect as err:
        raise bad_request(f"Malformed JSON body: {err}") from None
    except ValueError:  # from Python itself: never quote its message (it names internals)
        raise bad_request("Malformed JSON body: a value cannot be decoded") from None
    if _too_deep(value):
        raise bad_request(f"Malformed JSON body: nested deeper than {MAX_JSON_DEPTH} levels")
    if b"\\u" in raw:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise bad_request("Malformed JSON body: lone surrogate in a string") from None
    return value


def _too_deep(value: Any) -> bool:
    """Whether containers nest deeper than MAX_JSON_DEPTH (checked without recursion).

    Deep documents would parse, then fail to serialise in an answer (a 500).
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_object(raw: bytes, allowed: Iterable[str]) -> dict[str, Any]:
    """Decode a body that must be a JSON object with only `allowed` keys."""
    value = parse_json(raw)
    if not isinstance(value, dict):
        raise bad_request("Request body must be a JSON object")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        names = ", ".join(shown(repr(name), 40) for name in unknown[:5])
        more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        raise bad_request(f"Unknown field(s): {names}{more}")
    return value


def json_media_type(content_type: str | None, *, has_body: bool) -> None:
    """Refuse (415) a body that is not declared as JSON.

    `application/json` and any `application/*+json`, with an optional
    `charset=utf-8`, are JSON. A request without a body (no Content-Length,
    or 0, and no Transfer-Encoding) may leave Content-Type out: it is then
    judged as an empty JSON body (a 400 where a body is required). A declared
    non-JSON type is refused even without a body: the client said what it sends.
    """
    wanted = "Content-Type must be application/json"
    if content_type is None:
        if has_body:
            raise ApiError(415, f"{wanted}; the request has a body but no Content-Type")
        return
    media, _, params = content_type.partition(";")
    media = media.strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        raise ApiError(415, f"{wanted}, not {shown(repr(media), 40)}")
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            raise ApiError(415, f"{wanted} in UTF-8; charset {shown(repr(value.strip()), 20)}")


def canonical_json(value: Any) -> str:
    """One text per JSON value whatever its spacing or key order (for fingerprints)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# -- fields ------------------------------------------------------------------------------


def email_matches(value: str) -> bool:
    return _EMAIL_RE.match(value) is not None


def color_matches(value: str) -> bool:
    return _COLOR_RE.match(value) is not None


def uuid_value(value: Any, name: str) -> str:
    """A uuid in its canonical lowercase form; upper-case hex is accepted, other spellings not."""
    if not isinstance(value, str) or len(value) != 36 or not _UUID_RE.fullmatch(value.lower()):
        raise bad_request(f"{name} must be a UUID like 123e4567-e89b-42d3-a456-426614174000")
    return value.lower()


def idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not _IDEMPOTENCY_KEY_RE.match(value):
        raise bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters")
    return value


def normalise_code(value: str) -> str | None:
    """The code as stored (trimmed, ASCII upper case), or None when it cannot exist."""
    code = value.strip()
    if not code.isascii():
        return None
    code = code.upper()
    return code if CODE_RE.fullmatch(code) else None


# -- query strings -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Page:
    page: int
    limit: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.limit


def parse_query(query_string: bytes, allowed: Iterable[str]) -> dict[str, str]:
    """Decode a query string; unknown or repeated parameters are a 400."""
    if not query_string:
        return {}
    try:
        text = query_string.decode("ascii")
    except UnicodeDecodeError:
        raise bad_request("Query string must be ASCII (percent-encode the rest)") from None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Malformed query string") from None
    allowed_set = set(allowed)
    result: dict[str, str] = {}
    for name, value in pairs:
        if name not in allowed_set:
            if not allowed_set:
                raise bad_request("This endpoint takes no query parameters")
            raise bad_request(
                f"Unknown query parameter {shown(repr(name), 40)}; "
                f"allowed: {', '.join(sorted(allowed_set))}"
            )
        if name in result:
            raise bad_request(f"Query parameter {shown(repr(name), 40)} given more than once")
        result[name] = value
    return result


def _uint(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not _UINT_RE.fullmatch(raw):
        raise bad_request(f"{name} must be an integer between {low} and {high}")
    value = int(raw)
    if not low <= value <= high:
        raise bad_request(f"{name} must be an integer between {low} and {high}")
    return value


def page_params(params: Mapping[str, str]) -> Page:
    return Page(
        page=_uint(params, "page", 1, 1, MAX_PAGE),
        limit=_uint(params, "limit", 20, 1, 100),
    )


def status_param(params: Mapping[str, str]) -> str | None:
    raw = params.get("status")
    if raw is None:
        return None
    if raw not in PASS_STATUSES:
        raise bad_request(f"status must be one of {', '.join(PASS_STATUSES)}")
    return raw
