"""The source interface: anything that produces scanned text."""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Callable

from scanner.models import RawScan

Emit = Callable[[RawScan], None]
"""Called on the event loop's thread for every payload a source reads."""


class SourceState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    DEGRADED = "degraded"
    STOPPED = "stopped"


class Source(ABC):
    """A scanner input.

    ``run`` keeps going until it is cancelled: device faults put the source in
    DEGRADED with a ``detail`` and it retries; they never end the kiosk.
    """

    kind = "source"

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = SourceState.STARTING
        self.detail = ""
        self.count = 0

    @abstractmethod
    async def run(self, emit: Emit) -> None:
        """Read until cancelled, calling ``emit`` for each payload."""
