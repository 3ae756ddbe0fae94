"""zbar through pyzbar: 125 of 174 samples, about 10 times slower than zxing-cpp.

pyzbar needs the ``libzbar0`` shared library (Debian: ``apt install libzbar0``);
without it importing ``pyzbar.pyzbar`` raises ImportError, reported here as
:class:`DecoderUnavailable`. pyzbar 0.1.9 raises ValueError on structured-append
symbols (zbar reports orientation -1, pyzbar reads it as unsigned): caught per
frame and counted.
"""

from __future__ import annotations

from types import ModuleType

from scanner.decode.base import DecodedCode, Decoder, DecoderUnavailable, Gray

BACKEND = "zbar"


def load_pyzbar() -> ModuleType:
    """The ``pyzbar.pyzbar`` module.

    Raises:
        DecoderUnavailable: pyzbar is not installed, or libzbar is missing.
    """
    try:
        from pyzbar import pyzbar
    except ModuleNotFoundError as err:
        raise DecoderUnavailable(
            BACKEND, f"pyzbar is not installed ({err}); pip install pyzbar"
        ) from err
    except (ImportError, OSError) as err:
        raise DecoderUnavailable(
            BACKEND, f"libzbar cannot be loaded ({err}); apt install libzbar0"
        ) from err
    module: ModuleType = pyzbar
    return module


def text_of(data: bytes) -> str:
    """zbar hands over its text already converted to UTF-8; anything else as Latin-1.

    Latin-1 never fails and keeps every byte visible, so a binary payload is
    refused later by the payload check rather than lost here.
    """
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


class ZbarDecoder(Decoder):
    """zbar, QR codes only.

    Raises:
        DecoderUnavailable: pyzbar or libzbar is missing.
    """

    name = BACKEND

    def __init__(self) -> None:
        super().__init__()
        self._zbar = load_pyzbar()
        self._symbols = [self._zbar.ZBarSymbol.QRCODE]

    def decode(self, gray: Gray) -> list[DecodedCode]:
        try:
            found = self._zbar.decode(gray, symbols=self._symbols)
        except Exception as err:  # noqa: BLE001 - pyzbar raises ValueError on structured append
            self._swallow(err)
            return []
        return [DecodedCode(text=text_of(s.data), format="QRCode", backend=BACKEND) for s in found]
