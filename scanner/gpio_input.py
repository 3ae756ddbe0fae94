"""``[[inputs]] type = "gpio"``: a contact on one of the Pi's pins, as triggers on the event loop.

::

    gpiozero's thread (lgpio alert thread; the test's thread for mock pins)
        when_activated / when_deactivated
          -> loop.call_soon_threadsafe(_edge)                 never blocks, never decides
    event loop
        _edge: debounce (a hold-off of debounce_ms), count, on_trigger(input)

The line is claimed with the configured pull and, on factories that can, gpiozero's own
``bounce_time``; the hold-off here makes mock pins and factories without hardware debounce
behave the same. A pin that cannot be claimed (in use, no pin factory) puts the input in
DEGRADED with the reason and it is tried again with a back-off, like every device here.

The table (:class:`GpioInputConfig`) is declared here, as each device kind declares its own;
:mod:`scanner.config` reads ``[[inputs]]`` with it. gpiozero loads only when an input is built,
so validating a config stays light.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from scanner import gpio
from scanner.errors import ConfigError
from scanner.schema import Bounds, within
from scanner.sources.base import SourceState

_log = logging.getLogger(__name__)

#: Waits before claiming a pin again after a failure (then the last one, repeatedly).
RETRY_S: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 5.0)

_PULL_UP = {"up": True, "down": False, "none": None}


InputRole = Literal["passage", "exit", "tamper", "alarm"]


@dataclass(frozen=True, kw_only=True)
class GpioInputConfig:
    """A contact on a GPIO line: the turnstile's passage sensor, an exit button, a tamper
    switch or an alarm output."""

    type: Literal["gpio"]
    pin: int = field(metadata={"bounds": Bounds(0, 53)})
    """The line, as a BCM number."""
    role: InputRole
    pull: Literal["up", "down", "none"] = "up"
    """The Pi's own resistor: ``up`` for a dry contact to ground (the usual wiring)."""
    active: Literal["low", "high"] | None = None
    """The level that means "triggered"; by default the opposite of ``pull`` (a closing
    contact). ``high`` with ``pull = "up"``: a normally-closed contact that opens."""
    debounce_ms: int = within(50, 0, 10_000)
    """Edges this soon after a trigger are the same trigger (contact bounce)."""
    name: str | None = None

    @property
    def active_level(self) -> Literal["low", "high"]:
        if self.active is not None:
            return self.active
        return "low" if self.pull == "up" else "high"


def check_input(config: GpioInputConfig) -> None:
    """An ``[[inputs]]`` table's rules beyond its shape.

    Raises:
        ConfigError: naming the key without its table (``"active: ..."``).
    """
    if config.pull == "none" and config.active is None:
        raise ConfigError(
            "active: required with pull = 'none' "
            '("low" or "high": the level that means triggered)'
        )


class GpioInput:
    """One contact.

    Args:
        config: its ``[[inputs]]`` table.

    Raises:
        ConfigError: gpiozero is not installed.
    """

    kind = "gpio"

    def __init__(self, config: GpioInputConfig, *, index: int = 0) -> None:
        self._gpiozero = gpio.load_gpiozero(f'inputs[{index}] (type = "gpio")')
        self.config = config
        self.pin = config.pin
        self.role = config.role
        self.name = config.name or f"{config.role} GPIO{config.pin}"
        self.state = SourceState.STARTING
        self.detail = ""
        self.count = 0
        """Triggers after debouncing."""
        self._device: Any = None
        self._last = float("-inf")

    def _set(self, state: SourceState, detail: str = "") -> None:
        if state is not self.state or detail != self.detail:
            level = logging.WARNING if state is SourceState.DEGRADED else logging.INFO
            _log.log(level, "input %s: %s %s", self.name, state.value, detail)
        self.state, self.detail = state, detail

    async def run(self, on_trigger: Callable[[GpioInput], None]) -> None:
        """Claim the pin and call ``on_trigger`` (on the loop) for each trigger, until cancelled."""
        loop = asyncio.get_running_loop()

        def edge() -> None:  # gpiozero's thread
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody listens
                loop.call_soon_threadsafe(self._edge, on_trigger)

        attempt = 0
        try:
            while True:
                try:
                    self._device = await self._claim_off_loop(edge)
                except Exception as err:  # noqa: BLE001 - any pin trouble degrades the input
                    self._set(SourceState.DEGRADED, gpio.describe(err))
                    await asyncio.sleep(RETRY_S[min(attempt, len(RETRY_S) - 1)])
                    attempt += 1
                    continue
                self._set(SourceState.READY)
                await asyncio.Event().wait()
        finally:
            self._close()
            self.state = SourceState.STOPPED

    async def _claim_off_loop(self, edge: Callable[[], None]) -> Any:
        claiming = asyncio.ensure_future(asyncio.to_thread(self.claim, edge))
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:
            # Stopped while the thread claims the pin: let go of it once it has.
            claiming.add_done_callback(_close_claimed)
            raise

    def claim(self, edge: Callable[[], None]) -> Any:
        """Claim the pin as an input calling ``edge`` (on gpiozero's thread) when triggered.

        Raises:
            Exception: whatever gpiozero or its pin factory raises (see :func:`gpio.describe`).
        """
        config = self.config
        pull_up = _PULL_UP[config.pull]
        options: dict[str, Any] = {"pull_up": pull_up}
        if pull_up is None:
            options["active_state"] = config.active_level == "high"
        if config.debounce_ms:
            options["bounce_time"] = config.debounce_ms / 1000
        # gpiozero fixes "active" from the pull (pulled up: active low); a normally-closed
        # contact on a pull-up is triggered by the other edge.
        zero_active_high = config.active_level == "high" if pull_up is None else not pull_up
        device = self._gpiozero.DigitalInputDevice(config.pin, **options)
        try:
            if (config.active_level == "high") == zero_active_high:
                device.when_activated = edge
            else:
                device.when_deactivated = edge
        except Exception:
            device.close()
            raise
        return device

    def _edge(self, on_trigger: Callable[[GpioInput], None]) -> None:
        now = time.monotonic()
        if now - self._last < self.config.debounce_ms / 1000:
            return
        self._last = now
        self.count += 1
        on_trigger(self)

    def _close(self) -> None:
        device, self._device = self._device, None
        if device is None:
            return
        try:
            device.close()
        except Exception as err:  # noqa: BLE001 - letting go of a broken pin is best effort
            _log.debug("closing input %s: %s", self.name, err)


def _close_claimed(claiming: asyncio.Future[Any]) -> None:
    if claiming.cancelled() or claiming.exception() is not None:
        return
    with contextlib.suppress(Exception):
        claiming.result().close()


def build_inputs(configs: list[GpioInputConfig]) -> list[GpioInput]:
    """The ``[[inputs]]`` of a config; nothing is claimed until :meth:`GpioInput.run`.

    Raises:
        ConfigError: gpiozero is not installed.
    """
    return [GpioInput(config, index=i) for i, config in enumerate(configs)]
