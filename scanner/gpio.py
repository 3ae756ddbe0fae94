"""The one place that knows gpiozero: loading it, and what its errors mean at a gate.

gpiozero (optional extra ``gpio``) picks a pin factory the first time a pin is used: lgpio
(``/dev/gpiochip*``; the only one on a Raspberry Pi 5, which has no RPi.GPIO), then RPi.GPIO,
pigpio, and its own native driver. Tests set ``gpiozero.Device.pin_factory`` to gpiozero's
``MockFactory``; nothing here cares which factory it is.

The doctor's GPIO checks (the relay kind's probe, :mod:`scanner.relay.gpio_probe`, and the
``[[inputs]]`` checks, :mod:`scanner.doctor.gpio`) explain a failed claim with
:func:`pin_failure`.

A missing gpiozero is a configuration error (one line, exit 78), found when the kiosk or
``relay off`` is built, not when a pin is first switched. Everything gpiozero or a factory
raises once running is a device fault (:func:`describe`): the relay goes to FAULT and an
input to DEGRADED, each retried, and the kiosk goes on.
"""

from __future__ import annotations

import importlib
import types

from scanner.checks import Check, Status
from scanner.errors import ConfigError

INSTALL_HINT = (
    "pip install 'passqr-scanner[gpio]' into the kiosk's venv (on a Raspberry Pi 5 also lgpio: "
    "apt install python3-lgpio with a venv made with --system-site-packages, or pip install lgpio)"
)


def load_gpiozero(what: str) -> types.ModuleType:
    """Import gpiozero for ``what`` (``relay.type = "gpio"``, ``inputs[0]``).

    Raises:
        ConfigError: gpiozero is not installed; the message says how to install it.
    """
    try:
        return importlib.import_module("gpiozero")
    except ImportError as err:
        raise ConfigError(f"{what} needs gpiozero, which is not installed: {INSTALL_HINT}") from err


def describe(err: BaseException) -> str:
    """A gpiozero or pin-factory exception as one line for the status line and the log."""
    name = type(err).__name__
    text = " ".join(str(err).split()) or name
    if name == "GPIOPinInUse":
        # "pin GPIO17 is already in use by <gpiozero.DigitalOutputDevice object ...>"
        return f"{text.split(' by ', 1)[0]} (by this program)"
    if name in ("BadPinFactory", "PinFactoryFallback"):
        return f"no GPIO pin factory: {text}"
    if name == "error" and type(err).__module__ == "lgpio":
        return f"lgpio: {text}"  # 'GPIO busy': another process holds the line
    return f"{name}: {text}"


def hint(fault: str) -> str:
    """What an installer does about a GPIO fault, from :func:`describe`'s text."""
    text = fault.lower()
    if "busy" in text or "in use" in text:
        return (
            "another program holds the line (a running kiosk: systemctl stop passqr-scanner; "
            "find it with gpioinfo), or two devices in the config share a pin"
        )
    if "pin factory" in text or "gpiochip" in text or "no such file" in text:
        return (
            "gpiozero found no way to reach the pins: on a Raspberry Pi 5 install lgpio "
            "(apt install python3-lgpio); under systemd keep DeviceAllow=char-gpiochip rw"
        )
    if "permission" in text or "errno 13" in text:
        return (
            "the service user needs the gpio group (usermod -aG gpio passqr; the units grant "
            "it with SupplementaryGroups=gpio)"
        )
    if "invalid" in text or "not a valid" in text or "unknown" in text:
        return "use a BCM number of a pin on the header (GPIO2-GPIO27), not the header's pin number"
    return "check the pin number (BCM), the wiring and `pinctrl get` / `gpioinfo`"


STOP_KIOSK = (
    "if the kiosk is running, that is it: stop it to check the pins alone "
    "(systemctl stop passqr-scanner); otherwise find the holder with gpioinfo"
)


def not_installed(name: str) -> Check:
    """The doctor's line for a GPIO device without gpiozero."""
    return Check(
        name=name, status=Status.FAIL, detail="gpiozero is not installed", fix=INSTALL_HINT
    )


def pin_failure(name: str, pin: int, err: BaseException) -> Check:
    """The doctor's line for a pin that could not be claimed or read."""
    text = describe(err)
    lowered = text.lower()
    if "in use" in lowered or "busy" in lowered:
        return Check(name=name, status=Status.WARN, detail=f"GPIO{pin}: {text}", fix=STOP_KIOSK)
    if type(err).__name__ in ("PinInvalidPin", "PinNoPins") or "not a valid" in lowered:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"GPIO{pin} is not a pin of this board ({text})",
            fix=hint("invalid pin"),
        )
    return Check(name=name, status=Status.FAIL, detail=f"GPIO{pin}: {text}", fix=hint(text))


def level(raw: object) -> str:
    """A pin's raw state as the doctor says it."""
    return "high" if raw else "low"


def hung(name: str, timeout_s: float) -> Check:
    """The doctor's line for a GPIO driver that did not answer in time."""
    return Check(
        name=name,
        status=Status.FAIL,
        detail=f"no answer from the GPIO driver within {timeout_s:.0f} s",
        fix="reboot the Pi; check `dmesg | tail` for gpio errors",
    )
