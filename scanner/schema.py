"""What a config field may say about itself: its range, and whether it may hold a NUL.

The dataclasses of the configuration (:mod:`scanner.config`) and of each device
kind (``scanner/relay/*.py``, ``scanner/sources/*.py``) declare their fields with
these helpers, so a bound is written once, on its field; :func:`scanner.config.parse_config`
holds every table to it, and a device built from a hand-made value can hold it to
the same bound with :func:`check_bounds`. Standard library only: every kind module
imports this, and validating a config must stay light.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from scanner.errors import ConfigError

_T = TypeVar("_T")

DAY_S = 86_400.0
MAX_BAUD = 12_000_000  # FTDI's fastest; pyserial takes any positive rate


@dataclass(frozen=True)
class Bounds:
    """The range a numeric field must be in; both ends included unless ``above``."""

    low: float
    high: float
    above: bool = False
    """The value must be more than ``low`` (a timeout of 0 would never wait)."""
    unit: str = ""

    def problem(self, value: float) -> str | None:
        """What is wrong with ``value``, or None when it is in range."""
        low_ok = value > self.low if self.above else value >= self.low
        if low_ok and value <= self.high:
            return None
        unit = f" {self.unit}" if self.unit else ""
        if self.above:
            return f"must be more than {_num(self.low)} and at most {_num(self.high)}{unit}"
        return f"must be between {_num(self.low)} and {_num(self.high)}{unit}"


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def within(default: _T, low: float, high: float, *, above: bool = False, unit: str = "") -> _T:
    """A field with a default and the range it is held to."""
    return field(default=default, metadata={"bounds": Bounds(low, high, above, unit)})


def any_bytes(default: _T) -> _T:
    """A string field written to a device as it is: a NUL in it is a byte like any other."""
    return field(default=default, metadata={"nul_ok": True})


def bounds_of(cls: type[Any], name: str) -> Bounds | None:
    """The range declared on field ``name`` of dataclass ``cls``, if any."""
    for f in dataclasses.fields(cls):
        if f.name == name:
            bounds: Bounds | None = f.metadata.get("bounds")
            return bounds
    return None


def check_bounds(value: Any, where: str) -> None:
    """Hold every bounded number of dataclass instance ``value`` to its field's range.

    For values made in code rather than parsed (tests, the demo): the same rule,
    from the same declaration, as :func:`scanner.config.parse_config` applies.

    Raises:
        ConfigError: ``"{where}{field}: must be ..."`` for the first field out of range.
    """
    for f in dataclasses.fields(value):
        bounds: Bounds | None = f.metadata.get("bounds")
        number = getattr(value, f.name)
        if bounds is None or not isinstance(number, int | float) or isinstance(number, bool):
            continue
        problem = bounds.problem(number)
        if problem is not None:
            raise ConfigError(f"{where}{f.name}: {problem}")
