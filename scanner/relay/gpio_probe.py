"""The doctor's probe of ``relay.type = "gpio"`` (the kind's ``probe``, issue 16).

Nothing changes the gate: the line is claimed as an output already OFF (what ``relay off``
does) and read back, then let go. Only ``--relay-click`` switches it ON, once, for
:data:`~scanner.relay.probe.CLICK_MS`. Imported by the kind's probe when the doctor runs,
never when a config is validated.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from scanner import gpio
from scanner.checks import Check, Status
from scanner.errors import ConfigError
from scanner.probes import OPEN_TIMEOUT_S, blocking
from scanner.relay.probe import CLICK_MS

if TYPE_CHECKING:
    from scanner.relay.base import Relay
    from scanner.relay.kind import RelayConfig

__all__ = ["probe_gpio_relay", "relay_check"]


def relay_check(config: RelayConfig, *, click: bool = False) -> Check:
    """Claim the relay's line OFF, optionally pulse it once, and read it back."""
    assert config.pin is not None  # checked by load_config
    name = "relay"
    low = "active-low" if config.active_low else "active-high"
    what = f"GPIO{config.pin} {low}, {config.lock}"
    try:
        gpiozero = gpio.load_gpiozero('relay.type = "gpio"')
    except ConfigError:
        return gpio.not_installed(name)
    try:
        device = gpiozero.DigitalOutputDevice(
            config.pin, active_high=not config.active_low, initial_value=False
        )
    except Exception as err:  # noqa: BLE001 - every factory error is explained
        return gpio.pin_failure(name, config.pin, err)
    try:
        if click:
            device.on()
            time.sleep(CLICK_MS / 1000)
            device.off()
        on, raw = bool(device.value), device.pin.state
    except Exception as err:  # noqa: BLE001
        return gpio.pin_failure(name, config.pin, err)
    finally:
        device.close()
    if on:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{what}: set OFF, but reads back {gpio.level(raw)} (ON)",
            fix="something else drives the line (a HAT's jumper, another program), or "
            "relay.active_low is wrong for this board",
        )
    done = f"clicked ({CLICK_MS} ms), " if click else ""
    tail = "" if click else "; nothing switched (--relay-click pulses it once)"
    return Check(
        name=name,
        status=Status.OK,
        detail=f"{what}: {done}claimed OFF, reads back {gpio.level(raw)} (OFF){tail}",
    )


async def probe_gpio_relay(config: RelayConfig, click: Relay | None) -> list[Check]:
    """The ``relay`` line. ``click`` (the driver, not started) asks for one pulse: the line
    is pulsed here, on its own, so that it can be read back at once."""
    try:
        return [await blocking(lambda: relay_check(config, click=click is not None))]
    except TimeoutError:
        return [gpio.hung("relay", OPEN_TIMEOUT_S)]
