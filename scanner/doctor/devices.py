"""The gate's devices: what is plugged in, and can each configured one be opened?

Each kind checks its own device (``probe=`` on its :class:`RelayKind` or
:class:`SourceKind`, found in the registries by ``type``); this module lists what
is plugged in and asks every configured source, then the relay, in that order.

Nothing is written to a device: a serial port is opened exclusively and closed
(as the kiosk would open it), a camera shows one frame, an input device is
looked up by name. The relay is switched only with ``--relay-click``.
"""

from __future__ import annotations

from pathlib import Path

from scanner.config import Config
from scanner.doctor.host import opened, uses_serial
from scanner.doctor.report import Check, Status
from scanner.errors import ScannerError
from scanner.probes import resolved
from scanner.relay import RELAY_KINDS, build_relay
from scanner.relay.probe import CLICK_MS
from scanner.sources import SOURCE_KINDS

__all__ = ["CLICK_MS", "check_inventory", "check_relay", "check_sources"]

DEV = Path("/dev")


# -- what is plugged in ------------------------------------------------------------------------


def _v4l_name(dev: Path) -> str:
    try:
        return (Path("/sys/class/video4linux") / dev.name / "name").read_text().strip()
    except OSError:
        return ""


def check_inventory(config: Config | None, dev: Path = DEV) -> list[Check]:
    """The cameras and serial ports found, so a wrong path in the config stands out."""
    cameras = sorted(dev.glob("video*"), key=lambda p: (len(p.name), p.name))
    camera_text = [f"{p} ({n})" if (n := _v4l_name(p)) else str(p) for p in cameras]
    serials = [resolved(str(p)) for p in sorted((dev / "serial" / "by-id").glob("*"))]
    for pattern in ("ttyUSB*", "ttyACM*", "passqr-*"):
        serials += [resolved(str(p)) for p in sorted(dev.glob(pattern))]
    needs_serial = config is not None and uses_serial(config)
    needs_camera = config is not None and "camera" in opened(config)
    no_camera, no_serial = needs_camera and not cameras, needs_serial and not serials
    return [
        Check(
            name="cameras found",
            status=Status.WARN if no_camera else Status.OK,
            detail="; ".join(camera_text) or "none (/dev/video*)",
            fix="plug the camera in; a CSI camera is used through Picamera2 (device = "
            '"picamera2"), not /dev/video*'
            if no_camera
            else "",
        ),
        Check(
            name="serial ports found",
            status=Status.WARN if no_serial else Status.OK,
            detail="; ".join(serials) or "none (/dev/serial/by-id, /dev/ttyUSB*, /dev/ttyACM*)",
            fix="plug the scanner and relay in; `dmesg | tail` shows what the kernel saw"
            if no_serial
            else "",
        ),
    ]


# -- the configured sources and the relay: each kind's probe --------------------------------------


async def check_sources(config: Config) -> list[Check]:
    """Every ``[[sources]]`` table, checked by its kind's probe (``source 1 (serial)``...)."""
    checks: list[Check] = []
    for i, source in enumerate(config.sources, 1):
        kind = SOURCE_KINDS.lookup(source.type, "sources.type")
        checks += await kind.probe(source, f"source {i} ({source.type})")
    return checks


async def check_relay(config: Config, *, click: bool) -> list[Check]:
    """``[relay]``, checked by its kind's probe; ``click``: pulse it once (``CLICK_MS``)."""
    kind = RELAY_KINDS.lookup(config.relay.type, "relay.type")
    try:
        driver = build_relay(config.relay) if click else None
    except ScannerError as err:  # a library the kind needs is missing (gpio: gpiozero)
        return [Check(name="relay", status=Status.FAIL, detail=f"cannot click: {err}")]
    return await kind.probe(config.relay, driver)
