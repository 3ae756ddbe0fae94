"""The one table of the API's request fields, read by the handlers and by the OpenAPI document.

Each `Field` says once what a body field accepts (kind, bounds, whether null
is allowed, its default on create) and produces both its check (`Field.parse`,
a 400 with the field's name) and its JSON Schema (`Field.schema`). A new
field, like a template's `max_uses`, is one line in a table below: the
handlers accept it and `openapi.json` documents it, and the fuzz test
(tests/server/test_fuzz.py) holds the two to each other.

The validation results and their messages live here too, for the same
reason: the store answers them and the document enumerates them.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from scanner.server.errors import bad_request
from scanner.server.validation import (
    COLOR_PATTERN,
    EMAIL_PATTERN,
    MAX_CODE_LENGTH,
    MAX_USES_LIMIT,
    PASS_STATUSES,
    UUID_PATTERN,
    color_matches,
    email_matches,
    parse_timestamp,
    uuid_value,
)

Schema = dict[str, Any]

#: Every validation result and its message, in the order the checks run (after not_found).
RESULTS: dict[str, str] = {
    "valid": "Access granted",
    "expired": "Pass expired",
    "used": "Pass already used",
    "revoked": "Pass revoked",
    "not_found": "Pass not found",
}


class Kind(enum.Enum):
    """What a field's value must be; each kind has one check and one schema."""

    TEXT = "text"
    EMAIL = "email"
    COLOR = "color"
    URL = "url"
    OBJECT = "object"
    OBJECTS = "objects"
    USES = "uses"
    TIMESTAMP = "timestamp"
    UUID = "uuid"
    CHOICE = "choice"
    CODE = "code"


class _Absent:
    """No default: a field left out of a create stays out of the values (the store decides)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Any = _Absent()

_TIMESTAMP_IN: Schema = {
    "type": "string",
    "format": "date-time",
    "maxLength": 64,
    "description": "ISO 8601 with a UTC offset (a timestamp without one is rejected); "
    "stored in UTC, fractions of a second dropped; years 1970 to 9999.",
}
UUID_SCHEMA: Schema = {"type": "string", "format": "uuid", "pattern": UUID_PATTERN}


@dataclass(frozen=True, kw_only=True)
class Field:
    """One body field: its check and its schema.

    Attributes:
        name: the JSON key.
        kind: what the value must be.
        max_length: longest string (TEXT, and the string kinds' own bounds otherwise).
        nullable: whether `null` is accepted (and what it means is the field's).
        required: a create without it is a 400.
        default: the value a create gets when the field is left out; ABSENT leaves it out.
        max_items: most items of an OBJECTS list.
        choices: the values of a CHOICE.
        description: said in the document.
    """

    name: str
    kind: Kind
    max_length: int = 0
    nullable: bool = True
    required: bool = False
    default: Any = ABSENT
    max_items: int = 0
    choices: tuple[str, ...] = ()
    description: str = ""

    # -- the check -------------------------------------------------------------------------

    def parse(self, value: Any) -> Any:
        """The value as stored, or a 400 naming the field."""
        name = self.name
        if self.kind is Kind.OBJECT:
            if not isinstance(value, dict):
                raise bad_request(f"{name} must be a JSON object")
            return value
        if self.kind is Kind.OBJECTS:
            if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
                raise bad_request(f"{name} must be a list of JSON objects")
            if len(value) > self.max_items:
                raise bad_request(f"{name} must have at most {self.max_items} items")
            return value
        if self.kind is Kind.CODE:
            if not isinstance(value, str):
                raise bad_request(f"{name} is required and must be a string")
            value = value.strip()
            if not 1 <= len(value) <= self.max_length:
                raise bad_request(f"{name} must be 1 to {self.max_length} characters long")
            return value
        if value is None:
            if self.nullable:
                return None
            raise bad_request(f"{name} must be {self._noun()}, not null")
        if self.kind is Kind.USES:
            if isinstance(value, bool) or not isinstance(value, int):
                raise bad_request(f"{name} must be an integer >= 1 or null")
            if not 1 <= value <= MAX_USES_LIMIT:
                raise bad_request(f"{name} must be between 1 and {MAX_USES_LIMIT}, or null")
            return value
        if self.kind is Kind.TIMESTAMP:
            if not isinstance(value, str) or len(value) > 64:
                raise bad_request(f"{name} must be an ISO 8601 timestamp or null")
            return parse_timestamp(value, name)
        if self.kind is Kind.UUID:
            return uuid_value(value, name)
        if self.kind is Kind.CHOICE:
            if not isinstance(value, str) or value not in self.choices:
                raise bad_request(f"{name} must be one of {', '.join(self.choices)}")
            return value
        return self._string(value)

    def _noun(self) -> str:
        return {Kind.USES: "an integer", Kind.CHOICE: "a string"}.get(self.kind, "a string")

    def _string(self, value: Any) -> str:
        name = self.name
        if not isinstance(value, str):
            raise bad_request(f"{name} must be a string")
        if not 1 <= len(value) <= self.max_length:
            raise bad_request(f"{name} must be 1 to {self.max_length} characters long")
        if self.kind is Kind.EMAIL and not email_matches(value):
            raise bad_request(f"{name} must be an e-mail address")
        if self.kind is Kind.COLOR and not color_matches(value):
            raise bad_request(f"{name} must be a hex colour like #1f6feb")
        if self.kind is Kind.URL and not _http_url(value):
            raise bad_request(f"{name} must be an http(s) URL")
        return value

    # -- the schema ------------------------------------------------------------------------

    def schema(self, *, with_default: bool = True) -> Schema:
        """The field's JSON Schema; `with_default=False` for updates and answers."""
        schema = self._base_schema()
        if self.description:
            schema["description"] = self.description
        if with_default and self.default is not ABSENT:
            schema["default"] = self.default
        return schema

    def _base_schema(self) -> Schema:
        kind = self.kind
        if kind is Kind.OBJECT:
            return {"type": "object"}
        if kind is Kind.OBJECTS:
            return {"type": "array", "items": {"type": "object"}, "maxItems": self.max_items}
        if kind is Kind.CODE:
            return {"type": "string", "minLength": 1, "maxLength": self.max_length}
        if kind is Kind.TIMESTAMP:
            return {"anyOf": [dict(_TIMESTAMP_IN), {"type": "null"}]}
        if kind is Kind.UUID:
            return dict(UUID_SCHEMA)
        if kind is Kind.CHOICE:
            return {"type": "string", "enum": list(self.choices)}
        json_type: str | list[str] = "integer" if kind is Kind.USES else "string"
        schema: Schema = {"type": [json_type, "null"] if self.nullable else json_type}
        if kind is Kind.USES:
            schema.update(minimum=1, maximum=MAX_USES_LIMIT)
            return schema
        if kind is Kind.COLOR:
            schema["pattern"] = COLOR_PATTERN
            return schema
        schema.update(minLength=1, maxLength=self.max_length)
        if kind is Kind.EMAIL:
            schema["pattern"] = EMAIL_PATTERN
        if kind is Kind.URL:
            schema["format"] = "uri"
        return schema


def _http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and bool(parts.netloc)
        and not any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value)
    )


def read(table: Sequence[Field], body: Mapping[str, Any], *, creating: bool) -> dict[str, Any]:
    """The checked values of `body` by the table, in the table's order.

    On a create, a missing required field is a 400 and a missing field with a
    default gets it; on an update only the fields given are returned.
    """
    values: dict[str, Any] = {}
    for field in table:
        if field.name in body:
            values[field.name] = field.parse(body[field.name])
        elif creating and field.required:
            raise bad_request(f"{field.name} is required")
        elif creating and field.default is not ABSENT:
            values[field.name] = copy.deepcopy(field.default)
    return values


def names(table: Sequence[Field]) -> tuple[str, ...]:
    return tuple(field.name for field in table)


def properties(table: Sequence[Field], *, with_default: bool = True) -> dict[str, Schema]:
    return {field.name: field.schema(with_default=with_default) for field in table}


def body_schema(table: Sequence[Field], *, creating: bool) -> Schema:
    """The request body's schema: an object of exactly these fields."""
    schema: Schema = {
        "type": "object",
        "additionalProperties": False,
        "properties": properties(table, with_default=creating),
    }
    required = [field.name for field in table if field.required and creating]
    if required:
        schema["required"] = required
    return schema


# -- the tables ------------------------------------------------------------------------------

HOLDER_NAME = Field(name="holder_name", kind=Kind.TEXT, max_length=200, default=None)
HOLDER_EMAIL = Field(name="holder_email", kind=Kind.EMAIL, max_length=254, default=None)

TEMPLATE_FIELDS: tuple[Field, ...] = (
    Field(name="name", kind=Kind.TEXT, max_length=200, nullable=False, required=True),
    Field(name="type", kind=Kind.TEXT, max_length=50, nullable=False, default="generic"),
    Field(name="description", kind=Kind.TEXT, max_length=2000, default=None),
    Field(name="color", kind=Kind.COLOR, max_length=7, default="#1f6feb"),
    Field(
        name="logo_url",
        kind=Kind.URL,
        max_length=2048,
        default=None,
        description="An http or https URL.",
    ),
    Field(name="fields", kind=Kind.OBJECTS, nullable=False, max_items=100, default=[]),
    Field(name="settings", kind=Kind.OBJECT, nullable=False, default={}),
    Field(
        name="max_uses",
        kind=Kind.USES,
        default=None,
        description="The max_uses of a pass created in this template without one "
        "(null = unlimited). Changing it changes no existing pass.",
    ),
)

PASS_CREATE_FIELDS: tuple[Field, ...] = (
    Field(
        name="template_id",
        kind=Kind.UUID,
        nullable=False,
        required=True,
        description="Must name an existing template, otherwise 400.",
    ),
    HOLDER_NAME,
    HOLDER_EMAIL,
    Field(
        name="max_uses",
        kind=Kind.USES,
        description="null = unlimited. Left out: the template's max_uses. "
        "A boolean is not an integer.",
    ),
    Field(name="expires_at", kind=Kind.TIMESTAMP, default=None),
    Field(name="data", kind=Kind.OBJECT, nullable=False, default={}),
)

PASS_UPDATE_FIELDS: tuple[Field, ...] = (
    HOLDER_NAME,
    HOLDER_EMAIL,
    Field(name="data", kind=Kind.OBJECT, nullable=False),
    Field(
        name="status",
        kind=Kind.CHOICE,
        nullable=False,
        choices=PASS_STATUSES,
        description="`expired` makes the pass expired whatever its expires_at; `active` "
        "undoes `used` or `expired` (a pass past its expires_at still shows expired). "
        "`active` on a pass whose uses_count has reached max_uses is a 409.",
    ),
)

VALIDATE_FIELDS: tuple[Field, ...] = (
    Field(
        name="code",
        kind=Kind.CODE,
        max_length=MAX_CODE_LENGTH,
        nullable=False,
        required=True,
        description="Trimmed, then matched case-insensitively. Anything that is "
        "not a known code (after trimming: 1 to 256 characters) answers not_found.",
    ),
)
