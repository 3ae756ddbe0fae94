"""A camera that reads QR codes: capture, decode and a watchdog, each on its own thread.

::

    capture thread --FrameQueue(keep newest)--> decode thread --call_soon_threadsafe--> emit
          ^                                                                          (loop)
    supervisor thread: opens the camera, retries with backoff, reopens it when no
    frame came for ``watchdog_s``, and keeps ``state``/``detail`` honest.

Nothing blocking runs on the event loop. A camera that cannot be opened, stalls or
vanishes leaves the source DEGRADED with a detail that says so, and it is retried
forever; a frame the decoder chokes on is counted and skipped. A capture thread
stuck inside a driver is abandoned (it closes its device when the driver lets
go) and a fresh one is started.

The camera sees a held code in every frame: each distinct text is emitted at most
once per ``emit_every_s`` (0.5 s), and the gate's repeat window (sliding on the
last sighting) turns a code held for ten seconds into one validation.

This module is also the camera's kind (its ``[[sources]]`` table, the ``synthetic?...``
device options, :data:`KIND`): the config loader imports it, so OpenCV, numpy and
the capture backends load only when a camera is opened (:func:`backend_for`). The
doctor's probe is in :mod:`scanner.sources.camera_probe`, imported when it runs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, urlsplit

from scanner.checks import Check, Status
from scanner.decode import build_decoder
from scanner.errors import ConfigError
from scanner.models import RawScan
from scanner.schema import check_bounds, within
from scanner.sources.base import Emit, Source, SourceState
from scanner.sources.capture import CaptureError, CaptureUnavailable, Frame, FrameQueue
from scanner.sources.kind import SourceKind

if TYPE_CHECKING:
    from scanner.decode import Decoder
    from scanner.sources.capture import CaptureBackend

_log = logging.getLogger(__name__)

#: Seconds between attempts to open a camera that failed to open (the last repeats).
RETRY_S: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0)
#: A capture thread that does not stop within this long after it was told to is abandoned.
STOP_WAIT_S = 2.0
#: At most this many abandoned capture threads may still be stuck in a driver.
MAX_STUCK = 2
#: Decode rate is averaged over this many seconds.
FPS_WINDOW_S = 2.0


@dataclass(frozen=True, kw_only=True)
class CameraSourceConfig:
    type: Literal["camera"]
    device: int | str = within(0, 0, 9999)
    """A camera index (0-9999: OpenCV reads 200 + index as V4L2's), a ``/dev/video*`` or
    ``/dev/v4l/by-id/...`` path, a video file, an RTSP/HTTP URL, ``"picamera2"`` for a
    Raspberry Pi CSI camera, or ``"synthetic"``."""
    width: int = within(1280, 16, 16_384)
    height: int = within(720, 16, 16_384)
    fps: int = within(30, 1, 240)
    decoder: Literal["auto", "zxing", "zbar", "opencv"] = "auto"
    watchdog_s: float = within(3.0, 0, 3600, above=True, unit="seconds")
    """No frame for this long: the capture is reopened and the status line says so."""
    codes: list[str] = field(default_factory=list)
    """For ``device = "synthetic"``: the payloads its generated frames show."""
    name: str | None = None


_BOOL = {"1": True, "true": True, "yes": True, "on": True}
_BOOL |= {"0": False, "false": False, "no": False, "off": False}


@dataclass(frozen=True, kw_only=True)
class SyntheticOptions:
    """The options of a ``synthetic?...`` device string (see the module docstring)."""

    interval_s: float = 4.0
    linger_s: float | None = None
    start_delay_s: float = 1.0
    loop: bool = True
    seed: int = 0
    color: bool = False
    realtime: bool = True
    tail_s: float = 1.0
    extra: dict[str, str] = field(default_factory=dict)


def is_synthetic(device: int | str) -> bool:
    return isinstance(device, str) and (device == "synthetic" or device.startswith("synthetic?"))


def parse_synthetic_device(device: str) -> SyntheticOptions:
    """Read ``synthetic?key=value&...``.

    Raises:
        ConfigError: an unknown option or a value of the wrong kind.
    """
    query = urlsplit(device).query if "?" in device else ""
    values: dict[str, Any] = {}
    known = {
        "interval_s": float,
        "linger_s": float,
        "start_delay_s": float,
        "tail_s": float,
        "seed": int,
        "loop": bool,
        "color": bool,
        "realtime": bool,
    }
    for key, text in parse_qsl(query, keep_blank_values=True):
        kind = known.get(key)
        where = f"camera device {device!r}: option {key!r}"
        if kind is None:
            raise ConfigError(f"{where} is unknown; known options: {', '.join(known)}")
        try:
            if kind is bool:
                values[key] = _BOOL[text.lower()]
            else:
                values[key] = kind(text)
        except (KeyError, ValueError):
            wanted = {bool: "true or false", int: "an integer", float: "a number"}[kind]
            raise ConfigError(f"{where}: {text!r} is not {wanted}") from None
        if kind is float and not (math.isfinite(values[key]) and values[key] >= 0):
            raise ConfigError(f"{where}: must be a number >= 0")
    return SyntheticOptions(**values)


@dataclass(frozen=True, kw_only=True)
class CameraStats:
    """What the status line and the metrics show about a camera.

    Attributes:
        frames_captured: frames read from the camera.
        frames_decoded: frames that went through the decoder.
        frames_dropped: frames replaced in the queue by a newer one before decoding.
        decode_errors: exceptions the decoding libraries raised (and were skipped).
        decode_fps: frames decoded per second, over the last two seconds.
        last_decode_ms: how long the last frame took to decode.
        reopens: times the camera was reopened after it stalled or failed.
    """

    frames_captured: int
    frames_decoded: int
    frames_dropped: int
    decode_errors: int
    decode_fps: float
    last_decode_ms: float
    reopens: int


def backend_for(config: CameraSourceConfig) -> Callable[[], CaptureBackend]:
    """A factory of fresh capture backends for ``config.device``.

    Raises:
        ConfigError: a ``synthetic?...`` device with a bad option.
    """
    from scanner.sources.capture import OpenCvCapture, Picamera2Capture
    from scanner.sources.synthetic import SyntheticCapture, SyntheticScript

    device = config.device
    if is_synthetic(device):
        options = parse_synthetic_device(str(device))
        script = SyntheticScript(
            codes=tuple(config.codes),
            interval_s=options.interval_s,
            linger_s=options.linger_s,
            start_delay_s=options.start_delay_s,
            loop=options.loop,
            seed=options.seed,
            tail_s=options.tail_s,
        )
        # One backend for the source's life: a reopen carries on with the script.
        synthetic = SyntheticCapture(
            script,
            width=config.width,
            height=config.height,
            fps=config.fps,
            color=options.color,
            realtime=options.realtime,
        )
        return lambda: synthetic
    if device == "picamera2":
        return lambda: Picamera2Capture(width=config.width, height=config.height, fps=config.fps)
    return lambda: OpenCvCapture(device, width=config.width, height=config.height, fps=config.fps)


class _Session:
    """One opening of the camera, owned by one capture thread."""

    def __init__(self, backend: CaptureBackend, started: float) -> None:
        self.backend = backend
        self.stop = threading.Event()
        self.started = started
        self.opened = False
        self.frames = 0
        self.last_frame = started
        self.error: CaptureError | None = None
        self.finished = False
        self.thread: threading.Thread | None = None


class CameraSource(Source):
    """Reads QR codes from a camera (``[[sources]] type = "camera"``).

    Args:
        config: the source's table.
        backend: builds the capture backend for each (re)opening; from
            ``config.device`` by default.
        decoder: builds the decoder; ``build_decoder(config.decoder)`` by default.
        emit_every_s: the same text is emitted at most once per this many seconds
            (on the frames' clock).
        queue_size: frames kept between capture and decode (the newest).
        retry_s: waits between failed openings; the last one repeats.

    Raises:
        ConfigError: a bad ``synthetic?...`` device string.
    """

    kind = "camera"

    def __init__(
        self,
        config: CameraSourceConfig,
        *,
        backend: Callable[[], CaptureBackend] | None = None,
        decoder: Callable[[], Decoder] | None = None,
        emit_every_s: float = 0.5,
        queue_size: int = 1,
        retry_s: Sequence[float] = RETRY_S,
    ) -> None:
        device = config.device
        super().__init__(config.name or f"camera:{device}")
        check_bounds(config, f"source {self.name}: ")  # a table made in code, not parsed
        self.config = config
        self.watchdog_s = config.watchdog_s
        self.emit_every_s = emit_every_s
        self.retry_s = tuple(retry_s) or RETRY_S
        self._make_backend = backend or backend_for(config)
        self._make_decoder = decoder or (lambda: build_decoder(config.decoder))
        self._queue = FrameQueue(queue_size)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._decoded_at: deque[float] = deque()
        self._decoder: Decoder | None = None
        self._stuck: list[threading.Thread] = []
        self.frames_captured = 0
        self.frames_decoded = 0
        self.last_decode_ms = 0.0
        self.reopens = 0
        self.finished = False
        """True once a camera with a finite script (synthetic, not looping) played it."""

    # -- what the status line and metrics read ----------------------------------------

    @property
    def frames_dropped(self) -> int:
        return self._queue.dropped

    @property
    def decode_errors(self) -> int:
        decoder = self._decoder
        return decoder.errors if decoder is not None else 0

    @property
    def decode_fps(self) -> float:
        """Frames decoded per second over the last :data:`FPS_WINDOW_S` seconds."""
        horizon = time.monotonic() - FPS_WINDOW_S
        with self._lock:
            recent = sum(1 for t in self._decoded_at if t >= horizon)
        return recent / FPS_WINDOW_S

    @property
    def stats(self) -> CameraStats:
        return CameraStats(
            frames_captured=self.frames_captured,
            frames_decoded=self.frames_decoded,
            frames_dropped=self.frames_dropped,
            decode_errors=self.decode_errors,
            decode_fps=round(self.decode_fps, 1),
            last_decode_ms=round(self.last_decode_ms, 2),
            reopens=self.reopens,
        )

    # -- running ----------------------------------------------------------------------

    async def run(self, emit: Emit) -> None:
        """Capture and decode until cancelled (or until a finite script has played)."""
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def deliver(text: str, at: float) -> None:
            self.count += 1
            loop.call_soon_threadsafe(emit, RawScan(source=self.name, text=text, at=at))

        def finished() -> None:
            loop.call_soon_threadsafe(done.set)

        self._stop.clear()
        self._queue.reopen()
        self.finished = False
        self._set(SourceState.STARTING, "")
        supervisor = threading.Thread(
            target=self._supervise, args=(deliver, finished), name=f"{self.name}-supervisor"
        )
        supervisor.daemon = True
        supervisor.start()
        try:
            await done.wait()
        finally:
            self._stop.set()
            self._queue.close()
            await asyncio.to_thread(supervisor.join, STOP_WAIT_S * 3)
            if not self.finished:
                self._set(SourceState.STOPPED, "")

    def _set(self, state: SourceState, detail: str = "") -> None:
        if state is not self.state or detail != self.detail:
            log = _log.info if state is not SourceState.DEGRADED else _log.warning
            log("camera %s: %s %s", self.name, state.value, detail)
        self.state, self.detail = state, detail

    def _wait(self, seconds: float) -> bool:
        """Sleep unless stopped; True if the source is stopping."""
        return self._stop.wait(seconds)

    def _supervise(
        self, deliver: Callable[[str, float], None], finished: Callable[[], None]
    ) -> None:
        decode_thread: threading.Thread | None = None
        try:
            decoder = self._decoder_or_wait()
            if decoder is None:
                return
            self._decoder = decoder
            decode_thread = threading.Thread(
                target=self._decode_loop, args=(decoder, deliver), name=f"{self.name}-decode"
            )
            decode_thread.daemon = True
            decode_thread.start()
            self._camera_loop()
            if self.finished:
                # Let the decoder see the frames already captured, then say so.
                self._queue.close()
                decode_thread.join(STOP_WAIT_S)
                self._set(SourceState.STOPPED, "script finished")
        except Exception:  # noqa: BLE001 - a bug here must not kill the kiosk; the status says so
            _log.exception("camera %s: supervisor failed", self.name)
            self._set(SourceState.DEGRADED, "internal error; see the log")
        finally:
            self._stop.set()
            self._queue.close()
            if decode_thread is not None:
                decode_thread.join(STOP_WAIT_S)
            for thread in self._stuck:
                thread.join(0.1)
            finished()

    def _decoder_or_wait(self) -> Decoder | None:
        """Build the decoder; while its library is missing, say so and retry (rarely)."""
        from scanner.decode.base import DecoderUnavailable  # numpy: only once a camera runs

        while not self._stop.is_set():
            try:
                return self._make_decoder()
            except DecoderUnavailable as err:
                self._set(SourceState.DEGRADED, err.message)
            except ValueError as err:
                self._set(SourceState.DEGRADED, str(err))
            if self._wait(self.retry_s[-1]):
                break
        return None

    def _camera_loop(self) -> None:
        """Open, watch, reopen: until stopped or a finite script has played."""
        failures = 0
        while not self._stop.is_set():
            self._stuck = [t for t in self._stuck if t.is_alive()]
            if len(self._stuck) >= MAX_STUCK:
                self._set(SourceState.DEGRADED, "camera driver stuck; waiting for it to let go")
                if self._wait(1.0):
                    return
                continue
            error: CaptureError | None
            try:
                session = self._start(self._make_backend())
            except CaptureError as err:
                error = err
            else:
                outcome = self._watch(session)
                self._end(session)
                if outcome == "finished":
                    self.finished = True
                    return
                if outcome == "stopped":
                    return
                error = session.error
                if outcome == "stalled":
                    self.reopens += 1
                if session.frames:
                    failures = 0
                    if error is None:
                        continue  # it delivered a moment ago: reopen at once
            delay = self.retry_s[min(failures, len(self.retry_s) - 1)]
            if isinstance(error, CaptureUnavailable):
                delay = self.retry_s[-1]  # a library will not appear in a second
            failures += 1
            if error is not None:
                self._set(SourceState.DEGRADED, f"{error.message}; retrying in {delay:g} s")
            if self._wait(delay):
                return

    def _start(self, backend: CaptureBackend) -> _Session:
        session = _Session(backend, time.monotonic())
        if self.state is not SourceState.DEGRADED:
            self._set(SourceState.STARTING, f"opening {backend.description}")
        thread = threading.Thread(
            target=self._capture, args=(session,), name=f"{self.name}-capture"
        )
        thread.daemon = True
        session.thread = thread
        thread.start()
        return session

    def _watch(self, session: _Session) -> str:
        """Wait on a session: 'stopped', 'finished', 'failed' or 'stalled'."""
        poll = min(0.05, self.watchdog_s / 4)
        thread = session.thread
        while not self._stop.is_set():
            if session.finished:
                return "finished"
            if session.error is not None and (thread is None or not thread.is_alive()):
                return "failed"
            now = time.monotonic()
            if session.opened:
                silent = now - session.last_frame
                if silent >= self.watchdog_s:
                    self._set(
                        SourceState.DEGRADED,
                        f"no frames for {self.watchdog_s:g} s, reopening",
                    )
                    return "stalled"
            elif now - session.started >= max(self.watchdog_s, 10.0):
                self._set(
                    SourceState.DEGRADED,
                    f"opening {session.backend.description}: "
                    f"no answer for {now - session.started:.0f} s",
                )
            if thread is not None and not thread.is_alive() and session.error is None:
                # The capture thread ended without an error: it was told to stop.
                return "stopped" if self._stop.is_set() else "stalled"
            self._stop.wait(poll)
        return "stopped"

    def _end(self, session: _Session) -> None:
        session.stop.set()
        thread = session.thread
        if thread is None:
            return
        thread.join(STOP_WAIT_S)
        if thread.is_alive():
            _log.warning(
                "camera %s: the capture thread is stuck in the driver; abandoning it",
                self.name,
            )
            self._stuck.append(thread)

    def _capture(self, session: _Session) -> None:
        backend = session.backend
        try:
            try:
                backend.open()
            except CaptureError as err:
                session.error = err
                return
            except Exception as err:  # noqa: BLE001 - drivers raise anything; it is reported
                session.error = CaptureError(f"cannot open {backend.description}: {err}")
                return
            session.opened = True
            session.last_frame = time.monotonic()
            while not session.stop.is_set() and not self._stop.is_set():
                gray = backend.read()
                if gray is None:
                    if backend.finished:
                        session.finished = True
                        return
                    continue
                now = time.monotonic()
                session.last_frame = now
                session.frames += 1
                if session.stop.is_set():
                    return
                if self.state is not SourceState.READY:
                    self._set(SourceState.READY, "")
                seq = self.frames_captured
                self.frames_captured += 1
                self._queue.put(Frame(gray=gray, at=backend.timestamp(), seq=seq))
        except CaptureError as err:
            session.error = err
        except Exception as err:  # noqa: BLE001 - a driver fault must end in a reopen, not a crash
            _log.exception("camera %s: capture failed", self.name)
            session.error = CaptureError(f"capture failed: {err}")
        finally:
            try:
                backend.close()
            except Exception as err:  # noqa: BLE001 - closing a broken device must not raise
                _log.debug("camera %s: close: %s", self.name, err)

    def _decode_loop(self, decoder: Decoder, deliver: Callable[[str, float], None]) -> None:
        last_emit: dict[str, float] = {}
        index = 0
        while True:
            frame = self._queue.get(timeout=0.2)
            if frame is None:
                if self._stop.is_set() or self._queue_closed_and_empty():
                    return
                continue
            start = time.perf_counter()
            try:
                codes = decoder.decode_frame(frame.gray, index)
            except Exception:  # noqa: BLE001 - decoders swallow library faults; this is a bug
                _log.exception("camera %s: decoder %s failed", self.name, decoder.name)
                codes = []
            elapsed = time.perf_counter() - start
            index += 1
            self.last_decode_ms = elapsed * 1000
            self.frames_decoded += 1
            now = time.monotonic()
            with self._lock:
                self._decoded_at.append(now)
                while self._decoded_at and self._decoded_at[0] < now - FPS_WINDOW_S:
                    self._decoded_at.popleft()
            for code in codes:
                last = last_emit.get(code.text)
                if last is not None and 0 <= frame.at - last < self.emit_every_s:
                    continue
                last_emit[code.text] = frame.at
                deliver(code.text, frame.at)
            if len(last_emit) > 256:
                horizon = frame.at - max(self.emit_every_s, 1.0)
                last_emit = {t: at for t, at in last_emit.items() if at >= horizon}

    def _queue_closed_and_empty(self) -> bool:
        return self._queue.closed and not len(self._queue)


def _check(config: CameraSourceConfig) -> None:
    if isinstance(config.device, str) and config.device.startswith("synthetic"):
        try:
            parse_synthetic_device(config.device)
        except ConfigError as err:
            raise ConfigError(f"device: {err}") from err


def _build(config: CameraSourceConfig, headless: bool) -> Source:
    return CameraSource(config)


async def _probe(config: CameraSourceConfig, name: str) -> list[Check]:
    if is_synthetic(config.device):
        return [Check(name=name, status=Status.OK, detail="synthetic frames: no device")]
    from scanner.sources.camera_probe import first_frame_check

    return [await first_frame_check(name, config.device, lambda: backend_for(config)())]


KIND = SourceKind(
    name="camera",
    config=CameraSourceConfig,
    build=_build,
    probe=_probe,
    check=_check,
    opens="camera",
)
