"""What a source kind declares: its ``[[sources]]`` table, its rules, its builder, its probe.

A kind's module holds its config dataclass (a ``type: Literal["..."]`` field and
the kind's keys, each with its bounds) beside its driver, and a :class:`SourceKind`;
``scanner/sources/__init__.py`` registers it with one line. The config loader picks
the dataclass by ``type`` from the registry; :func:`scanner.sources.build_source`
calls the kind's builder; ``passqr-scanner doctor`` calls the kind's probe.

Imported by :mod:`scanner.config`: standard library only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from scanner.checks import Check
    from scanner.sources.base import Source

C = TypeVar("C")

DeviceClass = Literal["serial", "camera", "input", "gpio"]
"""What a source opens, as the doctor sees it: a serial port (group ``dialout``, kept from
ModemManager), a camera (group ``video``), an input device (group ``input``); the Pi's
GPIO lines (group ``gpio``: a ``gpio`` relay, ``[[inputs]]``)."""


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
        probe: the doctor's checks of one configured source: ``probe(table, name)``
            opens the device as the kiosk would (blocking I/O off the event loop, see
            :mod:`scanner.probes`) and returns :class:`~scanner.checks.Check` lines
            called ``name`` (``"source 1 (serial)"``); it writes nothing to the device.
        check: rules of this kind beyond the shape; raises :class:`ConfigError`
            naming the key without the table (``"device: ..."``).
        single: at most one source of this kind in a config.
        opens: the device class it opens, for the doctor's list of devices found and
            the user's groups; None: no device (keyboard, simulated).
    """

    name: str
    config: type[C]
    build: Callable[[C, bool], Source]
    probe: Callable[[C, str], Awaitable[list[Check]]]
    check: Callable[[C], None] | None = None
    single: bool = False
    opens: DeviceClass | None = None


AnySourceKind = SourceKind[Any]
