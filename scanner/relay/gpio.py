"""``type = "gpio"``: a relay HAT, a relay module or a transistor on one of the Pi's own pins.

The line is claimed as an output already OFF (``initial_value``), so opening it never closes
the contact, and it is released (gpiozero makes it an input again, as at boot) only after a
final OFF. What the relay does while nothing drives the line (before the kiosk starts, between
restarts) is the board's pull resistor's business: docs/deploy.md says how to wire it so that
means OFF. gpiozero does not hold the pin when this process dies, so ``relay off`` in another
process (``ExecStopPost=``) can always claim it and switch it OFF.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import TYPE_CHECKING, Any

from scanner import gpio
from scanner.errors import ConfigError
from scanner.relay.base import Relay
from scanner.relay.kind import RelayConfig, RelayKind

if TYPE_CHECKING:
    from scanner.checks import Check

_log = logging.getLogger(__name__)


class GpioRelay(Relay):
    """A relay on a GPIO line.

    Args:
        pin: the line's BCM number.
        active_low: the relay closes when the line is low.
        pulse_ms: how long an admission closes the contact.

    Raises:
        ConfigError: gpiozero is not installed.
    """

    kind = "gpio"

    def __init__(self, pin: int, *, active_low: bool = False, pulse_ms: int = 1000) -> None:
        self._gpiozero = gpio.load_gpiozero('relay.type = "gpio"')
        super().__init__(pulse_ms=pulse_ms)
        self.pin = pin
        self.active_low = active_low
        self.transcript: deque[str] = deque(maxlen=64)
        """What was done to the line, for ``relay test`` and ``relay off``."""
        self._device: Any = None
        self._io_lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"gpio GPIO{self.pin}" + (" active-low" if self.active_low else "")

    def _level(self, on: bool) -> str:
        return "low" if on == self.active_low else "high"

    def _open(self) -> Any:
        try:
            device = self._gpiozero.DigitalOutputDevice(
                self.pin, active_high=not self.active_low, initial_value=False
            )
        except Exception as err:  # noqa: BLE001 - any factory error is a relay fault
            raise OSError(gpio.describe(err)) from err
        self.transcript.append(f"claimed GPIO{self.pin} as an output, {self._level(False)} (OFF)")
        _log.info("relay %s: line claimed, contact OFF", self.description)
        return device

    def _switch(self, on: bool) -> None:
        with self._io_lock:
            if self._device is None or self._device.closed:
                self._device = self._open()
                if not on:
                    return  # claimed OFF
            try:
                self._device.value = on
            except Exception as err:  # noqa: BLE001 - translated once, here
                self._drop()
                raise OSError(gpio.describe(err)) from err
            word = "ON" if on else "OFF"
            self.transcript.append(f"set GPIO{self.pin} {self._level(on)} ({word})")

    def read_back(self) -> bool | None:
        """Whether the line is at its ON level now (None: not claimed, or unreadable)."""
        with self._io_lock:
            if self._device is None or self._device.closed:
                return None
            try:
                return bool(self._device.value)
            except Exception:  # noqa: BLE001 - a read-back is advice, never a crash
                return None

    def transcript_lines(self) -> list[str]:
        """For ``relay test`` and ``relay off``: what was done, and what the line reads."""
        lines = list(self.transcript) or ["nothing was done to the line"]
        state = self.read_back()
        if state is not None:
            level = self._level(state)
            lines.append(f"GPIO{self.pin} reads back {level} ({'ON' if state else 'OFF'})")
        return lines

    def hint(self, fault: str) -> str:
        return gpio.hint(fault)

    def _drop(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            try:
                device.close()
            except Exception as err:  # noqa: BLE001 - closing a broken line is best effort
                _log.debug("closing GPIO%d: %s", self.pin, err)

    def _release(self) -> None:
        with self._io_lock:
            self._drop()


def _check(config: RelayConfig) -> None:
    if config.pin is None:
        raise ConfigError("pin: required for relay type 'gpio'")
    if config.port is not None:
        raise ConfigError("port: relay type 'gpio' has no port (set relay.pin)")


def _build(config: RelayConfig) -> GpioRelay:
    assert config.pin is not None  # checked when the config was loaded
    return GpioRelay(config.pin, active_low=config.active_low, pulse_ms=config.pulse_ms)


async def _probe(config: RelayConfig, click: Relay | None) -> list[Check]:
    """The doctor's ``relay`` line (:mod:`scanner.relay.gpio_probe`, imported when it runs)."""
    from scanner.relay.gpio_probe import probe_gpio_relay

    return await probe_gpio_relay(config, click)


#: One relay on one line: no port, no second channel (a buzzer needs a board).
KIND = RelayKind(
    name="gpio",
    build=_build,
    channels=1,
    needs_port=False,
    takes_pin=True,
    check=_check,
    probe=_probe,
)
