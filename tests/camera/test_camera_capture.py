"""Capture backends and the frame queue: video files, image sequences, a fake Picamera2."""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from scanner.sources.capture import (
    CaptureError,
    CaptureUnavailable,
    Frame,
    FrameQueue,
    OpenCvCapture,
    Picamera2Capture,
    to_gray,
)
from tests.camera.camsupport import on_noise, qr_image


def frame(seq: int) -> Frame:
    return Frame(gray=np.zeros((2, 2), np.uint8), at=float(seq), seq=seq)


def test_queue_keeps_the_newest_and_counts_drops() -> None:
    queue = FrameQueue(1)
    for i in range(5):
        queue.put(frame(i))
    assert queue.dropped == 4
    got = queue.get(0.1)
    assert got is not None and got.seq == 4
    assert queue.get(0.01) is None


def test_queue_of_two_and_close_wakes_a_waiter() -> None:
    queue = FrameQueue(2)
    for i in range(3):
        queue.put(frame(i))
    assert [f.seq for f in (queue.get(0), queue.get(0)) if f is not None] == [1, 2]
    assert queue.dropped == 1
    result: list[Frame | None] = []
    waiter = threading.Thread(target=lambda: result.append(queue.get(30)))
    waiter.start()
    queue.close()
    waiter.join(5)
    assert result == [None] and queue.closed
    queue.reopen()
    assert not queue.closed
    with pytest.raises(ValueError, match="at least one"):
        FrameQueue(0)


def test_to_gray_converts_once_and_passes_gray_through() -> None:
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_gray(gray) is gray
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    assert np.array_equal(to_gray(bgr), gray)
    bgra = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGRA)
    assert np.array_equal(to_gray(bgra), gray)
    assert np.array_equal(to_gray(gray[:, :, None]), gray)


def write_video(path: Path, frames: list[np.ndarray], fps: int = 30) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    try:
        assert writer.isOpened()
        for f in frames:
            writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR) if f.ndim == 2 else f)
    finally:
        writer.release()
    return path


def code_frames(text: str, n: int) -> list[np.ndarray]:
    return [on_noise(qr_image(text, module_px=5), 320, 240, seed=i) for i in range(n)]


def read_all(capture: OpenCvCapture, limit: int = 100) -> list[np.ndarray]:
    out = []
    capture.open()
    try:
        for _ in range(limit):
            gray = capture.read()
            if gray is None:
                break
            out.append(gray)
    finally:
        capture.close()
    return out


def test_video_file_plays_as_gray_then_ends(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", code_frames("PASS-AAAA0001", 12))
    capture = OpenCvCapture(str(video), pace=False)
    assert capture.is_file and not capture.is_camera
    frames = read_all(capture)
    assert len(frames) == 12
    assert frames[0].shape == (240, 320) and frames[0].dtype == np.uint8
    capture.close()  # twice is fine


def test_image_sequence(tmp_path: Path) -> None:
    for i, f in enumerate(code_frames("PASS-BBBB0002", 5)):
        cv2.imwrite(str(tmp_path / f"img{i:03d}.png"), f)
    frames = read_all(OpenCvCapture(str(tmp_path / "img%03d.png"), pace=False))
    assert len(frames) == 5


def test_missing_devices_and_files_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match=r"cannot open /dev/video99: no such device"):
        OpenCvCapture("/dev/video99").open()
    with pytest.raises(CaptureError, match=r"cannot open /dev/video98: no such device"):
        OpenCvCapture(98).open()
    with pytest.raises(CaptureError, match="no such file"):
        OpenCvCapture(str(tmp_path / "none.avi")).open()
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"\0" * 100)
    with pytest.raises(CaptureError, match="OpenCV cannot read it"):
        OpenCvCapture(str(junk)).open()
    assert OpenCvCapture("3").description == "/dev/video3"
    assert OpenCvCapture("rtsp://cam.local/stream").is_stream
    with pytest.raises(CaptureError, match="not open"):
        OpenCvCapture(str(junk)).read()


def test_a_paced_file_plays_at_its_rate(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi", code_frames("X", 6))
    capture = OpenCvCapture(str(video), fps=50)
    assert capture.pace
    import time

    start = time.monotonic()
    assert len(read_all(capture)) == 6
    assert time.monotonic() - start >= 5 / 50 * 0.9


# -- Picamera2, faked ---------------------------------------------------------------------


class FakePicamera2:
    """Enough of Picamera2 for the plumbing: YUV420 frames with a padded stride."""

    instances: list[FakePicamera2] = []

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.camera_controls = {"AfMode": (0, 2, 0), "FrameRate": (1.0, 120.0, 30.0)}
        self.camera_config: dict[str, Any] = {}
        self.controls: dict[str, Any] = {}
        self.fail_read = False
        FakePicamera2.instances.append(self)

    def create_video_configuration(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("create_video_configuration")
        return kwargs

    def configure(self, config: dict[str, Any]) -> None:
        self.calls.append("configure")
        self.camera_config = config

    def set_controls(self, controls: dict[str, Any]) -> None:
        self.controls.update(controls)

    def start(self) -> None:
        self.calls.append("start")

    def capture_array(self, name: str = "main") -> np.ndarray:
        if self.fail_read:
            raise RuntimeError("camera frontend has timed out")
        w, h = self.camera_config["main"]["size"]
        stride = (w + 63) // 64 * 64 + 64
        yuv = np.full((h * 3 // 2, stride), 99, np.uint8)  # padding and chroma: 99
        yuv[:h, :w] = on_noise(qr_image("PASS-CSI00001", module_px=4), w, h)
        return yuv

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[FakePicamera2]:
    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    FakePicamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return FakePicamera2


def test_picamera2_yields_the_y_plane_as_a_view(fake_picamera2: type[FakePicamera2]) -> None:
    capture = Picamera2Capture(width=320, height=240, fps=25)
    capture.open()
    cam = fake_picamera2.instances[0]
    config = cam.camera_config
    assert config["main"] == {"size": (320, 240), "format": "YUV420"}
    assert config["controls"] == {"FrameRate": 25.0}
    assert cam.controls == {"AfMode": 2}
    gray = capture.read()
    assert gray is not None
    assert gray.shape == (240, 320)
    assert gray.base is not None  # a view into the YUV buffer, no copy
    assert not gray.flags["C_CONTIGUOUS"]
    assert 99 not in gray[:, -1:]  # neither stride padding nor chroma rows
    from scanner.decode import build_decoder

    assert [c.text for c in build_decoder("auto").decode_frame(gray, 0)] == ["PASS-CSI00001"]
    capture.close()
    assert cam.calls[-2:] == ["stop", "close"]


def test_picamera2_read_failure_is_a_capture_error(fake_picamera2: type[FakePicamera2]) -> None:
    capture = Picamera2Capture(width=320, height=240)
    capture.open()
    fake_picamera2.instances[0].fail_read = True
    with pytest.raises(CaptureError, match="frontend has timed out"):
        capture.read()
    capture.close()


def test_picamera2_open_failure_closes_the_camera(
    fake_picamera2: type[FakePicamera2], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(self: FakePicamera2) -> None:
        raise IndexError("list index out of range")  # what Picamera2 does with no camera

    monkeypatch.setattr(FakePicamera2, "start", boom)
    with pytest.raises(CaptureError, match="cannot open the CSI camera: list index"):
        Picamera2Capture().open()
    assert fake_picamera2.instances[0].calls[-2:] == ["stop", "close"]


def test_picamera2_missing_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    with pytest.raises(CaptureUnavailable, match="apt install python3-picamera2"):
        Picamera2Capture().open()
