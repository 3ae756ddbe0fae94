"""The decoder interface: a grayscale frame in, the QR codes it shows out.

Every backend (zxing-cpp, zbar, OpenCV) sits behind :class:`Decoder`, so the camera,
the ``decode`` command and the benchmarks never touch a library directly. A library
that is missing (pyzbar without ``libzbar0``) raises :class:`DecoderUnavailable` when
its decoder is built; a library that raises on one frame (OpenCV on Kanji, pyzbar on
structured-append symbols) is caught inside ``decode``, counted in ``errors`` and
logged at debug level: a bad frame never stops the camera.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from scanner.errors import DeviceError

Gray = npt.NDArray[np.uint8]
"""An 8-bit single-channel image, rows first; it may be a view (row stride > width)."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DecodedCode:
    """One symbol found in an image.

    Attributes:
        text: the payload as text, exactly as encoded (no stripping).
        format: the symbology as the backend names it (``QRCode``, ``QRCodeModel1``).
        backend: which library read it (``zxing``, ``zbar``, ``opencv``).
    """

    text: str
    format: str
    backend: str

    def to_json(self) -> dict[str, str]:
        """The shape ``passqr-scanner decode --json`` prints; other tools rely on it."""
        return {"text": self.text, "format": self.format, "backend": self.backend}


class DecoderUnavailable(DeviceError):
    """A decoding backend cannot be used on this machine (its library is missing).

    Attributes:
        backend: ``zxing``, ``zbar`` or ``opencv``.
        reason: what is missing and how to get it, for the status line and the log.
    """

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(f"decoder {backend} unavailable: {reason}")
        self.backend = backend
        self.reason = reason


class Decoder(ABC):
    """Finds QR codes in grayscale images.

    A decoder is used by one thread at a time (the camera's decode thread, or the
    CLI); it keeps counters, and some backends keep a detector object between calls.

    Attributes:
        name: the backend's name, as in ``decoder = "..."`` in the config.
        errors: exceptions the library raised and this decoder swallowed.
    """

    name: str = "decoder"

    def __init__(self) -> None:
        self.errors = 0

    @abstractmethod
    def decode(self, gray: Gray) -> list[DecodedCode]:
        """Every code this backend can find in ``gray``, trying as hard as it usefully can.

        Args:
            gray: an 8-bit grayscale image (a view is fine; it is never written to).

        Returns:
            The codes found, in the backend's order; empty when none (or when the
            library raised on this image: see ``errors``). Never raises for a bad image.
        """

    def decode_frame(self, gray: Gray, index: int) -> list[DecodedCode]:
        """Like :meth:`decode`, for the ``index``-th frame of a camera stream.

        A camera shows a held code in many consecutive frames, so a backend may
        spread its slower passes over frames (one extra pass per frame) instead of
        running them all on each: the frame without a code stays cheap. The default
        runs :meth:`decode` on every frame.
        """
        return self.decode(gray)

    def _swallow(self, err: BaseException) -> None:
        self.errors += 1
        _log.debug("%s decoder raised on a frame: %s: %s", self.name, type(err).__name__, err)
