"""Printable QR codes of passes: ``<CODE>.png`` or ``<CODE>.svg``, the holder's name under the code.

The QR matrix comes from zxing-cpp's writer (error correction M, the bare
``PASS-XXXXXXXX`` code: the smallest symbol, read fastest at the gate). PNGs are
drawn with OpenCV, whose Hershey fonts only have ASCII: names are transliterated
(``Zoë Müller`` -> ``Zoe Muller``) and a name with no Latin letters at all falls
back to the holder's e-mail (the SVG has the real text). SVGs are written by hand:
one path for the dark modules and ``<text>`` elements with the text escaped.
"""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt

from scanner.models import PassInfo
from scanner.payload import is_pass_code

QrFormat = Literal["png", "svg"]

QUIET_MODULES = 4
"""The quiet zone the QR standard asks for, in modules."""


_SPECIAL = {
    "ß": "ss",
    "æ": "ae",
    "Æ": "AE",
    "ø": "o",
    "Ø": "O",
    "œ": "oe",
    "Œ": "OE",
    "ł": "l",
    "Ł": "L",
    "đ": "d",
    "Đ": "D",
    "ð": "d",
    "Ð": "D",
    "þ": "th",
    "Þ": "Th",
    "ı": "i",
    "‘": "'",
    "’": "'",
    "“": '"',
    "”": '"',
    "–": "-",
    "—": "-",
}


class QrError(Exception):
    """A QR file cannot be made (bad code, unwritable directory)."""


def qr_matrix(text: str) -> npt.NDArray[np.bool_]:
    """The QR symbol for ``text`` as a boolean matrix (True: dark), without quiet zone."""
    import zxingcpp

    barcode = zxingcpp.create_barcode(text, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    image = np.asarray(barcode.to_image(scale=1, add_quiet_zones=False))
    if image.ndim != 2 or image.shape[0] != image.shape[1]:
        raise QrError(f"zxing-cpp drew an unexpected {image.shape} image")
    matrix: npt.NDArray[np.bool_] = image < 128
    return matrix


def ascii_text(text: str) -> str:
    """``text`` in ASCII for OpenCV's fonts: accents dropped, a few letters spelt out,
    anything else ``?``; whitespace folded. Empty when nothing Latin is left."""
    out: list[str] = []
    for ch in " ".join(text.split()):
        if ch in _SPECIAL:
            out.append(_SPECIAL[ch])
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base.isascii() and base.isprintable() else "?")
    result = re.sub(r"\?+", "?", "".join(out)).strip()
    return result if any(c.isascii() and c.isalpha() for c in result) else ""


def svg_text(text: str) -> str:
    """``text`` safe inside an XML element: characters XML 1.0 forbids removed, then escaped."""
    kept = "".join(
        ch
        for ch in " ".join(text.split())
        if unicodedata.category(ch) not in ("Cc", "Cs", "Co", "Cn") and ch not in "\ufffe\uffff"
    )
    return escape(kept)


def caption(info: PassInfo) -> str:
    return " ".join((info.holder_name or "").split()) or " ".join((info.holder_email or "").split())


def png_bytes(info: PassInfo, *, scale: int = 10) -> tuple[bytes, str | None]:
    """The PNG, and a warning when the name could not be drawn as written."""
    import cv2

    code = _checked_code(info)
    matrix = qr_matrix(code)
    size = matrix.shape[0] + 2 * QUIET_MODULES
    width = size * scale
    qr = np.full((size, size), 255, np.uint8)
    qr[QUIET_MODULES:-QUIET_MODULES, QUIET_MODULES:-QUIET_MODULES][matrix] = 0
    qr = np.kron(qr, np.ones((scale, scale), np.uint8)).astype(np.uint8)

    warning = None
    name = caption(info)
    drawn = ascii_text(info.holder_name or "")
    if info.holder_name and not drawn:
        drawn = ascii_text(info.holder_email or "")
        warning = "the holder's name has no Latin letters for a PNG; use --format svg for it"
    elif drawn and drawn != name and info.holder_name:
        warning = f"the name is written as {drawn!r} in the PNG (ASCII only; SVG has it as is)"

    font = cv2.FONT_HERSHEY_SIMPLEX
    margin = 2 * scale
    line_h = 4 * scale
    room = width - 2 * margin
    lines: list[tuple[str, float, int]] = []
    if drawn:
        parts = _two_lines(drawn, lambda t: int(cv2.getTextSize(t, font, 1.0, 2)[0][0]), room)
        fitted = [_fit(cv2, part, font, 2, room, scale) for part in parts]
        smallest = min(f for f, _ in fitted)
        lines += [(text, smallest, 2) for _, text in fitted]
    lines.append((code, scale / 10, 1))
    height = width + len(lines) * line_h + margin
    image = np.full((height, width), 255, np.uint8)
    image[:width, :width] = qr
    y = width
    for text, font_scale, thickness in lines:
        (text_w, text_h), _ = cv2.getTextSize(text, font, font_scale, thickness)
        y += line_h
        x = max((width - text_w) // 2, margin)
        baseline = y - (line_h - text_h) // 2
        cv2.putText(image, text, (x, baseline), font, font_scale, 0, thickness, cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise QrError(f"{code}: OpenCV could not encode the PNG")
    return bytes(encoded.tobytes()), warning


def _fit(
    cv2: Any, text: str, font: int, thickness: int, room: int, scale: int
) -> tuple[float, str]:
    """The largest font scale (up to one for a 10-pixel module) at which ``text`` fits;
    the text cut with ``...`` if it does not fit even small."""
    get_size = cv2.getTextSize
    font_scale = scale / 10
    smallest = scale / 25
    while font_scale > smallest and get_size(text, font, font_scale, thickness)[0][0] > room:
        font_scale *= 0.9
    while len(text) > 4 and get_size(text, font, font_scale, thickness)[0][0] > room:
        text = text[:-4].rstrip() + "..."
    return font_scale, text


def _two_lines(text: str, measure: Callable[[str], int], room: int) -> list[str]:
    """``text`` on one line if it fits ``room`` at a readable size, else split in two at
    the space that makes the longer half shortest."""
    words = text.split(" ")
    if measure(text) <= room * 1.4 or len(words) < 2:
        return [text]
    best = min(
        range(1, len(words)),
        key=lambda i: max(measure(" ".join(words[:i])), measure(" ".join(words[i:]))),
    )
    return [" ".join(words[:best]), " ".join(words[best:])]


def svg_document(info: PassInfo, *, scale: int = 10) -> str:
    """The SVG: white background, one path of dark modules, the name and the code as text."""
    code = _checked_code(info)
    matrix = qr_matrix(code)
    quiet = QUIET_MODULES * scale
    width = (matrix.shape[0] + 2 * QUIET_MODULES) * scale
    runs: list[str] = []
    for y, row in enumerate(matrix):
        x = 0
        n = len(row)
        while x < n:
            if not row[x]:
                x += 1
                continue
            start = x
            while x < n and row[x]:
                x += 1
            length = (x - start) * scale
            runs.append(f"M{quiet + start * scale} {quiet + y * scale}h{length}v{scale}h-{length}z")
    name = caption(info)
    line_h = 4 * scale
    room = width - 4 * scale
    size = int(2.4 * scale)
    lines = [
        (svg_text(part), "bold", size)
        for part in (_two_lines(name, lambda t: int(len(t) * size * 0.6), room) if name else [])
    ]
    lines.append((escape(code), "normal", int(2 * scale)))
    height = width + len(lines) * line_h + 2 * scale
    texts = []
    y = width
    for text, weight, size in lines:
        y += line_h
        # A long name is squeezed to the width rather than cut: every letter stays.
        fit = ""
        if len(text) * size * 0.6 > room:
            fit = f' textLength="{room}" lengthAdjust="spacingAndGlyphs"'
        texts.append(
            f'  <text x="{width // 2}" y="{y - scale}" text-anchor="middle" '
            f'font-family="DejaVu Sans, Arial, sans-serif" font-size="{size}" '
            f'font-weight="{weight}"{fit}>{text}</text>'
        )
    title = escape(code) + (f" - {svg_text(name)}" if name else "")
    return "\n".join(
        [
            '<?xml version="1.0" encoding="UTF-8"?>',
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}">',
            f"  <title>{title}</title>",
            f'  <rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
            f'  <path fill="#000000" shape-rendering="crispEdges" d="{"".join(runs)}"/>',
            *texts,
            "</svg>",
            "",
        ]
    )


def _umask() -> int:
    """The process's umask, read without changing it where Linux says it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def _checked_code(info: PassInfo) -> str:
    code = (info.code or "").upper()
    if not is_pass_code(code):
        raise QrError(f"{code or 'a pass'}: not a PassQR code; no file written for it")
    return code


def write_qr(
    info: PassInfo, out_dir: Path, fmt: QrFormat, *, scale: int = 10
) -> tuple[Path, str | None]:
    """Write ``<CODE>.<fmt>`` in ``out_dir`` (atomically: a printer never sees half a file).

    Returns:
        The file, and a warning about the name (PNG only), if any.

    Raises:
        QrError: the code is not a pass code, or the file cannot be written.
    """
    code = _checked_code(info)
    warning: str | None = None
    if fmt == "png":
        data, warning = png_bytes(info, scale=scale)
    else:
        data = svg_document(info, scale=scale).encode("utf-8")
    target = out_dir / f"{code}.{fmt}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{code}.", suffix=".tmp", dir=out_dir)
        try:
            # A file to print, as any new file would be (mkstemp's 0600 is not the point).
            os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise QrError(f"{target}: cannot write ({err.strerror or err})") from err
    return target, warning
