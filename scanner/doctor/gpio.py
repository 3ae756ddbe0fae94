"""The doctor's checks for a gate on the Pi's own pins (issue 16).

Like the rest of the doctor, nothing here changes the gate: the relay's line is claimed as an
output that is already OFF (which is what ``relay off`` does) and read back, each contact is
claimed as an input with its pull and read once, and everything is let go again. Only
``--relay-click`` switches the relay ON, for ``CLICK_MS``.

Wired into the doctor by two calls: :func:`gpio_relay_check` from
:func:`scanner.doctor.devices.check_relay` when ``relay.type = "gpio"``, and
:func:`gpio_input_checks` from :func:`scanner.doctor.cli.diagnose` after the sources.
"""

from __future__ import annotations

import asyncio
import grp
import os
import time
from pathlib import Path
from typing import Any

from scanner import gpio
from scanner.config import Config, GpioInputConfig
from scanner.doctor.host import CLICK_MS, OPEN_TIMEOUT_S, uses_gpio
from scanner.doctor.report import Check, Status
from scanner.errors import ConfigError
from scanner.gpio_input import GpioInput

_STOP_KIOSK = (
    "if the kiosk is running, that is it: stop it to check the pins alone "
    "(systemctl stop passqr-scanner); otherwise find the holder with gpioinfo"
)


def _not_installed(name: str) -> Check:
    return Check(
        name=name, status=Status.FAIL, detail="gpiozero is not installed", fix=gpio.INSTALL_HINT
    )


def _pin_failure(name: str, pin: int, err: BaseException) -> Check:
    text = gpio.describe(err)
    lowered = text.lower()
    if "in use" in lowered or "busy" in lowered:
        return Check(name=name, status=Status.WARN, detail=f"GPIO{pin}: {text}", fix=_STOP_KIOSK)
    if type(err).__name__ in ("PinInvalidPin", "PinNoPins") or "not a valid" in lowered:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"GPIO{pin} is not a pin of this board ({text})",
            fix=gpio.hint("invalid pin"),
        )
    return Check(name=name, status=Status.FAIL, detail=f"GPIO{pin}: {text}", fix=gpio.hint(text))


def _level(raw: Any) -> str:
    return "high" if raw else "low"


def relay_check(config: Config, *, click: bool = False) -> Check:
    """Claim the relay's line OFF, optionally pulse it once, and read it back."""
    relay = config.relay
    assert relay.pin is not None  # checked by load_config
    name = "relay"
    what = f"GPIO{relay.pin} {'active-low' if relay.active_low else 'active-high'}, {relay.lock}"
    try:
        gpiozero = gpio.load_gpiozero('relay.type = "gpio"')
    except ConfigError:
        return _not_installed(name)
    try:
        device = gpiozero.DigitalOutputDevice(
            relay.pin, active_high=not relay.active_low, initial_value=False
        )
    except Exception as err:  # noqa: BLE001 - every factory error is explained
        return _pin_failure(name, relay.pin, err)
    try:
        if click:
            device.on()
            time.sleep(CLICK_MS / 1000)
            device.off()
        on, raw = bool(device.value), device.pin.state
    except Exception as err:  # noqa: BLE001
        return _pin_failure(name, relay.pin, err)
    finally:
        device.close()
    if on:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{what}: set OFF, but reads back {_level(raw)} (ON)",
            fix="something else drives the line (a HAT's jumper, another program), or "
            "relay.active_low is wrong for this board",
        )
    done = f"clicked ({CLICK_MS} ms), " if click else ""
    tail = "" if click else "; nothing switched (--relay-click pulses it once)"
    return Check(
        name=name,
        status=Status.OK,
        detail=f"{what}: {done}claimed OFF, reads back {_level(raw)} (OFF){tail}",
    )


def input_check(index: int, item: GpioInputConfig) -> Check:
    """Claim a contact's pin with its pull and say whether it is at rest."""
    name = f"input {index + 1} ({item.role})"
    try:
        contact = GpioInput(item, index=index)
    except ConfigError:
        return _not_installed(name)
    try:
        device = contact.claim(lambda: None)
    except Exception as err:  # noqa: BLE001 - every factory error is explained
        return _pin_failure(name, item.pin, err)
    try:
        raw = device.pin.state
    except Exception as err:  # noqa: BLE001
        return _pin_failure(name, item.pin, err)
    finally:
        device.close()
    level = _level(raw)
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


async def _bounded(fn: Any, name: str, *args: Any, **kwargs: Any) -> Check:
    try:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            result: Check = await asyncio.to_thread(fn, *args, **kwargs)
            return result
    except TimeoutError:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"no answer from the GPIO driver within {OPEN_TIMEOUT_S:.0f} s",
            fix="reboot the Pi; check `dmesg | tail` for gpio errors",
        )


async def gpio_relay_check(config: Config, *, click: bool = False) -> Check:
    """The doctor's ``relay`` line for ``relay.type = "gpio"``."""
    return await _bounded(relay_check, "relay", config, click=click)


async def gpio_input_checks(config: Config) -> list[Check]:
    """The doctor's ``gpio`` line (the chips) and one line per ``[[inputs]]``; none without."""
    if not uses_gpio(config):
        return []
    checks = [check_gpiochips()]
    for i, item in enumerate(config.inputs):
        checks.append(await _bounded(input_check, f"input {i + 1} ({item.role})", i, item))
    return checks
