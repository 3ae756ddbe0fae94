"""``decoder = "auto"``: the chain that found the most sample codes, cheaply.

Measured on the 170 camera-like samples of ``zxing-orig-qrcode-1`` to ``-6``
(``benchmarks/bench_decode.py``, ``docs/benchmarks-camera.md``):

1. zxing-cpp with its defaults (LocalAverage binarizer, inverted codes too): 157;
2. only if that found nothing, zxing-cpp with the GlobalHistogram binarizer:
   +2 (two codes printed on T-shirts);
3. only if that found nothing either, the GlobalHistogram binarizer on a 5x5
   Gaussian blur: +3 (two designer codes filled with a photo, a code on a sponge).

162 of 170, against 159 for zxing-cpp, zbar and OpenCV together. zbar and OpenCV
after this chain add nothing on the camera-like set (one image of the cropped set)
at 1.4 and 5.7 ms per image without a code, so the chain does not use them unless
zxing-cpp is missing. Upscaling, CLAHE,
sharpening, erosion, rotations and perspective unwarping were tried too: they
rescue only images one of the passes above already reads, or none.

A camera frame gets a cheaper schedule (:meth:`AutoDecoder.decode_frame`): see there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import cast

import cv2

from scanner.decode.base import DecodedCode, Decoder, DecoderUnavailable, Gray
from scanner.decode.zxing import Binarizer, Box, ZxingDecoder

_log = logging.getLogger(__name__)

#: Frames per round of the camera schedule: inverted search, histogram, blurred histogram.
FRAME_CYCLE = 3
#: At most this many "found but not decoded" places get a second look per frame.
MAX_RESCUES = 2
#: A failed symbol's box is grown by this much of its size before it is cropped.
RESCUE_MARGIN = 0.2


def blurred(gray: Gray) -> Gray:
    """A 5x5 Gaussian blur: smooths photo texture and print noise inside modules."""
    return cast(Gray, cv2.GaussianBlur(gray, (5, 5), 0))


def _fallback_builders() -> Mapping[str, Callable[[], Decoder]]:
    """The backends ``auto`` chains, from their own modules: the package face
    (:data:`scanner.decode.BUILDERS`) builds ``auto`` itself, so asking it back would
    be an import circle."""
    from scanner.decode.opencv import OpenCvDecoder
    from scanner.decode.zbar import ZbarDecoder

    return {"zxing": ZxingDecoder, "zbar": ZbarDecoder, "opencv": OpenCvDecoder}


class AutoDecoder(Decoder):
    """The measured best chain (see the module docstring).

    Args:
        fallbacks: backends (``zbar``, ``opencv``) to try, in order, after the
            zxing-cpp chain found nothing. None by default: they added no decodes.
        builders: name -> decoder factory, for the fallbacks (tests inject failing ones).

    Raises:
        DecoderUnavailable: not one backend can be loaded.
    """

    name = "auto"

    def __init__(
        self,
        *,
        fallbacks: Sequence[str] = (),
        builders: Mapping[str, Callable[[], Decoder]] | None = None,
    ) -> None:
        super().__init__()
        makers = builders if builders is not None else _fallback_builders()
        self.zxing: ZxingDecoder | None = None
        reasons: list[str] = []
        try:
            zx = makers.get("zxing", ZxingDecoder)()
            if not isinstance(zx, ZxingDecoder):  # pragma: no cover - a test double
                raise TypeError("the zxing builder must build a ZxingDecoder")
            self.zxing = zx
        except DecoderUnavailable as err:
            reasons.append(err.reason)
            _log.warning("auto decoder: %s; falling back to zbar, then OpenCV", err)
            fallbacks = [name for name in ("zbar", "opencv") if name not in fallbacks] + list(
                fallbacks
            )
        self.fallbacks: list[Decoder] = []
        for name in fallbacks:
            try:
                self.fallbacks.append(makers[name]())
            except DecoderUnavailable as err:
                reasons.append(err.reason)
                _log.info("auto decoder: skipping %s: %s", name, err.reason)
        if self.zxing is None and not self.fallbacks:
            raise DecoderUnavailable("auto", "; ".join(reasons) or "no backend")

    @property
    def chain(self) -> list[str]:
        """The passes, in order, for logs and the benchmarks."""
        out = []
        if self.zxing is not None:
            out = ["zxing", "zxing/GlobalHistogram", "zxing/GlobalHistogram+blur5"]
        return out + [d.name for d in self.fallbacks]

    def decode(self, gray: Gray) -> list[DecodedCode]:
        try:
            zx = self.zxing
            if zx is not None:
                # Each pass runs only when the ones before it found nothing.
                found = (
                    zx.read(gray)[0]
                    or zx.read(gray, binarizer=Binarizer.GLOBAL_HISTOGRAM)[0]
                    or zx.read(blurred(gray), binarizer=Binarizer.GLOBAL_HISTOGRAM)[0]
                )
                if found:
                    return found
            return self._fallbacks(gray)
        finally:
            self._count_errors()

    def decode_frame(self, gray: Gray, index: int) -> list[DecodedCode]:
        """The camera schedule: every pass of the chain, spread over frames.

        Each frame gets zxing-cpp's normal pass without the inverted search (3 ms
        at 1280x720 with no code in view). Then, only if it found nothing:

        - where it found a symbol it could not decode (wrinkled, blurred), the
          histogram passes of the chain run on a crop around it (sub-millisecond);
        - one extra whole-frame pass, in turn: the inverted search (frame 0 of
          each :data:`FRAME_CYCLE`), the histogram binarizer (1), the blurred
          histogram (2).

        A code held in view is in dozens of frames, so it meets every pass within
        ``FRAME_CYCLE`` frames (0.1 s at 30 fps); a frame without a code costs the
        normal pass plus a third of the extras on average.
        """
        zx = self.zxing
        if zx is None:
            return self.decode(gray)
        try:
            slot = index % FRAME_CYCLE
            found, misses = zx.read(gray, try_invert=slot == 0, want_misses=True)
            if found:
                return found
            if misses:
                found = self._rescue(zx, gray, misses)
                if found:
                    return found
            # The inverted search is slot 0's; the other slots skip it.
            if slot == 1:
                found = zx.read(gray, binarizer=Binarizer.GLOBAL_HISTOGRAM, try_invert=False)[0]
            elif slot == 2:
                found = zx.read(
                    blurred(gray), binarizer=Binarizer.GLOBAL_HISTOGRAM, try_invert=False
                )[0]
            if found:
                return found
            return self._fallbacks(gray)
        finally:
            self._count_errors()

    def _fallbacks(self, gray: Gray) -> list[DecodedCode]:
        """The other backends, in order, when zxing-cpp found nothing."""
        for decoder in self.fallbacks:
            found = decoder.decode(gray)
            if found:
                return found
        return []

    def _rescue(self, zx: ZxingDecoder, gray: Gray, misses: list[Box]) -> list[DecodedCode]:
        height, width = gray.shape[:2]
        tried: list[Box] = []
        for miss in misses:
            box = miss.grown(RESCUE_MARGIN, width, height)
            cx, cy = (miss.x0 + miss.x1) // 2, (miss.y0 + miss.y1) // 2
            if any(t.x0 <= cx < t.x1 and t.y0 <= cy < t.y1 for t in tried):
                continue
            if len(tried) == MAX_RESCUES:
                break
            tried.append(box)
            crop = gray[box.y0 : box.y1, box.x0 : box.x1]
            if crop.shape[0] < 21 or crop.shape[1] < 21:
                continue
            found = (
                zx.read(crop, binarizer=Binarizer.GLOBAL_HISTOGRAM, try_invert=False)[0]
                or zx.read(blurred(crop), binarizer=Binarizer.GLOBAL_HISTOGRAM, try_invert=False)[0]
            )
            if found:
                return found
        return []

    def _count_errors(self) -> None:
        parts: list[Decoder] = [*self.fallbacks]
        if self.zxing is not None:
            parts.append(self.zxing)
        self.errors = sum(d.errors for d in parts)
