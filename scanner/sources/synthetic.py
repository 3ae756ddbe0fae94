"""A synthetic camera: generated frames that show QR codes, for the demo and tests.

``device = "synthetic"`` plays the source's ``codes``: each appears on a sheet of
paper held in front of a cluttered room, moves, scales and tilts a little (a
perspective warp), lingers, and leaves empty frames behind it; the next code comes
``interval_s`` after the previous one appeared. Frames carry sensor noise and a
touch of blur. The same seed gives the same frames, bit for bit.

Options go in the device string, so a config needs no extra keys::

    device = "synthetic"                                  # the defaults below
    device = "synthetic?interval_s=0.5&loop=false&seed=7"

``interval_s`` (4), ``linger_s`` (default: the smaller of 1.5 s and 60% of the
interval), ``start_delay_s`` (1), ``loop`` (true), ``seed`` (0), ``color`` (false:
BGR frames, converted to gray like a webcam's), ``realtime`` (true: frames at the
configured fps; false: as fast as they are read, with timestamps on the frames'
own clock), ``tail_s`` (1: empty frames after the last code when not looping).

It is a :class:`~scanner.sources.capture.CaptureBackend`, so its frames take the
very path a real camera's do: capture thread, frame queue, decoder, watchdog.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import cv2
import numpy as np
import numpy.typing as npt

from scanner.decode import Gray
from scanner.sources.capture import CaptureBackend, CaptureError, to_gray

#: Upscaling of a code's module bitmap before warping: crisp edges after the warp.
_MODULE_PX = 8
#: Largest noise offset between frames (pixels).
_NOISE_PAD = 32


@dataclass(frozen=True, kw_only=True)
class SyntheticScript:
    """When each code is in view.

    Code ``k`` appears at ``start_delay_s + k * interval_s`` and stays ``linger_s``;
    when looping, the round starts again ``interval_s`` after the last code appeared.
    """

    codes: tuple[str, ...]
    interval_s: float = 4.0
    linger_s: float | None = None
    start_delay_s: float = 1.0
    loop: bool = True
    seed: int = 0
    tail_s: float = 1.0

    @property
    def linger(self) -> float:
        if self.linger_s is not None:
            return self.linger_s
        return min(1.5, 0.6 * self.interval_s)

    @property
    def duration_s(self) -> float | None:
        """When a script played once is over; None when looping (never)."""
        if self.loop:
            return None
        if not self.codes:
            return self.start_delay_s + self.tail_s
        return (
            self.start_delay_s + (len(self.codes) - 1) * self.interval_s + self.linger + self.tail_s
        )

    def at(self, t: float) -> tuple[int, int, float] | None:
        """What is in view at ``t`` s: (code index, appearance number, phase 0..1), or None."""
        n = len(self.codes)
        rel = t - self.start_delay_s
        if n == 0 or rel < 0:
            return None
        period = n * self.interval_s
        round_ = int(rel // period) if period > 0 else 0
        if not self.loop and round_ > 0:
            return None
        within = rel - round_ * period
        k = min(int(within // self.interval_s), n - 1) if self.interval_s > 0 else 0
        since = within - k * self.interval_s
        if since >= self.linger:
            return None
        return k, round_ * n + k, since / self.linger if self.linger > 0 else 0.0


def qr_modules(text: str) -> npt.NDArray[np.uint8]:
    """A QR code for ``text`` (exactly as given, EC level M), one pixel per module.

    Dark modules are 0, light ones 255, the quiet zone included.

    Raises:
        ValueError: empty text, or too long for a QR code.
    """
    import zxingcpp

    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    return np.ascontiguousarray(np.asarray(barcode.to_image(scale=1), dtype=np.uint8))


def _room(width: int, height: int, rng: np.random.Generator) -> Gray:
    """A cluttered, unevenly lit background: the thing a gate camera sees all day."""
    xs = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    light = 70 + 90 * xs + 40 * ys
    room = np.clip(light, 0, 255).astype(np.uint8)
    scale = min(width, height)
    for _ in range(40):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        w, h = (int(v) for v in rng.integers(scale // 20, scale // 3, size=2))
        shade = int(rng.integers(20, 235))
        if rng.random() < 0.7:
            cv2.rectangle(room, (x, y), (x + w, y + h), shade, -1)
        else:
            cv2.circle(room, (x, y), w // 2, shade, -1)
    for _ in range(12):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        cv2.putText(
            room,
            "EXIT  GATE 3  NO ENTRY",
            (x, y),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale / 900,
            int(rng.integers(0, 255)),
            max(1, scale // 400),
        )
    return cast(Gray, cv2.GaussianBlur(room, (0, 0), scale / 300))


@dataclass(frozen=True)
class _Pose:
    """How one appearance of a code moves: start/end centre, size, angle, tilt, look."""

    start: tuple[float, float]
    end: tuple[float, float]
    side: float
    grow: float
    angle: float
    spin: float
    tilt_x: float
    tilt_y: float
    dark: int
    light: int
    blur: float


class SceneRenderer:
    """Draws the frames; all randomness is drawn from ``seed`` (and the appearance)."""

    def __init__(
        self, codes: Sequence[str], *, width: int, height: int, seed: int = 0, color: bool = False
    ) -> None:
        self.width, self.height, self.seed, self.color = width, height, seed, color
        rng = np.random.default_rng(seed)
        self.background = _room(width, height, rng)
        shape = (height + _NOISE_PAD, width + _NOISE_PAD)
        self._noise_up = rng.integers(0, 7, size=shape, dtype=np.uint8)
        self._noise_down = rng.integers(0, 7, size=shape, dtype=np.uint8)
        self._codes: list[npt.NDArray[np.uint8] | None] = []
        for text in codes:
            try:
                modules = qr_modules(text)
            except ValueError:  # empty or too long: the frames show nothing for it
                self._codes.append(None)
                continue
            n = modules.shape[0] * _MODULE_PX
            self._codes.append(
                cast(
                    npt.NDArray[np.uint8],
                    cv2.resize(modules, (n, n), interpolation=cv2.INTER_NEAREST),
                )
            )

    def _pose(self, appearance: int) -> _Pose:
        rng = np.random.default_rng([self.seed, appearance])
        w, h = self.width, self.height
        side = float(rng.uniform(0.38, 0.55)) * min(w, h)
        half = side * 0.75

        def centre() -> tuple[float, float]:
            return (
                float(rng.uniform(half, max(half, w - half))),
                float(rng.uniform(half, max(half, h - half))),
            )

        start = centre()
        end = (
            start[0] + float(rng.uniform(-0.08, 0.08)) * w,
            start[1] + float(rng.uniform(-0.06, 0.06)) * h,
        )
        dark = int(rng.integers(15, 60))
        return _Pose(
            start=start,
            end=end,
            side=side,
            grow=float(rng.uniform(-0.1, 0.15)),
            angle=float(rng.uniform(-25, 25)),
            spin=float(rng.uniform(-6, 6)),
            tilt_x=float(rng.uniform(-0.15, 0.15)),
            tilt_y=float(rng.uniform(-0.12, 0.12)),
            dark=dark,
            light=int(rng.integers(max(dark + 120, 170), 240)),
            blur=float(rng.uniform(0.4, 1.1)),
        )

    def render(self, index: int, shown: tuple[int, int, float] | None) -> Any:
        """Frame ``index``: the code ``shown`` = (code, appearance, phase) or an empty room."""
        frame = self.background.copy()
        if shown is not None:
            code, appearance, phase = shown
            bitmap = self._codes[code] if 0 <= code < len(self._codes) else None
            if bitmap is not None:
                self._draw(frame, bitmap, self._pose(appearance), phase)
        rng = np.random.default_rng([self.seed, 1 << 20, index])
        dy, dx, ey, ex = (int(v) for v in rng.integers(0, _NOISE_PAD, size=4))
        h, w = self.height, self.width
        cv2.add(frame, self._noise_up[dy : dy + h, dx : dx + w], dst=frame)
        cv2.subtract(frame, self._noise_down[ey : ey + h, ex : ex + w], dst=frame)
        if self.color:
            return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        return frame

    def _draw(self, frame: Gray, bitmap: npt.NDArray[np.uint8], pose: _Pose, phase: float) -> None:
        cx = pose.start[0] + (pose.end[0] - pose.start[0]) * phase
        cy = pose.start[1] + (pose.end[1] - pose.start[1]) * phase
        half = pose.side * (1 + pose.grow * phase) / 2
        angle = math.radians(pose.angle + pose.spin * phase)
        # A square, foreshortened (tilted away on two axes), rotated, moved.
        square = np.array(
            [
                [-half * (1 - pose.tilt_y), -half * (1 - pose.tilt_x)],
                [half * (1 - pose.tilt_y), -half * (1 + pose.tilt_x)],
                [half * (1 + pose.tilt_y), half * (1 + pose.tilt_x)],
                [-half * (1 + pose.tilt_y), half * (1 - pose.tilt_x)],
            ],
            dtype=np.float32,
        )
        rot = np.array(
            [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
            dtype=np.float32,
        )
        quad = square @ rot.T + np.array([cx, cy], dtype=np.float32)
        x0 = max(int(quad[:, 0].min()) - 2, 0)
        y0 = max(int(quad[:, 1].min()) - 2, 0)
        x1 = min(int(quad[:, 0].max()) + 3, self.width)
        y1 = min(int(quad[:, 1].max()) + 3, self.height)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return
        n = bitmap.shape[0]
        src = np.array([[0, 0], [n, 0], [n, n], [0, n]], dtype=np.float32)
        matrix = cv2.getPerspectiveTransform(src, quad - np.array([x0, y0], dtype=np.float32))
        sheet = cv2.convertScaleAbs(bitmap, alpha=(pose.light - pose.dark) / 255, beta=pose.dark)
        roi = frame[y0:y1, x0:x1]
        cv2.warpPerspective(
            sheet,
            matrix,
            (x1 - x0, y1 - y0),
            dst=roi,
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_TRANSPARENT,
        )
        cv2.GaussianBlur(roi, (0, 0), pose.blur * max(pose.side / 400, 0.5), dst=roi)


class SyntheticCapture(CaptureBackend):
    """The synthetic camera as a capture backend.

    Args:
        script: what to show when.
        realtime: deliver frames at ``fps`` (a camera); False: as fast as they are
            read, each stamped with its own time on the script's clock (tests).
        clock, sleep: for realtime pacing (tests may pass their own).
    """

    description = "synthetic"

    def __init__(
        self,
        script: SyntheticScript,
        *,
        width: int = 1280,
        height: int = 720,
        fps: int = 30,
        color: bool = False,
        realtime: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if width < 64 or height < 64 or fps < 1:
            raise ValueError("a synthetic camera needs at least 64x64 pixels and 1 fps")
        self.script = script
        self.width, self.height, self.fps = width, height, fps
        self.color = color
        self.realtime = realtime
        self._clock, self._sleep = clock, sleep
        self._renderer: SceneRenderer | None = None
        self._index = 0
        self._t0 = 0.0
        self._last = 0.0
        self._finished = False

    def open(self) -> None:
        if self._renderer is None:
            self._renderer = SceneRenderer(
                self.script.codes,
                width=self.width,
                height=self.height,
                seed=self.script.seed,
                color=self.color,
            )
        # A reopened synthetic camera carries on with its script, like a real scene.
        self._t0 = self._clock() - self._index / self.fps

    def read(self) -> Gray | None:
        renderer = self._renderer
        if renderer is None:
            raise CaptureError("the synthetic camera is not open")
        t = self._index / self.fps
        end = self.script.duration_s
        if end is not None and t >= end:
            self._finished = True
            self._sleep(0.01)
            return None
        due = self._t0 + t
        if self.realtime:
            wait = due - self._clock()
            if wait > 0:
                self._sleep(wait)
        frame = renderer.render(self._index, self.script.at(t))
        self._index += 1
        self._last = due
        return to_gray(frame)

    def render_raw(self, index: int) -> Any:
        """Frame ``index`` as generated (BGR if ``color``), without pacing: for benchmarks."""
        if self._renderer is None:
            self.open()
        renderer = cast(SceneRenderer, self._renderer)
        return renderer.render(index, self.script.at(index / self.fps))

    def close(self) -> None:
        """Nothing to release; the scene is kept for a reopen."""

    @property
    def finished(self) -> bool:
        return self._finished

    def timestamp(self) -> float:
        return self._last

    @property
    def frame_index(self) -> int:
        return self._index
