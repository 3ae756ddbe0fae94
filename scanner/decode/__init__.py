"""QR decoding: one :class:`Decoder` interface, one module per backend.

``decoder = "auto"`` (:mod:`scanner.decode.auto`) is the measured best chain;
``zxing``, ``zbar`` and ``opencv`` are the libraries on their own. Backends load
their library when built, so a missing one raises :class:`DecoderUnavailable`
there and nowhere else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from scanner.decode.base import DecodedCode, Decoder, DecoderUnavailable, Gray


def _zxing() -> Decoder:
    from scanner.decode.zxing import ZxingDecoder

    return ZxingDecoder()


def _zbar() -> Decoder:
    from scanner.decode.zbar import ZbarDecoder

    return ZbarDecoder()


def _opencv() -> Decoder:
    from scanner.decode.opencv import OpenCvDecoder

    return OpenCvDecoder()


def _auto() -> Decoder:
    from scanner.decode.auto import AutoDecoder

    return AutoDecoder()


#: Backend name -> factory; ``auto`` looks its fallbacks up here.
BUILDERS: Final[Mapping[str, Callable[[], Decoder]]] = {
    "auto": _auto,
    "zxing": _zxing,
    "zbar": _zbar,
    "opencv": _opencv,
}

DECODER_NAMES: Final = tuple(BUILDERS)


def build_decoder(name: str) -> Decoder:
    """The decoder for ``decoder = name``.

    Raises:
        DecoderUnavailable: that backend's library is missing (for ``auto``: all are).
        ValueError: ``name`` is not one of :data:`DECODER_NAMES`.
    """
    try:
        builder = BUILDERS[name]
    except KeyError:
        raise ValueError(
            f"unknown decoder {name!r}; expected one of {', '.join(DECODER_NAMES)}"
        ) from None
    return builder()


__all__ = [
    "BUILDERS",
    "DECODER_NAMES",
    "DecodedCode",
    "Decoder",
    "DecoderUnavailable",
    "Gray",
    "build_decoder",
]
