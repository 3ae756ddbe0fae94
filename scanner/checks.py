"""What a check found: one line of the doctor's report (:class:`Check`, :class:`Status`).

In the core so that a device kind's doctor probe (``probe=`` on
:class:`~scanner.relay.kind.RelayKind` and :class:`~scanner.sources.kind.SourceKind`)
can say what it found without importing the doctor; :mod:`scanner.doctor` re-exports
both and prints them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Check", "Status"]


class Status(enum.StrEnum):
    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"


@dataclass(frozen=True, kw_only=True)
class Check:
    """One line of the report.

    Attributes:
        name: what was checked (``config``, ``api key``, ``source 1 (serial)``...).
        status: OK, WARN (works, but look at it), FAIL (the gate is not ready), SKIP.
        detail: what was found.
        fix: what to do about a WARN or a FAIL.
    """

    name: str
    status: Status
    detail: str
    fix: str = ""
