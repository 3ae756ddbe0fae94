"""zxing-cpp: the fastest and most thorough backend measured (161 of 174 samples).

``read_barcodes(formats=QRCode, text_mode=Plain)``: Plain gives the payload as
text (ECI or the guessed character set applied), which is what a pass carries.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import ModuleType

from scanner.decode.base import DecodedCode, Decoder, DecoderUnavailable, Gray

BACKEND = "zxing"


class Binarizer(enum.Enum):
    """zxing-cpp's ways of turning gray into black and white (``zxingcpp.Binarizer``)."""

    LOCAL_AVERAGE = "LocalAverage"
    """The default: a threshold per block; copes with shadows and gradients."""
    GLOBAL_HISTOGRAM = "GlobalHistogram"
    """One threshold per row from a histogram: rescues textured designer codes."""
    FIXED_THRESHOLD = "FixedThreshold"
    """Fixed at 127: for generated (pure) images."""


@dataclass(frozen=True)
class Box:
    """A rectangle in pixels, ``x0 <= x < x1``, ``y0 <= y < y1``."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def area(self) -> int:
        return max(self.x1 - self.x0, 0) * max(self.y1 - self.y0, 0)

    def grown(self, by: float, width: int, height: int) -> Box:
        """This box with ``by`` of its size added on every side, clipped to the image."""
        dx, dy = (self.x1 - self.x0) * by, (self.y1 - self.y0) * by
        return Box(
            max(int(self.x0 - dx), 0),
            max(int(self.y0 - dy), 0),
            min(int(self.x1 + dx) + 1, width),
            min(int(self.y1 + dy) + 1, height),
        )


def load_zxingcpp() -> ModuleType:
    """The zxingcpp module.

    Raises:
        DecoderUnavailable: zxing-cpp is not installed (``pip install zxing-cpp``).
    """
    try:
        import zxingcpp
    except ImportError as err:
        raise DecoderUnavailable(
            BACKEND, f"zxing-cpp cannot be imported ({err}); pip install zxing-cpp"
        ) from err
    return zxingcpp


class ZxingDecoder(Decoder):
    """zxing-cpp with explicit options.

    Args:
        try_invert: also look for light-on-dark codes (a second pass when the first
            finds nothing: doubles the cost of a frame without a code).
        try_rotate: also search at 90/270 degrees (QR detection does not need it).
        try_downscale: also search downscaled copies (cheap; helps big codes in
            noisy high-resolution frames).
        binarizer: see :class:`Binarizer`.

    Raises:
        DecoderUnavailable: zxing-cpp is not installed.
    """

    name = BACKEND

    def __init__(
        self,
        *,
        try_invert: bool = True,
        try_rotate: bool = True,
        try_downscale: bool = True,
        binarizer: Binarizer = Binarizer.LOCAL_AVERAGE,
    ) -> None:
        super().__init__()
        self._zx = load_zxingcpp()
        self._formats = self._zx.BarcodeFormat.QRCode
        self._plain = self._zx.TextMode.Plain
        self.try_invert = try_invert
        self.try_rotate = try_rotate
        self.try_downscale = try_downscale
        self.binarizer = binarizer

    def decode(self, gray: Gray) -> list[DecodedCode]:
        codes, _ = self.read(gray)
        return codes

    def read(
        self,
        gray: Gray,
        *,
        binarizer: Binarizer | None = None,
        try_invert: bool | None = None,
        want_misses: bool = False,
    ) -> tuple[list[DecodedCode], list[Box]]:
        """One zxing-cpp pass, optionally overriding the binarizer and inversion.

        Args:
            want_misses: also return where zxing-cpp found a symbol it could not
                decode (a checksum error: wrinkled, curved, blurred): the place
                where a second, slower look pays.

        Returns:
            (codes decoded, bounding boxes of symbols found but not decoded).
        """
        try:
            found = self._zx.read_barcodes(
                gray,
                formats=self._formats,
                try_rotate=self.try_rotate,
                try_downscale=self.try_downscale,
                try_invert=self.try_invert if try_invert is None else try_invert,
                text_mode=self._plain,
                binarizer=getattr(self._zx.Binarizer, (binarizer or self.binarizer).value),
                return_errors=want_misses,
            )
        except Exception as err:  # noqa: BLE001 - a library fault on one frame must not stop the camera
            self._swallow(err)
            return [], []
        codes: list[DecodedCode] = []
        misses: list[Box] = []
        for barcode in found:
            if barcode.valid:
                codes.append(
                    DecodedCode(text=barcode.text, format=barcode.format.name, backend=BACKEND)
                )
            elif want_misses:
                pos = barcode.position
                corners = (pos.top_left, pos.top_right, pos.bottom_right, pos.bottom_left)
                xs, ys = [p.x for p in corners], [p.y for p in corners]
                misses.append(Box(min(xs), min(ys), max(xs), max(ys)))
        return codes, misses
