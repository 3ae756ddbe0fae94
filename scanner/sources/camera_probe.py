"""The doctor's probe of a camera source: does it open and show a frame in time?

Imported by the camera kind's probe (:mod:`scanner.sources.camera`) when the doctor
runs, never when a config is validated. The capture backend comes from the kind
(``open_backend``), so OpenCV or Picamera2 load only here, on the doctor's I/O
thread; a ``/dev`` path that is missing or closed to us is reported before that.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from scanner.checks import Check, Status
from scanner.errors import ScannerError, redact
from scanner.probes import blocking, device_failure

if TYPE_CHECKING:
    from scanner.sources.capture import CaptureBackend

__all__ = ["CAMERA_FRAME_S", "first_frame_check"]

#: How long a camera may take to show its first frame.
CAMERA_FRAME_S = 3.0


def _precheck(name: str, device: int | str) -> Check | None:
    """A ``/dev`` path that is missing or closed to us: no need to start OpenCV."""
    if not (isinstance(device, str) and device.startswith("/dev/")):
        return None
    if not os.path.exists(device):
        return device_failure(name, device, FileNotFoundError(errno.ENOENT, "not found"), "camera")
    if not os.access(device, os.R_OK | os.W_OK):
        return device_failure(name, device, PermissionError(errno.EACCES, "denied"), "camera")
    return None


def _first_frame(open_backend: Callable[[], CaptureBackend]) -> str:
    """Open the camera and read until a frame comes; its size, or "" when none did."""
    backend = open_backend()
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


async def first_frame_check(
    name: str, device: int | str, open_backend: Callable[[], CaptureBackend]
) -> Check:
    """Open ``device`` with a fresh backend from ``open_backend`` and wait for one frame."""
    early = _precheck(name, device)
    if early is not None:
        return early
    try:
        text = await blocking(lambda: _first_frame(open_backend))
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
