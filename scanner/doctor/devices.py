"""The gate's devices: what is plugged in, and can each configured one be opened?

Nothing is written to a device: a serial port is opened exclusively and closed
(as the kiosk would open it), a camera shows one frame, an input device is
looked up by name. The relay is switched only with ``--relay-click``. A relay on
a GPIO line and the ``[[inputs]]`` contacts are checked in :mod:`scanner.doctor.gpio`.
"""

from __future__ import annotations

import dataclasses
import errno
import importlib.util
import os
import time
from pathlib import Path

import serial

from scanner.config import (
    CameraSourceConfig,
    Config,
    EvdevSourceConfig,
    KeyboardSourceConfig,
    SerialSourceConfig,
    SimulatedSourceConfig,
)
from scanner.doctor.gpio import gpio_relay_check
from scanner.doctor.host import CLICK_MS, blocking, group_hint, resolved, uses_serial
from scanner.doctor.report import Check, Status
from scanner.errors import ScannerError, redact

__all__ = ["CLICK_MS", "check_inventory", "check_relay", "check_sources"]

#: How long a camera may take to show its first frame.
CAMERA_FRAME_S = 3.0
DEV = Path("/dev")

_BUSY = {errno.EAGAIN, errno.EWOULDBLOCK, errno.EBUSY}


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
    needs_camera = config is not None and any(
        isinstance(s, CameraSourceConfig) for s in config.sources
    )
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


# -- serial ports --------------------------------------------------------------------------------


def _open_serial(port: str, baudrate: int) -> None:
    """Open exclusively and close, writing nothing (as the kiosk would open it)."""
    handle = serial.Serial(port, baudrate, timeout=0, exclusive=True)
    handle.close()


async def check_serial(name: str, port: str, baudrate: int, what: str) -> Check:
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


# -- cameras -------------------------------------------------------------------------------------


def _camera_precheck(name: str, device: int | str) -> Check | None:
    """A ``/dev`` path that is missing or closed to us: no need to start OpenCV."""
    if not (isinstance(device, str) and device.startswith("/dev/")):
        return None
    if not os.path.exists(device):
        return device_failure(name, device, FileNotFoundError(errno.ENOENT, "not found"), "camera")
    if not os.access(device, os.R_OK | os.W_OK):
        return device_failure(name, device, PermissionError(errno.EACCES, "denied"), "camera")
    return None


def _first_frame(source: CameraSourceConfig) -> str:
    """Open the camera and read until a frame comes; its size, or "" when none did."""
    from scanner.sources.camera import backend_for

    backend = backend_for(source)()
    backend.open()
    try:
        deadline = time.monotonic() + CAMERA_FRAME_S
        while time.monotonic() < deadline:
            gray = backend.read()
            if gray is not None:
                return f"opens, a {gray.shape[1]}x{gray.shape[0]} frame"
        return ""
    finally:
        backend.close()


async def check_camera(name: str, source: CameraSourceConfig) -> Check:
    device = source.device
    if isinstance(device, str) and (device == "synthetic" or device.startswith("synthetic?")):
        return Check(name=name, status=Status.OK, detail="synthetic frames: no device")
    early = _camera_precheck(name, device)
    if early is not None:
        return early
    if importlib.util.find_spec("scanner.sources.camera") is None:
        return Check(
            name=name,
            status=Status.SKIP,
            detail="camera support (scanner.sources.camera) is not in this version: not opened",
        )
    try:
        text = await blocking(lambda: _first_frame(source))
    except TimeoutError:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{device}: opening hangs",
            fix="unplug and replug the camera; `dmesg | tail` shows USB errors",
        )
    except ScannerError as err:  # CaptureError, CaptureUnavailable: they say why and how
        return Check(
            name=name,
            status=Status.FAIL,
            detail=err.message,
            fix="v4l2-ctl --list-devices lists the cameras; a CSI camera is device = "
            '"picamera2" (python3-picamera2, a venv with --system-site-packages)',
        )
    except Exception as err:  # noqa: BLE001 - OpenCV and libcamera raise anything
        return Check(name=name, status=Status.FAIL, detail=f"{device}: {redact(str(err))}")
    if not text:
        return Check(
            name=name,
            status=Status.FAIL,
            detail=f"{device}: opens, but no frame in {CAMERA_FRAME_S:.0f} s",
            fix="something else may be using the camera, or it needs more USB power",
        )
    return Check(name=name, status=Status.OK, detail=f"{device}: {text}")


# -- input devices -------------------------------------------------------------------------------


def _evdev_label(path: str) -> str:
    """Open the node (as the kiosk would) and name it, when python-evdev is there."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    os.close(fd)
    if importlib.util.find_spec("evdev") is None:
        return ""
    import evdev

    device = evdev.InputDevice(path)
    try:
        return f" ({device.name})"
    finally:
        device.close()


def _evdev_find(wanted: str) -> tuple[str | None, list[str]]:
    """The first input device named like ``wanted``, and every name seen."""
    import evdev

    names: list[str] = []
    for path in evdev.list_devices():
        try:
            device = evdev.InputDevice(path)
        except OSError:
            continue
        label = str(device.name)
        device.close()
        names.append(label)
        if wanted.lower() in label.lower():
            return path, names
    return None, names


async def check_evdev(name: str, source: EvdevSourceConfig) -> Check:
    wanted = source.device
    if wanted.startswith("/"):
        try:
            label = await blocking(lambda: _evdev_label(wanted))
        except (OSError, TimeoutError) as err:
            return device_failure(name, wanted, err, "scanner")
        return Check(name=name, status=Status.OK, detail=f"{resolved(wanted)}: found{label}")
    if importlib.util.find_spec("evdev") is None:
        return Check(
            name=name,
            status=Status.FAIL,
            detail="python-evdev is not installed",
            fix="pip install 'passqr-scanner[evdev]' into the kiosk's virtual environment",
        )
    found, names = await blocking(lambda: _evdev_find(wanted))
    if found is not None:
        return Check(name=name, status=Status.OK, detail=f"{wanted!r}: found at {found}")
    seen = ", ".join(names) or "no readable input devices (is the user in group input?)"
    return Check(
        name=name,
        status=Status.FAIL,
        detail=f"no input device named like {wanted!r}; found: {seen}",
        fix="plug the scanner in, or set device to a /dev/input/by-id/...-event-kbd path",
    )


# -- the configured sources and the relay --------------------------------------------------------


async def check_sources(config: Config) -> list[Check]:
    checks: list[Check] = []
    for i, source in enumerate(config.sources, 1):
        name = f"source {i} ({source.type})"
        if isinstance(source, SerialSourceConfig):
            checks.append(await check_serial(name, source.port, source.baudrate, "scanner"))
        elif isinstance(source, KeyboardSourceConfig):
            checks.append(
                Check(
                    name=name,
                    status=Status.SKIP,
                    detail="n/a: a keyboard-wedge scanner types into the kiosk's terminal",
                )
            )
        elif isinstance(source, SimulatedSourceConfig):
            checks.append(Check(name=name, status=Status.OK, detail="n/a: scripted codes"))
        elif isinstance(source, CameraSourceConfig):
            checks.append(await check_camera(name, source))
        else:
            checks.append(await check_evdev(name, source))
    return checks


async def _click(config: Config) -> Check:
    """Pulse the relay once (``CLICK_MS``); on failure, say why the port would not do."""
    from scanner.relay.check import relay_test

    relay = config.relay
    assert relay.port is not None  # checked by load_config
    lines: list[str] = []
    status = await relay_test(relay, lines.append, CLICK_MS)
    transcript = "; ".join(" ".join(line.split()) for line in lines)
    if status == 0:
        return Check(name="relay", status=Status.OK, detail=f"clicked: {transcript}")
    check = await check_serial("relay", relay.port, relay.baudrate, "relay board")
    return Check(
        name="relay",
        status=Status.FAIL,
        detail=f"click failed: {transcript}",
        fix=check.fix or "check relay.type and relay.channel against the board",
    )


async def check_relay(config: Config, *, click: bool) -> Check:
    relay = config.relay
    if relay.type == "none":
        return Check(name="relay", status=Status.OK, detail="relay.type = none: no door relay")
    if relay.type == "gpio":  # issue 16: a line of the Pi's own, no port
        return await gpio_relay_check(config, click=click)
    assert relay.port is not None  # checked by load_config
    if click:
        return await _click(config)
    check = await check_serial("relay", relay.port, relay.baudrate, "relay board")
    if check.status is Status.OK:
        reset = " (this board resets when opened)" if relay.open_delay_ms else ""
        return dataclasses.replace(
            check,
            detail=f"{relay.type} ch{relay.channel}, {relay.lock}: {check.detail}{reset}; "
            "nothing switched (--relay-click pulses it once)",
        )
    return check
