"""What the device kinds' doctor probes share: blocking I/O in time, failures explained.

A kind's probe (``probe=`` on :class:`~scanner.relay.kind.RelayKind` and
:class:`~scanner.sources.kind.SourceKind`) opens its device the way the kiosk
would, off the event loop (:func:`blocking`), and says what to do when that fails
(:func:`device_failure`: a missing node, a group the user lacks, a port held by
the running kiosk). :func:`serial_port` is the probe of every serial device: a
scanner, a relay board.

Standard library only on import: pyserial loads when a port is opened.
"""

from __future__ import annotations

import asyncio
import errno
import grp
import os
import pwd
import stat
import threading
from collections.abc import Callable
from typing import TypeVar

from scanner.checks import Check, Status
from scanner.errors import redact

__all__ = [
    "OPEN_TIMEOUT_S",
    "blocking",
    "device_failure",
    "group_hint",
    "group_name",
    "resolved",
    "serial_port",
    "user",
    "user_name",
]

T = TypeVar("T")

#: How long opening a device may take before the check calls it hung.
OPEN_TIMEOUT_S = 10.0

_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY}


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


# -- who may open a device -----------------------------------------------------------------------


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


# -- a device that would not open ----------------------------------------------------------------


def _errno(err: BaseException) -> int | None:
    code = getattr(err, "errno", None)
    if isinstance(code, int):
        return code
    cause = err.__cause__ or err.__context__
    return _errno(cause) if cause is not None else None


def device_failure(name: str, path: str, err: BaseException, what: str) -> Check:
    """A device open that failed, explained."""
    code = _errno(err)
    text = redact(str(err)) or type(err).__name__
    if code == errno.ENOENT:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{path}: not found",
            fix=f"plug the {what} in and check the path (the ports found are listed above); "
            "a /dev/passqr-* name needs 99-passqr-scanner.rules in /etc/udev/rules.d",
        )
    if code in (errno.EACCES, errno.EPERM):
        return Check(
            name=name, status=Status.FAIL, detail=f"{path}: permission denied", fix=group_hint(path)
        )
    if code in _BUSY:
        return Check(
            name=name,
            status=Status.WARN,
            detail=f"{path}: in use by another process ({text})",
            fix="if the kiosk is running, that is it: stop it to check the device alone "
            "(systemctl stop passqr-scanner); otherwise find the holder with fuser -v " + path,
        )
    return Check(
        name=name,
        status=Status.FAIL,
        detail=f"{path}: cannot open: {text}",
        fix=f"unplug and replug the {what}; check `dmesg | tail` for USB errors",
    )


# -- serial ports --------------------------------------------------------------------------------


def _open_serial(port: str, baudrate: int) -> None:
    """Open exclusively and close, writing nothing (as the kiosk would open it)."""
    import serial

    handle = serial.Serial(port, baudrate, timeout=0, exclusive=True)
    handle.close()


async def serial_port(name: str, port: str, baudrate: int, what: str) -> Check:
    """Open ``port`` exclusively and close it, writing nothing; ``what`` is in the fixes."""
    import serial

    try:
        await blocking(lambda: _open_serial(port, baudrate))
    except TimeoutError:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{port}: opening hangs",
            fix=f"unplug and replug the {what}",
        )
    except (serial.SerialException, OSError, ValueError) as err:
        return device_failure(name, port, err, what)
    return Check(name=name, status=Status.OK, detail=f"{resolved(port)}: opens (exclusive)")
