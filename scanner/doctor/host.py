"""The machine under the gate: who runs the doctor, its groups, and the host's own services.

Also the plumbing every device and storage check shares: blocking I/O bounded in
time on a thread of its own (:func:`blocking`), and the names of users and groups
for the fixes that say ``usermod -aG``.
"""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from scanner.config import CameraSourceConfig, Config, EvdevSourceConfig, SerialSourceConfig
from scanner.doctor.report import Check, Status
from scanner.relay import RELAY_KINDS

T = TypeVar("T")

#: How long opening a device may take before the check calls it hung.
OPEN_TIMEOUT_S = 10.0
#: ``--relay-click``: long enough to hear the relay, short enough not to hold a door open.
CLICK_MS = 200
UDEV_RULES = (
    Path("/etc/udev/rules.d/99-passqr-scanner.rules"),
    Path("/lib/udev/rules.d/99-passqr-scanner.rules"),
)


async def blocking(fn: Callable[[], T], timeout_s: float = OPEN_TIMEOUT_S) -> T:
    """Run blocking device I/O on a daemon thread, bounded in time.

    A driver stuck in ``open()`` (a camera, a half-dead USB device) is left behind
    rather than hanging the report or the interpreter's exit.

    Raises:
        TimeoutError: no result within ``timeout_s``.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def work() -> None:
        try:
            result, error = fn(), None
        except BaseException as err:  # noqa: BLE001 - handed over to the awaiting task
            result, error = None, err
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop is gone: nobody waits for this any more

    threading.Thread(target=work, name="doctor-io", daemon=True).start()
    async with asyncio.timeout(timeout_s):
        return await future


def user() -> str:
    """Who runs the doctor."""
    return user_name(os.geteuid())


def user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def group_hint(path: str) -> str:
    """Why a device refused us, and the group that would let us in."""
    try:
        st = os.stat(path)
    except OSError:
        return "check the device's owner and mode (ls -l)"
    group = group_name(st.st_gid)
    me = user()
    member = st.st_gid == os.getegid() or st.st_gid in os.getgroups()
    mode = stat.filemode(st.st_mode)
    if member:
        return (
            f"{path} is {mode} {user_name(st.st_uid)}:{group} and {me} is in group {group}: "
            "check the udev rules' MODE and the unit's DeviceAllow="
        )
    return (
        f"{path} is {mode} {user_name(st.st_uid)}:{group}; add the user to that group: "
        f"sudo usermod -aG {group} {me}, then log in again (the systemd units grant it "
        "with SupplementaryGroups=)"
    )


def resolved(path: str) -> str:
    """``path -> target`` for a symlink (a udev name), else the path."""
    real = os.path.realpath(path)
    return f"{path} -> {real}" if real != path else path


def uses_serial(config: Config) -> bool:
    """A relay board or a serial scanner: the ports need group dialout."""
    return RELAY_KINDS[config.relay.type].needs_port or any(
        isinstance(s, SerialSourceConfig) for s in config.sources
    )


def uses_gpio(config: Config) -> bool:
    """A relay on a GPIO line or ``[[inputs]]``: /dev/gpiochip* needs group gpio."""
    return RELAY_KINDS[config.relay.type].takes_pin or bool(config.inputs)


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
    needed: set[str] = set()
    if uses_serial(config):
        needed.add("dialout")
    if uses_gpio(config):
        needed.add("gpio")
    if any(isinstance(s, EvdevSourceConfig) for s in config.sources):
        needed.add("input")
    if any(isinstance(s, CameraSourceConfig) for s in config.sources):
        needed.add("video")
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
