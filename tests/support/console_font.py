"""The characters the Linux console can draw with the font the deploy guide installs.

``docs/deploy.md`` sets console-setup to ``CODESET="Lat15"``, ``FONTFACE="Terminus"``,
``FONTSIZE="16x32"``: the file ``Lat15-Terminus32x16.psf.gz`` from Debian's
``console-setup-linux``. The kernel draws any code point missing from a font's Unicode
table as its replacement glyph (a diamond for these fonts), so a character the kiosk
shows must be in that table. Debian's default console font (``Lat15-Fixed16``, no
FONTFACE set) has the same repertoire and is checked too.

Both PC Screen Font versions are read (gzip'd or not). PSF2 (Terminus): a 32-byte header,
``length`` glyph bitmaps, then, when flag bit 0 is set, one Unicode entry per glyph:
UTF-8 code points, optionally ``0xFE`` and sequences, ended by ``0xFF``. PSF1 (Fixed16):
a 4-byte header, 256 or 512 bitmaps, then little-endian UCS-2 entries, ``0xFFFE`` before
sequences, ended by ``0xFFFF``.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
from pathlib import Path

import pytest

FONT_DIR = Path("/usr/share/consolefonts")
DEPLOY_FONT = FONT_DIR / "Lat15-Terminus32x16.psf.gz"
"""The font docs/deploy.md installs (CODESET Lat15, FONTFACE Terminus, FONTSIZE 16x32)."""
DEFAULT_FONT = FONT_DIR / "Lat15-Fixed16.psf.gz"
"""Debian's console font when console-setup names no face."""

_PSF1_MAGIC = b"\x36\x04"
_PSF1_512 = 0x01
_PSF1_HAS_TABLE = 0x02
_PSF2_MAGIC = 0x864AB572
_PSF2_HAS_TABLE = 0x01


def unicode_table(path: Path) -> frozenset[str]:
    """Every single code point the font maps to a glyph.

    Raises:
        ValueError: not a PSF font with a Unicode table.
    """
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    # Before the separator: single code points; after it, sequences (combining forms).
    chars: set[str] = set()
    if data[:2] == _PSF1_MAGIC:
        mode, charsize = data[2], data[3]
        if not mode & _PSF1_HAS_TABLE:
            raise ValueError(f"{path}: no Unicode table")
        length = 512 if mode & _PSF1_512 else 256
        table = data[4 + length * charsize :]
        points = struct.unpack(f"<{len(table) // 2}H", table[: len(table) // 2 * 2])
        glyph, in_sequence = 0, False
        for point in points:
            if point == 0xFFFF:
                glyph, in_sequence = glyph + 1, False
                if glyph == length:
                    break
            elif point == 0xFFFE:
                in_sequence = True
            elif not in_sequence:
                chars.add(chr(point))
        return frozenset(chars)
    magic, _version, header, flags, length, charsize, _h, _w = struct.unpack("<8I", data[:32])
    if magic != _PSF2_MAGIC:
        raise ValueError(f"{path}: not a PSF font")
    if not flags & _PSF2_HAS_TABLE:
        raise ValueError(f"{path}: no Unicode table")
    table = data[header + length * charsize :]
    for entry in table.split(b"\xff")[:length]:
        chars.update(entry.split(b"\xfe")[0].decode("utf-8"))
    return frozenset(chars)


@functools.cache
def _fonts() -> tuple[tuple[str, frozenset[str]], ...]:
    return tuple((path.name, unicode_table(path)) for path in (DEPLOY_FONT, DEFAULT_FONT))


def console_fonts() -> tuple[tuple[str, frozenset[str]], ...]:
    """(name, code points) of each checked font; skips the test where the fonts are missing.

    CI (``CI`` set) installs them (``.ci/run``): there a missing font fails instead.
    """
    missing = [str(path) for path in (DEPLOY_FONT, DEFAULT_FONT) if not path.exists()]
    if missing:
        message = f"console fonts missing (apt-get install console-setup-linux): {missing}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return _fonts()


def missing_glyphs(texts: list[str]) -> dict[str, list[str]]:
    """Font name -> the characters of ``texts`` it cannot draw (newlines aside)."""
    used = {ch for text in texts for ch in text} - {"\n"}
    out: dict[str, list[str]] = {}
    for name, chars in console_fonts():
        lacking = sorted(used - chars)
        if lacking:
            out[name] = [f"{ch!r} U+{ord(ch):04X}" for ch in lacking]
    return out
