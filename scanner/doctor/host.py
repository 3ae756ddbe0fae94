"""The machine under the gate: who runs the doctor, its groups, and the host's own services.

Which devices a config opens comes from its kinds (``opens`` on each
:class:`~scanner.sources.kind.SourceKind`, ``needs_port`` on the relay's); the
plumbing every device and storage check shares (blocking I/O bounded in time, user
and group names) is :mod:`scanner.probes`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from scanner.config import Config
from scanner.doctor.report import Check, Status
from scanner.probes import group_name, user
from scanner.relay import RELAY_KINDS
from scanner.sources import SOURCE_KINDS
from scanner.sources.kind import DeviceClass

UDEV_RULES = (
    Path("/etc/udev/rules.d/99-passqr-scanner.rules"),
    Path("/lib/udev/rules.d/99-passqr-scanner.rules"),
)
#: The group that opens each class of device.
GROUPS: dict[DeviceClass, str] = {
    "serial": "dialout", "input": "input", "camera": "video", "gpio": "gpio",
}  # fmt: skip


def opened(config: Config) -> set[DeviceClass]:
    """What the configured sources, relay and ``[[inputs]]`` open (``serial``, ``camera``,
    ``input``, ``gpio``)."""
    found = {SOURCE_KINDS.lookup(s.type, "sources.type").opens for s in config.sources}
    relay = RELAY_KINDS.lookup(config.relay.type, "relay.type")
    if relay.needs_port:
        found.add("serial")
    if relay.takes_pin or config.inputs:
        found.add("gpio")
    return {device for device in found if device is not None}


def uses_serial(config: Config) -> bool:
    """A relay board or a serial scanner: the ports need group dialout."""
    return "serial" in opened(config)


def uses_gpio(config: Config) -> bool:
    """A relay on a GPIO line or ``[[inputs]]``: /dev/gpiochip* needs group gpio."""
    return "gpio" in opened(config)


def check_user(config: Config) -> Check:
    me = user()
    groups = sorted({group_name(g) for g in os.getgroups()} | {group_name(os.getegid())})
    if os.geteuid() == 0:
        return Check(
            name="user",
            status=Status.OK,
            detail="root: device and journal checks show what root can do; the service runs "
            "as passqr with the groups its unit grants (SupplementaryGroups=)",
        )
    needed = {GROUPS[device] for device in opened(config)}
    missing = sorted(g for g in needed if g not in groups)
    detail = f"{me}, groups: {', '.join(groups)}"
    if not missing:
        return Check(name="user", status=Status.OK, detail=detail)
    return Check(
        name="user",
        status=Status.WARN,
        detail=f"{detail}; not in {', '.join(missing)}",
        fix="fine under the systemd units (SupplementaryGroups=); to run by hand: "
        f"sudo usermod -aG {','.join(missing)} {me}, then log in again",
    )


def check_modemmanager(config: Config) -> Check | None:
    """ModemManager probes serial ports with AT commands unless the udev rules stop it."""
    if not uses_serial(config):
        return None
    if shutil.which("ModemManager", path="/usr/sbin:/usr/bin:/sbin") is None:
        return None
    if any(p.exists() for p in UDEV_RULES):
        return Check(
            name="ModemManager",
            status=Status.OK,
            detail="installed, kept off the gate's ports by 99-passqr-scanner.rules",
        )
    return Check(
        name="ModemManager",
        status=Status.WARN,
        detail="installed, and may probe the scanner and relay ports with AT commands",
        fix="install systemd/99-passqr-scanner.rules (ID_MM_DEVICE_IGNORE) or "
        "apt purge modemmanager",
    )
