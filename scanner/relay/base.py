"""The relay interface and the pulse logic every board shares.

Boards latch: nothing but a command (or power loss) turns them off. So the
door's safety lives here, once: OFF at start, OFF after every pulse, OFF on
close, and :meth:`Relay.off_now` for exit paths that cannot await (signal
handlers, ``atexit``). Overlapping pulses extend the one that is running.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor

_log = logging.getLogger(__name__)

#: How often a faulty relay is tried again (OFF first).
RECONNECT_S = 1.0


class LockKind(enum.StrEnum):
    """What the lock does without power; shown by ``relay test`` and in the docs."""

    FAIL_SAFE = "fail-safe"
    FAIL_SECURE = "fail-secure"


class RelayState(enum.StrEnum):
    OFF = "off"
    ON = "on"
    FAULT = "fault"


class Relay(ABC):
    """A door relay driven in pulses.

    Implementations only say how to switch (``_switch``) and how to let go of
    the hardware (``_release``); both run on the relay's own thread and may
    raise any ``OSError``-like exception, which becomes a FAULT state, never a
    crash of the kiosk.
    """

    kind = "relay"

    def __init__(self, *, pulse_ms: int) -> None:
        self.pulse_ms = pulse_ms
        self.state = RelayState.OFF
        self.fault = ""
        self.pulse_fault = ""
        """Why the last failed pulse failed (kept when the OFF that followed worked)."""
        self.pulses = 0
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"relay-{self.kind}")
        self._off_task: asyncio.Task[None] | None = None
        self._off_at = 0.0
        self._lock = asyncio.Lock()
        self._closed = False
        self._watch_task: asyncio.Task[None] | None = None

    @property
    def description(self) -> str:
        return self.kind

    # -- implemented by each board ----------------------------------------------------

    @abstractmethod
    def _switch(self, on: bool) -> None:
        """Set the contact, opening the device if needed (sending OFF first on a reopen).

        Raises:
            OSError: or a subclass-specific error; the caller records a fault.
        """

    def _release(self) -> None:  # noqa: B027 - optional hook, most boards need nothing
        """Close the device; called after a final OFF."""

    def transcript_lines(self) -> list[str] | None:
        """What was done to a device that has no frames (a GPIO line), for ``relay test``
        and ``relay off``; None: a serial board's frames, or no board."""
        return None

    def hint(self, fault: str) -> str | None:
        """What an installer does about ``fault``; None: the serial port's hint."""
        return None

    # -- plumbing ------------------------------------------------------------------------

    async def _apply(self, on: bool) -> bool:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._pool, self._switch, on)
        except Exception as err:  # noqa: BLE001 - any driver failure is a relay fault
            self.state = RelayState.FAULT
            self.fault = f"{type(err).__name__}: {err}"
            _log.warning(
                "relay %s failed to switch %s: %s",
                self.description,
                "ON" if on else "OFF",
                self.fault,
            )
            return False
        self.state = RelayState.ON if on else RelayState.OFF
        self.fault = ""
        return True

    async def start(self) -> None:
        """Open the board and force it OFF, then watch it.

        A failure is a FAULT, not an error: the kiosk keeps deciding, and the
        watch reopens the board (OFF first) as soon as it is back.
        """
        async with self._lock:
            await self._apply(False)
        self._watch_task = asyncio.create_task(self._watch(), name=f"relay-watch-{self.kind}")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(RECONNECT_S)
            if self.state is RelayState.FAULT:
                async with self._lock:
                    if self.state is RelayState.FAULT and await self._apply(False):
                        _log.info("relay %s is back, contact OFF", self.description)

    async def pulse(self, ms: int | None = None) -> bool:
        """Switch ON now and OFF after ``ms``; a pulse already running is extended.

        Returns:
            whether the relay is ON now (False: the board is faulty).
        """
        length = (self.pulse_ms if ms is None else ms) / 1000
        async with self._lock:
            if self.state is not RelayState.ON and not await self._apply(True):
                self.pulse_fault = self.fault
                await self._apply(False)
                return False
            self.pulses += 1
            self._off_at = time.monotonic() + length
            if self._off_task is None or self._off_task.done():
                self._off_task = asyncio.create_task(self._off_later(), name="relay-off")
                self._off_task.add_done_callback(self._off_task_done)
            return True

    async def _off_later(self) -> None:
        try:
            # The deadline moves when an overlapping pulse extends this one.
            while (delay := self._off_at - time.monotonic()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(delay)
        finally:
            # Also on cancellation: the contact never stays closed.
            async with self._lock:
                await self._apply(False)

    def _off_task_done(self, task: asyncio.Task[None]) -> None:
        # A task cancelled before it first ran never reaches its ``finally``.
        if task.cancelled() and self.state is RelayState.ON and not self._closed:
            self._pool.submit(self.off_now)

    async def off(self) -> None:
        """Switch OFF now and forget any running pulse."""
        task, self._off_task = self._off_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._lock:
            await self._apply(False)

    async def close(self) -> None:
        """OFF, then release the device. Safe to call twice."""
        if self._closed:
            return
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
        await self.off()
        self._closed = True
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):
            await loop.run_in_executor(self._pool, self._release)
        self._pool.shutdown(wait=True)

    def off_now(self) -> None:
        """Synchronous OFF from any thread, for exit paths that cannot await.

        Never raises: it is the last thing standing between a dying process and
        a door left open.
        """
        if self._closed:
            return
        try:
            self._switch(False)
            self.state = RelayState.OFF
        except Exception as err:  # noqa: BLE001 - must not raise on an exit path
            self.state = RelayState.FAULT
            self.fault = f"{type(err).__name__}: {err}"
            _log.error("relay %s: final OFF failed: %s", self.description, err)
