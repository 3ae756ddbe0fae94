"""Helpers for the camera tests: sample images, generated frames, fake cameras."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest

from scanner.decode import Gray
from scanner.models import ValidationOutcome, ValidationResult
from scanner.sources.capture import CaptureBackend
from scanner.sources.synthetic import qr_modules
from tests.support.fakes import FakeClient

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "qr-samples"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass(frozen=True)
class Sample:
    """One sample image and the text it must decode to."""

    path: Path
    expected: str
    part: bool
    """A structured-append part: any non-empty chunk of ``expected`` counts."""

    @property
    def name(self) -> str:
        return f"{self.path.parent.name}/{self.path.name}"

    def gray(self) -> Gray:
        image = cv2.imread(str(self.path), cv2.IMREAD_GRAYSCALE)
        assert image is not None, self.path
        return cast(Gray, image)

    def matches(self, texts: list[str]) -> bool:
        if self.part:
            return any(t and t in self.expected for t in texts)
        return self.expected in texts


def samples_dir() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(f"QR sample photos not found at {SAMPLES} (the shared folder is absent)")
    return SAMPLES


def samples(prefix: str = "zxing-orig-qrcode-", folders: range = range(1, 8)) -> list[Sample]:
    """The sample images of ``prefix1``.. folders, sorted, with their expected text."""
    root = samples_dir()
    out: list[Sample] = []
    for i in folders:
        folder = root / f"{prefix}{i}"
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            txt = folder / f"{path.stem}.txt"
            part = not txt.exists()
            if part:
                txt = folder / f"{path.stem.split('-')[0]}.txt"
            out.append(Sample(path, txt.read_bytes().decode("utf-8"), part))
    return out


def qr_image(text: str, module_px: int = 6, dark: int = 20, light: int = 235) -> Gray:
    """A clean QR code for ``text`` with its quiet zone, as grayscale."""
    modules = qr_modules(text)
    n = modules.shape[0] * module_px
    big = cv2.resize(modules, (n, n), interpolation=cv2.INTER_NEAREST)
    return cast(Gray, cv2.convertScaleAbs(big, alpha=(light - dark) / 255, beta=dark))


def on_noise(
    code: Gray, width: int = 640, height: int = 480, seed: int = 0, grain: float = 18
) -> Gray:
    """``code`` pasted in the middle of a noisy, gradient background."""
    rng = np.random.default_rng(seed)
    base = np.linspace(60, 190, width, dtype=np.float32)[None, :].repeat(height, 0)
    frame = np.clip(base + rng.normal(0, grain, (height, width)), 0, 255).astype(np.uint8)
    h, w = code.shape
    y, x = (height - h) // 2, (width - w) // 2
    frame[y : y + h, x : x + w] = code
    noise = rng.normal(0, 6, (height, width))
    return np.clip(frame + noise, 0, 255).astype(np.uint8)


def tilted(frame: Gray, strength: float = 0.18) -> Gray:
    """``frame`` seen at an angle: a perspective warp that shrinks its right side."""
    h, w = frame.shape
    src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    d = strength * h
    dst = np.array([[0, 0], [w * 0.9, d], [w * 0.9, h - d], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    return cast(Gray, cv2.warpPerspective(frame, matrix, (w, h), borderValue=128))


class AlwaysValid(FakeClient):
    """The shared fake, admitting every code; ``codes`` counts the calls."""

    def __init__(self) -> None:
        super().__init__(
            default=ValidationResult(outcome=ValidationOutcome.VALID, result="valid", message="ok")
        )


class ScriptedCapture(CaptureBackend):
    """A fake camera: hands out frames from ``frames()``; can stall or fail on cue.

    Attributes:
        opened, closed: how often ``open``/``close`` ran.
        stall_after: after this many frames ``read`` blocks until :meth:`release`
            (a driver stuck in a read).
        open_error: raised by ``open``.
    """

    description = "fake camera"

    def __init__(
        self,
        frame: Gray,
        *,
        stall_after: int | None = None,
        open_error: Exception | None = None,
        limit: int | None = None,
        period_s: float = 0.002,
    ) -> None:
        self.frame = frame
        self.stall_after = stall_after
        self.open_error = open_error
        self.limit = limit
        self.period_s = period_s
        self.opened = 0
        self.closed = 0
        self.reads = 0
        self._released = threading.Event()
        self.stalled = threading.Event()

    def open(self) -> None:
        self.opened += 1
        if self.open_error is not None:
            raise self.open_error

    def read(self) -> Gray | None:
        if self.stall_after is not None and self.reads >= self.stall_after:
            self.stalled.set()
            self._released.wait(30)
            return None
        if self.limit is not None and self.reads >= self.limit:
            time.sleep(self.period_s)
            return None
        time.sleep(self.period_s)
        self.reads += 1
        return self.frame

    def close(self) -> None:
        self.closed += 1

    def release(self) -> None:
        self._released.set()


class Factory:
    """Builds the next backend from a list (the last one repeats), recording each."""

    def __init__(self, *makers: Callable[[], CaptureBackend]) -> None:
        self.makers = list(makers)
        self.built: list[CaptureBackend] = []

    def __call__(self) -> CaptureBackend:
        maker = self.makers[min(len(self.built), len(self.makers) - 1)]
        backend = maker()
        self.built.append(backend)
        return backend

    def __iter__(self) -> Iterator[CaptureBackend]:
        return iter(self.built)
