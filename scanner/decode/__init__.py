"""QR decoding: one :class:`Decoder` interface, one module per backend.

``decoder = "auto"`` (:mod:`scanner.decode.auto`) is the measured best chain;
``zxing``, ``zbar`` and ``opencv`` are the libraries on their own. Backends load
their library when built, so a missing one raises :class:`DecoderUnavailable`
there and nowhere else.

The exports load lazily, so the main CLI (which registers ``decode`` for every
command) does not pay for importing numpy and OpenCV.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from scanner.decode.base import DecodedCode, Decoder, DecoderUnavailable, Gray

_EXPORTS = {
    "DecodedCode": "scanner.decode.base",
    "Decoder": "scanner.decode.base",
    "DecoderUnavailable": "scanner.decode.base",
    "Gray": "scanner.decode.base",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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

DECODER_NAMES: Final = ("auto", "zxing", "zbar", "opencv")
"""The values of ``decoder = ...``; ``auto`` is the default."""


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
