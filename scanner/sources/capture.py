"""Frame producers for the camera source: one interface, one class per kind of camera.

A :class:`CaptureBackend` is opened, read and closed by one capture thread, and
only by it (a driver stuck in ``read`` is abandoned, never touched from another
thread). ``read`` returns the next frame as 8-bit grayscale, converted once at the
source: ``cv2.cvtColor`` BGR -> GRAY for a webcam or video, the Y plane (a view,
no copy) for Picamera2's YUV420. :class:`FrameQueue` carries frames to the decode
thread, keeping only the newest and counting the ones it drops.

Errors::

    DeviceError
     └── CaptureError          the camera cannot be opened or stopped delivering
          └── CaptureUnavailable   its library is missing (Picamera2): retried rarely
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from scanner.errors import DeviceError

if TYPE_CHECKING:
    from scanner.decode import Gray

_log = logging.getLogger(__name__)


class CaptureError(DeviceError):
    """The camera cannot be opened, or failed while reading."""


class CaptureUnavailable(CaptureError):
    """The camera's library is not installed; the message says how to install it."""


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """A captured frame on its way to the decoder.

    Attributes:
        gray: the grayscale image (never written to after capture).
        at: monotonic seconds when it was captured (a synthetic camera's own clock).
        seq: frames captured before this one by this source.
    """

    gray: Gray
    at: float
    seq: int


class FrameQueue:
    """A bounded queue between the capture and decode threads that keeps the newest.

    A decoder slower than the camera must see the latest frame, not a backlog: a
    full queue drops its oldest frame and counts it in ``dropped``.
    """

    def __init__(self, size: int = 1) -> None:
        if size < 1:
            raise ValueError("a frame queue holds at least one frame")
        self._frames: deque[Frame] = deque()
        self._size = size
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            if len(self._frames) >= self._size:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(frame)
            self._cond.notify()

    def get(self, timeout: float) -> Frame | None:
        """The oldest frame kept, waiting up to ``timeout`` s; None if none came or closed."""
        with self._cond:
            if not self._frames and not self._closed:
                self._cond.wait(timeout)
            return self._frames.popleft() if self._frames else None

    def clear(self) -> None:
        with self._cond:
            self._frames.clear()

    def close(self) -> None:
        """Wake every waiter; ``get`` returns what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def reopen(self) -> None:
        """Accept frames again after :meth:`close` (a source run a second time)."""
        with self._cond:
            self._closed = False
            self._frames.clear()

    def __len__(self) -> int:
        with self._cond:
            return len(self._frames)


def to_gray(frame: Any) -> Gray:
    """A decoded camera frame as grayscale, converting only when it has colour."""
    import cv2  # here: the camera's module loads without OpenCV (config validation)

    if frame.ndim == 2:
        return cast("Gray", frame)
    if frame.shape[2] == 1:
        return cast("Gray", frame[:, :, 0])
    code = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cast("Gray", cv2.cvtColor(frame, code))


class CaptureBackend(ABC):
    """One camera, opened and read by the capture thread only.

    Attributes:
        description: what the status line calls it (``/dev/video0``, ``synthetic``).
    """

    description: str = "camera"

    @abstractmethod
    def open(self) -> None:
        """Open the device and start streaming.

        Raises:
            CaptureError: it cannot be opened (the message says why).
            CaptureUnavailable: its library is missing.
        """

    @abstractmethod
    def read(self) -> Gray | None:
        """Block for the next frame (about one frame interval); None if none came.

        None is not an error: the camera source's watchdog decides when silence
        means the camera is gone. A backend must not spin when it has no frame.

        Raises:
            CaptureError: the device failed for good (unplugged).
        """

    @abstractmethod
    def close(self) -> None:
        """Release the device; safe to call twice or after a failed ``open``."""

    @property
    def finished(self) -> bool:
        """True when this camera has nothing more to show, ever (a script played once)."""
        return False

    def timestamp(self) -> float:
        """Monotonic seconds of the frame ``read`` returned last (now, for a real camera)."""
        return time.monotonic()


def _is_url(device: str) -> bool:
    return "://" in device


class OpenCvCapture(CaptureBackend):
    """A USB/V4L2 camera, a video file or an RTSP/HTTP stream through ``cv2.VideoCapture``.

    Cameras (an index, ``/dev/video*``, ``/dev/v4l/by-id/...``) open with CAP_V4L2
    and are asked for MJPG at the configured size and rate (MJPG keeps a 1280x720
    stream within USB 2 bandwidth) and a one-frame driver buffer (less latency).
    Streams get open and read timeouts. A video file is played at ``fps`` like a
    camera unless ``pace`` is False (tests and benchmarks play it as fast as it
    decodes); at its end ``read`` returns None, so the watchdog reopens it.

    Args:
        device: an index, a device path, a file path (``img%03d.png``: an image
            sequence) or a URL.
        pace: deliver a file's frames at ``fps`` (default: True for files).
    """

    #: Open/read timeouts for network streams, in milliseconds.
    STREAM_TIMEOUT_MS = 5000

    def __init__(
        self,
        device: int | str,
        *,
        width: int = 1280,
        height: int = 720,
        fps: int = 30,
        pace: bool | None = None,
    ) -> None:
        if isinstance(device, str) and device.strip().isdigit():
            device = int(device)
        self.device = device
        self.width, self.height, self.fps = width, height, fps
        self.is_camera = isinstance(device, int) or str(device).startswith("/dev/")
        self.is_stream = isinstance(device, str) and _is_url(device)
        self.is_file = not self.is_camera and not self.is_stream
        self.pace = self.is_file if pace is None else pace
        self.description = f"/dev/video{device}" if isinstance(device, int) else str(device)
        self._cap: Any = None
        self._next_due = 0.0
        self._fail_wait = min(1.0 / max(fps, 1), 0.05)

    def open(self) -> None:
        import cv2

        self.close()
        target: int | str = self.device
        if self.is_camera:
            path = Path(self.description)
            if not path.exists():
                raise CaptureError(f"cannot open {self.description}: no such device")
            if not os.access(path, os.R_OK | os.W_OK):
                raise CaptureError(
                    f"cannot open {self.description}: permission denied (add the user to 'video')"
                )
            if isinstance(target, str):
                target = os.path.realpath(target)  # by-id symlinks -> /dev/videoN
            cap = cv2.VideoCapture(target, cv2.CAP_V4L2)
        elif self.is_stream:
            cap = cv2.VideoCapture(
                target,
                cv2.CAP_FFMPEG,
                [
                    cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                    self.STREAM_TIMEOUT_MS,
                    cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                    self.STREAM_TIMEOUT_MS,
                ],
            )
        else:
            # img%03d.png names an image sequence, not a file.
            if "%" not in self.description and not Path(self.description).exists():
                raise CaptureError(f"cannot open {self.description}: no such file")
            cap = cv2.VideoCapture(target)
        if not cap.isOpened():
            cap.release()
            raise CaptureError(f"cannot open {self.description}: OpenCV cannot read it")
        if self.is_camera:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_FPS, self.fps)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cap = cap
        self._next_due = time.monotonic()
        _log.info(
            "camera %s open: %dx%d at %.0f fps",
            self.description,
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            cap.get(cv2.CAP_PROP_FPS),
        )

    def read(self) -> Gray | None:
        cap = self._cap
        if cap is None:
            raise CaptureError(f"{self.description} is not open")
        if self.pace:
            delay = self._next_due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_due = max(self._next_due + 1.0 / max(self.fps, 1), time.monotonic() - 0.5)
        ok, frame = cap.read()
        if not ok or frame is None:
            # End of a file, or a camera between frames: wait a little, never spin.
            time.sleep(self._fail_wait)
            return None
        return to_gray(frame)

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()


class Picamera2Capture(CaptureBackend):
    """A Raspberry Pi CSI camera (Camera Module 2/3...) through Picamera2 and libcamera.

    ``cv2.VideoCapture`` cannot open these. The main stream is YUV420 at the
    configured size: its first ``height`` rows are the luma, a free grayscale
    image, returned as a view (the array's rows may be padded to the stride).
    Continuous autofocus is switched on where the camera has it (Module 3).
    Picamera2 comes from Debian (``python3-picamera2``), so the virtual
    environment must see system site packages.
    """

    description = "picamera2"

    def __init__(self, *, width: int = 1280, height: int = 720, fps: int = 30) -> None:
        self.width, self.height, self.fps = width, height, fps
        self._cam: Any = None
        self._size = (width, height)

    def open(self) -> None:
        self.close()
        try:
            from picamera2 import Picamera2
        except ImportError as err:
            raise CaptureUnavailable(
                "Picamera2 is not installed (apt install python3-picamera2; "
                "the venv needs --system-site-packages)"
            ) from err
        cam: Any = None
        try:
            cam = Picamera2()
            config = cam.create_video_configuration(
                main={"size": (self.width, self.height), "format": "YUV420"},
                controls={"FrameRate": float(self.fps)},
                buffer_count=4,
            )
            cam.configure(config)
            if "AfMode" in getattr(cam, "camera_controls", {}):
                cam.set_controls({"AfMode": 2})  # libcamera AfModeEnum.Continuous
            cam.start()
            size = cam.camera_config["main"]["size"]
            self._size = (int(size[0]), int(size[1]))
        except Exception as err:  # noqa: BLE001 - libcamera raises anything (RuntimeError, IndexError with no camera)
            if cam is not None:
                _close_quietly(cam)
            raise CaptureError(f"cannot open the CSI camera: {err or type(err).__name__}") from err
        self._cam = cam
        _log.info("Picamera2 open: %dx%d YUV420 at %d fps", *self._size, self.fps)

    def read(self) -> Gray | None:
        cam = self._cam
        if cam is None:
            raise CaptureError("the CSI camera is not open")
        try:
            yuv = cam.capture_array("main")
        except Exception as err:  # noqa: BLE001 - libcamera errors vary; the supervisor reopens
            raise CaptureError(f"CSI camera read failed: {err or type(err).__name__}") from err
        import numpy as np

        width, height = self._size
        return cast("Gray", np.asarray(yuv)[:height, :width])

    def close(self) -> None:
        cam, self._cam = self._cam, None
        if cam is not None:
            _close_quietly(cam)


def _close_quietly(cam: Any) -> None:
    for step in ("stop", "close"):
        try:
            getattr(cam, step)()
        except Exception as err:  # noqa: BLE001 - closing a failed camera must not raise
            _log.debug("Picamera2 %s: %s", step, err)
