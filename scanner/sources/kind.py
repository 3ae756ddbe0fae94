"""What a source kind declares: its ``[[sources]]`` table, its rules, its builder.

A kind's module holds its config dataclass (a ``type: Literal["..."]`` field and
the kind's keys, each with its bounds) beside its driver, and a :class:`SourceKind`;
``scanner/sources/__init__.py`` registers it with one line. The config loader picks
the dataclass by ``type`` from the registry; :func:`scanner.sources.build_source`
calls the kind's builder.

Imported by :mod:`scanner.config`: standard library only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from scanner.sources.base import Source

C = TypeVar("C")


class SourceTable(Protocol):
    """What every kind's config dataclass has."""

    @property
    def type(self) -> str: ...

    @property
    def name(self) -> str | None: ...


@dataclass(frozen=True, kw_only=True)
class SourceKind(Generic[C]):
    """One kind of scanner input, as the registry knows it.

    Attributes:
        name: the value of ``type`` in a ``[[sources]]`` table.
        config: the frozen dataclass a table of this kind is validated into.
        build: the source for a validated table (``headless``: no UI feeds keys);
            opens nothing until ``Source.run``.
        check: rules of this kind beyond the shape; raises :class:`ConfigError`
            naming the key without the table (``"device: ..."``).
        single: at most one source of this kind in a config.
    """

    name: str
    config: type[C]
    build: Callable[[C, bool], Source]
    check: Callable[[C], None] | None = None
    single: bool = False


AnySourceKind = SourceKind[Any]
