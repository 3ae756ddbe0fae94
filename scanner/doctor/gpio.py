"""The doctor's checks of the Pi's own pins (issue 16): /dev/gpiochip* and each ``[[inputs]]``
contact.

Like the rest of the doctor, nothing here changes the gate: each contact is claimed as an
input with its pull, read once and let go. A relay on a GPIO line is its kind's business
(``probe`` of ``relay.type = "gpio"``, :mod:`scanner.relay.gpio_probe`). Wired into
:func:`scanner.doctor.cli.diagnose` by one call, :func:`gpio_input_checks`, after the sources.
"""

from __future__ import annotations

import functools
import grp
import os
from collections.abc import Callable
from pathlib import Path

from scanner import gpio
from scanner.config import Config, GpioInputConfig
from scanner.doctor.host import uses_gpio
from scanner.doctor.report import Check, Status
from scanner.errors import ConfigError
from scanner.gpio_input import GpioInput
from scanner.probes import OPEN_TIMEOUT_S, blocking


def input_check(index: int, item: GpioInputConfig) -> Check:
    """Claim a contact's pin with its pull and say whether it is at rest."""
    name = f"input {index + 1} ({item.role})"
    try:
        contact = GpioInput(item, index=index)
    except ConfigError:
        return gpio.not_installed(name)
    try:
        device = contact.claim(lambda: None)
    except Exception as err:  # noqa: BLE001 - every factory error is explained
        return gpio.pin_failure(name, item.pin, err)
    try:
        raw = device.pin.state
    except Exception as err:  # noqa: BLE001
        return gpio.pin_failure(name, item.pin, err)
    finally:
        device.close()
    level = gpio.level(raw)
    where = f"{contact.name}: GPIO{item.pin} pull {item.pull}"
    if level != item.active_level:
        return Check(name=name, status=Status.OK, detail=f"{where}, idle ({level})")
    other = "high" if item.active_level == "low" else "low"
    if item.role in ("passage", "exit"):
        fix = (
            "a contact closed at rest never reports anything: wire the normally open contact "
            f'(or set active = "{other}" for a normally closed one) and check the pull'
        )
    else:
        fix = (
            f"the {item.role} contact is active: look at the enclosure or the alarm panel, or "
            f'the wiring (normally open vs normally closed: active = "{other}")'
        )
    return Check(name=name, status=Status.WARN, detail=f"{where}, triggered now ({level})", fix=fix)


def check_gpiochips(dev: Path = Path("/dev")) -> Check:
    """The GPIO character devices lgpio opens, and whether this user may."""
    chips = sorted(dev.glob("gpiochip*"))
    if not chips:
        return Check(
            name="gpio",
            status=Status.WARN,
            detail=f"no {dev}/gpiochip*: not a Raspberry Pi, or the devices are hidden",
            fix="on a Pi: ls -l /dev/gpiochip*; under systemd keep DeviceAllow=char-gpiochip rw "
            "(PrivateDevices= hides them)",
        )
    denied = [c for c in chips if not os.access(c, os.R_OK | os.W_OK)]
    names = ", ".join(c.name for c in chips)
    if denied:
        try:
            group = grp.getgrgid(denied[0].stat().st_gid).gr_name
        except (KeyError, OSError):
            group = "gpio"
        return Check(
            name="gpio",
            status=Status.FAIL,
            detail=f"{denied[0]}: permission denied ({names})",
            fix=f"add the user to group {group} (sudo usermod -aG {group} USER; the units grant "
            "it with SupplementaryGroups=gpio); without Raspberry Pi OS's udev rules, "
            "99-passqr-scanner.rules gives /dev/gpiochip* to group gpio",
        )
    return Check(name="gpio", status=Status.OK, detail=f"{names}: readable and writable")


async def _bounded(name: str, fn: Callable[[], Check]) -> Check:
    try:
        return await blocking(fn)
    except TimeoutError:
        return gpio.hung(name, OPEN_TIMEOUT_S)


async def gpio_input_checks(config: Config) -> list[Check]:
    """The doctor's ``gpio`` line (the chips) and one line per ``[[inputs]]``; none without."""
    if not uses_gpio(config):
        return []
    checks = [check_gpiochips()]
    for i, item in enumerate(config.inputs):
        name = f"input {i + 1} ({item.role})"
        checks.append(await _bounded(name, functools.partial(input_check, i, item)))
    return checks
