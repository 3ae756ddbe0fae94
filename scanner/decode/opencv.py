"""OpenCV's QRCodeDetector: 79 of 174 samples, the slowest backend measured.

``detectAndDecode`` (one code per image) finds more of the samples than
``detectAndDecodeMulti`` (79 against 67). OpenCV raises on some valid codes
(UnicodeDecodeError on Kanji, ``cv2.error`` "mode 13 not implemented" on Hanzi):
caught per frame and counted.
"""

from __future__ import annotations

from typing import Any

from scanner.decode.base import DecodedCode, Decoder, DecoderUnavailable, Gray

BACKEND = "opencv"


class OpenCvDecoder(Decoder):
    """OpenCV ``QRCodeDetector().detectAndDecode``.

    Raises:
        DecoderUnavailable: OpenCV is not installed.
    """

    name = BACKEND

    def __init__(self) -> None:
        super().__init__()
        try:
            import cv2
        except ImportError as err:
            raise DecoderUnavailable(
                BACKEND, f"OpenCV cannot be imported ({err}); pip install opencv-python-headless"
            ) from err
        self._detector: Any = cv2.QRCodeDetector()

    def decode(self, gray: Gray) -> list[DecodedCode]:
        try:
            text, _points, _straight = self._detector.detectAndDecode(gray)
        except Exception as err:  # noqa: BLE001 - OpenCV raises on Kanji and Hanzi codes
            self._swallow(err)
            return []
        if not text:
            return []
        return [DecodedCode(text=str(text), format="QRCode", backend=BACKEND)]
