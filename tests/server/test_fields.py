"""One field table feeds both the handlers' checks and the OpenAPI document."""

from __future__ import annotations

from typing import Any

import pytest

from scanner.server.errors import ApiError
from scanner.server.fields import (
    PASS_CREATE_FIELDS,
    PASS_UPDATE_FIELDS,
    TEMPLATE_FIELDS,
    VALIDATE_FIELDS,
    Field,
    Kind,
    read,
)
from scanner.server.openapi import DOCUMENT

TABLES = {
    "PassCreate": (PASS_CREATE_FIELDS, True),
    "PassUpdate": (PASS_UPDATE_FIELDS, False),
    "TemplateCreate": (TEMPLATE_FIELDS, True),
    "TemplateUpdate": (TEMPLATE_FIELDS, False),
    "ValidateRequest": (VALIDATE_FIELDS, True),
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_the_document_is_the_table(name: str) -> None:
    table, creating = TABLES[name]
    schema = DOCUMENT["components"]["schemas"][name]
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == [field.name for field in table]
    assert schema.get("required", []) == [f.name for f in table if f.required and creating]
    for field in table:
        assert schema["properties"][field.name] == field.schema(with_default=creating)


def _bounds(field: Field) -> list[tuple[Any, bool]]:
    """(value, accepted) pairs at the edges the document states for the field."""
    schema = field.schema()
    cases: list[tuple[Any, bool]] = [(None, field.nullable)]
    if field.kind in (Kind.TEXT, Kind.CODE):
        cases += [("x" * schema["maxLength"], True), ("x" * (schema["maxLength"] + 1), False)]
    if field.kind is Kind.USES:
        cases += [(1, True), (0, False), (schema["maximum"], True), (schema["maximum"] + 1, False)]
        cases += [(True, False), (1.5, False)]
    if field.kind is Kind.CHOICE:
        cases += [(choice, True) for choice in schema["enum"]] + [("bogus", False)]
    if field.kind is Kind.OBJECTS:
        cases += [([{}] * schema["maxItems"], True), ([{}] * (schema["maxItems"] + 1), False)]
    return cases


@pytest.mark.parametrize(
    "field",
    [field for table, _ in TABLES.values() for field in table],
    ids=lambda field: field.name,
)
def test_each_field_accepts_exactly_what_its_schema_says(field: Field) -> None:
    for value, accepted in _bounds(field):
        if accepted:
            read((field,), {field.name: value}, creating=False)
        else:
            with pytest.raises(ApiError) as info:
                read((field,), {field.name: value}, creating=False)
            assert info.value.status == 400
            assert field.name in info.value.message
