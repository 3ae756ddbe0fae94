"""The source interface: anything that produces scanned text."""

from __future__ import annotations

import asyncio
import enum
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from scanner.models import RawScan

_log = logging.getLogger(__name__)

#: Waits before reopening a device that failed (then every second).
RETRY_S = (0.2, 0.5, 1.0)

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


class ThreadedSource(Source):
    """A source whose device is read by blocking calls on a thread of its own.

    Subclasses implement :meth:`_loop`, which reads until ``self._stop`` is set
    and hands each payload to ``deliver`` (any thread); this class carries it to
    the event loop, keeps the state, and joins the thread on cancellation.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._stop = threading.Event()

    async def run(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()

        def deliver(text: str) -> None:
            self.count += 1
            loop.call_soon_threadsafe(
                emit, RawScan(source=self.name, text=text, at=time.monotonic())
            )

        self._stop.clear()
        thread = threading.Thread(target=self._loop, args=(deliver,), name=self.name, daemon=True)
        thread.start()
        try:
            await asyncio.Event().wait()
        finally:
            self._stop.set()
            await asyncio.to_thread(thread.join, 2.0)
            self.state = SourceState.STOPPED

    def _set(self, state: SourceState, detail: str = "") -> None:
        if state is not self.state or detail != self.detail:
            # A degraded scanner is a fault an operator filters for (journalctl -p warning).
            level = logging.WARNING if state is SourceState.DEGRADED else logging.INFO
            _log.log(level, "source %s: %s %s", self.name, state.value, detail)
        self.state, self.detail = state, detail

    def _backoff(self, attempt: int) -> None:
        """Wait before reopening the device (0.2 s, 0.5 s, then every second)."""
        self._stop.wait(RETRY_S[min(attempt, len(RETRY_S) - 1)])

    @abstractmethod
    def _loop(self, deliver: Callable[[str], None]) -> None:
        """Open, read, reopen after a fault, until ``self._stop`` is set."""
