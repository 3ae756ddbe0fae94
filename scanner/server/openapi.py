"""The OpenAPI 3.1 description of exactly what this server does.

Hand-written, and kept honest by `tests/server/test_fuzz.py`, which checks
every answer the server gives against the schema declared here for its route
and status.
"""

from __future__ import annotations

from typing import Any

from scanner.server.database import LOCK_WAIT
from scanner.server.fields import (
    HOLDER_EMAIL,
    HOLDER_NAME,
    PASS_CREATE_FIELDS,
    PASS_UPDATE_FIELDS,
    RESULTS,
    TEMPLATE_FIELDS,
    UUID_SCHEMA,
    VALIDATE_FIELDS,
    body_schema,
    properties,
)
from scanner.server.validation import (
    IDEMPOTENCY_KEY_PATTERN,
    MAX_BODY_BYTES,
    MAX_PAGE,
    PASS_STATUSES,
)

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_UUID: Schema = UUID_SCHEMA
_TIMESTAMP: Schema = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
    "description": "UTC, whole seconds, with a Z.",
}
_OBJECT: Schema = {"type": "object"}
_CODE: Schema = {"type": "string", "pattern": r"^PASS-[A-Z0-9]{8}$"}

_HOLDER_NAME: Schema = HOLDER_NAME.schema(with_default=False)
_HOLDER_EMAIL: Schema = HOLDER_EMAIL.schema(with_default=False)
_TEMPLATE_PROPS: dict[str, Schema] = properties(TEMPLATE_FIELDS)

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["error", "message"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "string",
                "description": "The error type, e.g. 'Bad Request', 'Unauthorized'.",
            },
            "message": {"type": "string", "description": "A human-readable explanation."},
        },
    },
    "Pass": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "code",
            "holder_name",
            "holder_email",
            "data",
            "status",
            "uses_count",
            "max_uses",
            "expires_at",
            "created_at",
            "updated_at",
            "template_id",
        ],
        "properties": {
            "id": _UUID,
            "code": _CODE,
            "holder_name": _HOLDER_NAME,
            "holder_email": _HOLDER_EMAIL,
            "data": _OBJECT,
            "status": {
                "type": "string",
                "enum": list(PASS_STATUSES),
                "description": "`expired` whenever expires_at is past or a PATCH set it "
                "(unless revoked).",
            },
            "uses_count": {"type": "integer", "minimum": 0},
            "max_uses": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "null = unlimited.",
            },
            "expires_at": _nullable(_TIMESTAMP),
            "created_at": _TIMESTAMP,
            "updated_at": _TIMESTAMP,
            "template_id": _UUID,
        },
    },
    "Template": {
        "type": "object",
        "additionalProperties": False,
        "required": [
            "id",
            "name",
            "type",
            "description",
            "color",
            "logo_url",
            "fields",
            "settings",
            "max_uses",
            "created_at",
        ],
        "properties": {"id": _UUID, **_TEMPLATE_PROPS, "created_at": _TIMESTAMP},
    },
    "ValidationTemplate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "name", "type", "color"],
        "properties": {
            "id": _UUID,
            "name": _TEMPLATE_PROPS["name"],
            "type": _TEMPLATE_PROPS["type"],
            "color": _TEMPLATE_PROPS["color"],
        },
    },
    "ValidationResult": {
        "type": "object",
        "additionalProperties": False,
        "required": ["result", "message", "pass", "template"],
        "properties": {
            "result": {"type": "string", "enum": list(RESULTS)},
            "message": {"type": "string", "enum": list(RESULTS.values())},
            "pass": _nullable(_ref("Pass")),
            "template": _nullable(_ref("ValidationTemplate")),
        },
        "if": {"properties": {"result": {"const": "not_found"}}},
        "then": {"properties": {"pass": {"type": "null"}, "template": {"type": "null"}}},
        "else": {"properties": {"pass": _ref("Pass")}},
    },
    "ListMeta": {
        "type": "object",
        "additionalProperties": False,
        "required": ["page", "limit", "total"],
        "properties": {
            "page": {"type": "integer", "minimum": 1},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "total": {"type": "integer", "minimum": 0},
        },
    },
    "PassList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data", "meta"],
        "properties": {"data": {"type": "array", "items": _ref("Pass")}, "meta": _ref("ListMeta")},
    },
    "TemplateList": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data", "meta"],
        "properties": {
            "data": {"type": "array", "items": _ref("Template")},
            "meta": _ref("ListMeta"),
        },
    },
    "PassEnvelope": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data"],
        "properties": {"data": _ref("Pass")},
    },
    "TemplateEnvelope": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data"],
        "properties": {"data": _ref("Template")},
    },
    "ValidationEnvelope": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data"],
        "properties": {"data": _ref("ValidationResult")},
    },
    "PushResult": {
        "type": "object",
        "additionalProperties": False,
        "required": ["attempted", "message", "data"],
        "properties": {
            "attempted": {"type": "integer", "minimum": 0, "maximum": 0},
            "message": {"type": "string"},
            "data": _ref("Pass"),
        },
    },
    "PassRevoked": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data", "message"],
        "properties": {
            "data": _ref("Pass"),
            "message": {"type": "string", "enum": ["Pass revoked", "Pass was already revoked"]},
        },
    },
    "TemplateDeleted": {
        "type": "object",
        "additionalProperties": False,
        "required": ["data", "message"],
        "properties": {
            "data": _ref("Template"),
            "message": {"type": "string", "enum": ["Template deleted"]},
        },
    },
    "PassCreate": body_schema(PASS_CREATE_FIELDS, creating=True),
    "PassUpdate": body_schema(PASS_UPDATE_FIELDS, creating=False),
    "TemplateCreate": body_schema(TEMPLATE_FIELDS, creating=True),
    "TemplateUpdate": body_schema(TEMPLATE_FIELDS, creating=False),
    "ValidateRequest": body_schema(VALIDATE_FIELDS, creating=True),
}


def _error(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if headers:
        response["headers"] = headers
    return response


def _plan_error(word: str, description: str) -> dict[str, Any]:
    """A 402 as PassQR answers it: a machine-readable `error` word and a message."""
    schema: Schema = {
        "type": "object",
        "required": ["error", "message"],
        "additionalProperties": False,
        "properties": {
            "error": {"type": "string", "const": word},
            "message": {"type": "string"},
        },
    }
    return {"description": description, "content": {"application/json": {"schema": schema}}}


RESPONSES: dict[str, Any] = {
    "BadRequest": _error(
        "Malformed JSON, a body that is not an object, an unknown, missing or wrongly "
        "typed field, an unknown or repeated query parameter, a bad query value, a "
        "malformed id or Idempotency-Key, JSON nested deeper than 32 levels."
    ),
    "Unauthorized": _error(
        "Missing, malformed or unknown API key.",
        {"WWW-Authenticate": {"schema": {"type": "string"}}},
    ),
    "Forbidden": _error("The key's plan (free) has no API access."),
    "PlanLimitReached": _plan_error(
        "plan_limit_reached",
        "The business holds as many passes as the key's plan allows (revoked ones count); "
        "`server run --pass-quota PLAN=N` sets the quotas (default: starter 1000, pro "
        "unlimited).",
    ),
    "PlanNotSupported": _plan_error(
        "plan_not_supported", "The key's plan has no wallet push (only pro has)."
    ),
    "NotFound": _error("No such pass or template."),
    "Conflict": _error("The change contradicts the stored state."),
    "PayloadTooLarge": _error(f"The request body is larger than {MAX_BODY_BYTES} bytes."),
    "IdempotencyMismatch": _error(
        "The Idempotency-Key was already used (by this API key) for a different request."
    ),
    "TooManyRequests": _error(
        "Rate limited: per client IP and sliding 60 s window, GET 120, POST/PATCH/DELETE 60, "
        "POST /validate 60 in its own bucket. Counted before authentication.",
        {
            "Retry-After": {
                "description": "Whole seconds until a request would be accepted (>= 1).",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    ),
    "UnsupportedMediaType": _error(
        "The request has a body but its Content-Type is not JSON: application/json or "
        "application/*+json, optionally with charset=utf-8. A request without a body may "
        "leave Content-Type out; a declared non-JSON type is refused even without one."
    ),
    "InternalError": _error("An unexpected failure; the message is generic, details are logged."),
    "DatabaseBusy": _error(
        "Another process held the database's write lock for longer than the server waits "
        f"({LOCK_WAIT:g} s); nothing was changed. Reads never wait for it.",
        {
            "Retry-After": {
                "description": "Whole seconds to wait before retrying.",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    ),
}


def _r(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{name}"}


def _ok(description: str, schema: str, *, replay: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref(schema)}},
    }
    if replay:
        response["headers"] = {
            "Idempotent-Replayed": {
                "description": "`true` when this is the stored answer to an earlier "
                "request with the same Idempotency-Key.",
                "schema": {"type": "string", "enum": ["true"]},
            },
            "Idempotency-Key": {
                "description": "The request's Idempotency-Key, echoed: this server "
                "honours it (a repeat gets the stored answer and does not act twice).",
                "schema": {"type": "string"},
            },
        }
    return response


def _common(*extra: str) -> dict[str, Any]:
    names = {
        "400": "BadRequest",
        "401": "Unauthorized",
        "403": "Forbidden",
        "404": "NotFound",
        "409": "Conflict",
        "413": "PayloadTooLarge",
        "415": "UnsupportedMediaType",
        "422": "IdempotencyMismatch",
        "429": "TooManyRequests",
        "500": "InternalError",
        "503": "DatabaseBusy",
    }
    wanted = {"400", "401", "403", "429", "500", "503", *extra}
    if "413" in wanted:  # a body is read: its media type is checked first
        wanted.add("415")
    return {status: _r(name) for status, name in names.items() if status in wanted}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


_IDEMPOTENCY_HEADER: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Same key (per API key) and same body within 24 h: the stored first "
    "answer, same status and body, and no second effect. Same key, different request: "
    "422. Only successful answers are stored.",
    "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
}
_PAGE: dict[str, Any] = {
    "name": "page",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 1},
}
_LIMIT: dict[str, Any] = {
    "name": "limit",
    "in": "query",
    "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
}


def _id_param(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": "A malformed id is a 400; a well-formed unknown one a 404.",
        "schema": _UUID,
    }


PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "400": _r("BadRequest"),
                "429": _r("TooManyRequests"),
                "500": _r("InternalError"),
            },
        }
    },
    "/passes": {
        "get": {
            "operationId": "listPasses",
            "summary": "List passes, newest first",
            "parameters": [
                _PAGE,
                _LIMIT,
                {"name": "template_id", "in": "query", "schema": _UUID},
                {
                    "name": "status",
                    "in": "query",
                    "description": "The status as shown (expired derives from expires_at).",
                    "schema": {"type": "string", "enum": list(PASS_STATUSES)},
                },
            ],
            "responses": {"200": _ok("A page of passes.", "PassList"), **_common()},
        },
        "post": {
            "operationId": "createPass",
            "summary": "Create a pass (a unique random code is drawn)",
            "parameters": [_IDEMPOTENCY_HEADER],
            "requestBody": _body("PassCreate"),
            "responses": {
                "201": _ok("The new pass.", "PassEnvelope", replay=True),
                **_common("413", "422"),
                "402": _r("PlanLimitReached"),
            },
        },
    },
    "/passes/{pass_id}": {
        "parameters": [_id_param("pass_id")],
        "get": {
            "operationId": "getPass",
            "responses": {"200": _ok("The pass.", "PassEnvelope"), **_common("404")},
        },
        "patch": {
            "operationId": "updatePass",
            "summary": "Change holder, data or status (fields absent are unchanged)",
            "requestBody": _body("PassUpdate"),
            "responses": {
                "200": _ok("The updated pass.", "PassEnvelope"),
                **_common("404", "409", "413"),
            },
        },
        "delete": {
            "operationId": "revokePass",
            "summary": "Revoke the pass (soft delete: it stays, and stops validating)",
            "responses": {
                "200": _ok("The revoked pass.", "PassRevoked"),
                **_common("404"),
            },
        },
    },
    "/passes/{pass_id}/push": {
        "parameters": [_id_param("pass_id")],
        "post": {
            "operationId": "pushPass",
            "summary": "Notify the pass's wallet holders (no body; `{}` is accepted)",
            "description": "PassQR's studio calls this after changing a pass. This server "
            "has no wallet devices, so a pro key always gets `attempted: 0`. A plan "
            "without push (starter) gets 402 `plan_not_supported`, checked before the "
            "pass is looked up.",
            "responses": {
                "200": {
                    "description": "`attempted` (devices notified) at the top of the body, "
                    "where PassQR's studio reads it; the pass in `data`.",
                    "content": {"application/json": {"schema": _ref("PushResult")}},
                },
                **_common("404", "413"),
                "402": _r("PlanNotSupported"),
            },
        },
    },
    "/templates": {
        "get": {
            "operationId": "listTemplates",
            "summary": "List templates, newest first",
            "parameters": [_PAGE, _LIMIT],
            "responses": {"200": _ok("A page of templates.", "TemplateList"), **_common()},
        },
        "post": {
            "operationId": "createTemplate",
            "parameters": [_IDEMPOTENCY_HEADER],
            "requestBody": _body("TemplateCreate"),
            "responses": {
                "201": _ok("The new template.", "TemplateEnvelope", replay=True),
                **_common("413", "422"),
            },
        },
    },
    "/templates/{template_id}": {
        "parameters": [_id_param("template_id")],
        "get": {
            "operationId": "getTemplate",
            "responses": {"200": _ok("The template.", "TemplateEnvelope"), **_common("404")},
        },
        "patch": {
            "operationId": "updateTemplate",
            "requestBody": _body("TemplateUpdate"),
            "responses": {
                "200": _ok("The updated template.", "TemplateEnvelope"),
                **_common("404", "413"),
            },
        },
        "delete": {
            "operationId": "deleteTemplate",
            "summary": "Delete a template no pass uses (409 while any pass, even a "
            "revoked one, refers to it)",
            "responses": {
                "200": _ok("The deleted template.", "TemplateDeleted"),
                **_common("404", "409"),
            },
        },
    },
    "/validate": {
        "post": {
            "operationId": "validatePass",
            "summary": "Decide on a scanned code; a valid pass has one use counted",
            "description": "HTTP 200 for every decision. Checks in order: not_found, "
            "revoked, expired, used, valid. A valid answer counts one use atomically "
            "and marks the pass used when max_uses is reached. Every decision is "
            "recorded as a scan.",
            "parameters": [_IDEMPOTENCY_HEADER],
            "requestBody": _body("ValidateRequest"),
            "responses": {
                "200": _ok("The decision.", "ValidationEnvelope", replay=True),
                **_common("413", "422"),
            },
        }
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
    "info": {
        "title": "PassQR API (local server)",
        "version": "1.0.0",
        "description": (
            "A strict, self-hosted implementation of the PassQR REST API.\n\n"
            "- Checks run in this order: rate limit (429), route and method (404/405), "
            "API key (401/403), query string, path id, headers and body (400/415/413), the "
            "plan (402 for push), then the stored state (404/409/422; 402 past the plan's "
            "pass quota; 503 when another process holds the "
            "database's write lock too long).\n"
            '- Every error is `{"error", "message"}` JSON, including unknown routes '
            "(404) and wrong methods (405, with an `Allow` header; HEAD is not offered), "
            "and the HTTP layer's own refusals: 400 for a malformed request, 408 when "
            "headers or body arrive too slowly, 414/431 past 16 KiB of request line and "
            "headers or 100 header lines, 503 past the connection limit.\n"
            "- A body must be declared `application/json` (or `application/*+json`, "
            "UTF-8): otherwise 415. Error messages quote at most 80 characters of input.\n"
            "- Unknown body fields and unknown or repeated query parameters are a 400.\n"
            "- Rate limits count per client IP before authentication, so unauthenticated "
            "floods are limited too.\n"
            "- Creating a pass for an unknown template_id is a 400 (the body is wrong; "
            "the URL names no missing resource).\n"
            "- Every API key belongs to one business (`create-key --business`) and sees "
            "only its templates and passes: another business's id is a 404, its pass code "
            "validates as not_found, and Idempotency-Key records are kept per business "
            "and key.\n"
            "- A pass created without max_uses gets its template's max_uses.\n"
            "- Plan gates answer 402 with a machine-readable `error`: `plan_limit_reached` "
            "past the plan's pass quota, `plan_not_supported` for push without pro.\n"
            "- Deleting a template that any pass refers to is a 409; otherwise it is "
            "deleted for good.\n"
            "- Timestamps are UTC `YYYY-MM-DDTHH:MM:SSZ`; lists are newest first."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "security": [{"bearerAuth": []}],
    "paths": PATHS,
    "components": {
        "schemas": SCHEMAS,
        "responses": RESPONSES,
        "securitySchemes": {
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "`Authorization: Bearer pqr_live_...`; create one with "
                "`passqr-scanner server create-key`.",
            }
        },
    },
}
