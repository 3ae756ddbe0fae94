"""Block letters for the words a person reads from two metres away.

A terminal cannot scale its font, so the headline (ACCEPTED, REJECTED, SCAN YOUR
PASS) is drawn with a 5x5 dot font. Every glyph is made of the full block and
the two half blocks, which the Linux console's 256-glyph font has (CP437 0xDB,
0xDC, 0xDF): the kiosk stays readable on ``TERM=linux``.

Two sizes from one font: ``full`` draws a dot as one cell (5 rows high),
``half`` packs two dot rows into one cell row (3 rows high) for second lines.
"""

from __future__ import annotations

from collections.abc import Mapping

FULL = "\u2588"  # █
UPPER = "\u2580"  # ▀
LOWER = "\u2584"  # ▄

HEIGHT_FULL = 5
HEIGHT_HALF = 3

_RAW: Mapping[str, tuple[str, str, str, str, str]] = {
    "A": (" ### ", "#   #", "#####", "#   #", "#   #"),
    "B": ("#### ", "#   #", "#### ", "#   #", "#### "),
    "C": (" ####", "#    ", "#    ", "#    ", " ####"),
    "D": ("#### ", "#   #", "#   #", "#   #", "#### "),
    "E": ("#####", "#    ", "#### ", "#    ", "#####"),
    "F": ("#####", "#    ", "#### ", "#    ", "#    "),
    "G": (" ####", "#    ", "#  ##", "#   #", " ####"),
    "H": ("#   #", "#   #", "#####", "#   #", "#   #"),
    "I": ("###", " # ", " # ", " # ", "###"),
    "J": ("#####", "    #", "    #", "#   #", " ### "),
    "K": ("#   #", "#  # ", "###  ", "#  # ", "#   #"),
    "L": ("#    ", "#    ", "#    ", "#    ", "#####"),
    "M": ("#   #", "## ##", "# # #", "#   #", "#   #"),
    "N": ("#   #", "##  #", "# # #", "#  ##", "#   #"),
    "O": (" ### ", "#   #", "#   #", "#   #", " ### "),
    "P": ("#### ", "#   #", "#### ", "#    ", "#    "),
    "Q": (" ### ", "#   #", "# # #", "#  # ", " ## #"),
    "R": ("#### ", "#   #", "#### ", "#  # ", "#   #"),
    "S": (" ####", "#    ", " ### ", "    #", "#### "),
    "T": ("#####", "  #  ", "  #  ", "  #  ", "  #  "),
    "U": ("#   #", "#   #", "#   #", "#   #", " ### "),
    "V": ("#   #", "#   #", "#   #", " # # ", "  #  "),
    "W": ("#   #", "#   #", "# # #", "## ##", "#   #"),
    "X": ("#   #", " # # ", "  #  ", " # # ", "#   #"),
    "Y": ("#   #", " # # ", "  #  ", "  #  ", "  #  "),
    "Z": ("#####", "   # ", "  #  ", " #   ", "#####"),
    "0": (" ### ", "#  ##", "# # #", "##  #", " ### "),
    "1": ("  #  ", " ##  ", "  #  ", "  #  ", " ### "),
    "2": (" ### ", "#   #", "  ## ", " #   ", "#####"),
    "3": ("#### ", "    #", " ### ", "    #", "#### "),
    "4": ("#   #", "#   #", "#####", "    #", "    #"),
    "5": ("#####", "#    ", "#### ", "    #", "#### "),
    "6": (" ### ", "#    ", "#### ", "#   #", " ### "),
    "7": ("#####", "    #", "   # ", "  #  ", "  #  "),
    "8": (" ### ", "#   #", " ### ", "#   #", " ### "),
    "9": (" ### ", "#   #", " ####", "    #", " ### "),
    " ": ("   ", "   ", "   ", "   ", "   "),
    ".": (" ", " ", " ", " ", "#"),
    ",": ("  ", "  ", "  ", " #", "# "),
    "!": ("#", "#", "#", " ", "#"),
    "'": ("#", "#", " ", " ", " "),
    ":": (" ", "#", " ", "#", " "),
    "-": ("   ", "   ", "###", "   ", "   "),
    "?": (" ### ", "#   #", "  ## ", "     ", "  #  "),
    "/": ("    #", "   # ", "  #  ", " #   ", "#    "),
}

GAP = 1
"""Blank columns between two glyphs."""


def supports(text: str) -> bool:
    """Whether every character of ``text`` has a glyph (case is ignored)."""
    return bool(text) and all(ch in _RAW for ch in text.upper())


def width(text: str) -> int:
    """Columns ``text`` takes in block letters (the same at both sizes)."""
    glyphs = [_RAW[ch] for ch in text.upper()]
    if not glyphs:
        return 0
    return sum(len(g[0]) for g in glyphs) + GAP * (len(glyphs) - 1)


def _rows(text: str) -> list[str]:
    glyphs = [_RAW[ch] for ch in text.upper()]
    gap = " " * GAP
    return [gap.join(g[row] for g in glyphs) for row in range(HEIGHT_FULL)]


def render(text: str, *, half: bool = False) -> list[str]:
    """The lines of ``text`` in block letters.

    Args:
        text: characters that :func:`supports` accepts.
        half: three rows high instead of five.

    Raises:
        KeyError: a character has no glyph.
    """
    rows = _rows(text)
    if not half:
        return [row.replace("#", FULL) for row in rows]
    rows.append(" " * len(rows[0]))
    out: list[str] = []
    for top, bottom in zip(rows[0::2], rows[1::2], strict=True):
        out.append(
            "".join(
                FULL if t == "#" and b == "#" else UPPER if t == "#" else LOWER if b == "#" else " "
                for t, b in zip(top, bottom, strict=True)
            )
        )
    return out


def wrap(text: str, max_width: int, *, max_lines: int = 2) -> list[str] | None:
    """Split ``text`` at spaces into lines that fit ``max_width`` in block letters.

    Returns:
        the lines, or None when the text cannot be drawn that way (a character
        without a glyph, a word too long, more than ``max_lines`` lines).
    """
    text = " ".join(text.split())
    if not supports(text):
        return None
    lines: list[str] = []
    for word in text.split(" "):
        if lines and width(lines[-1] + " " + word) <= max_width:
            lines[-1] += " " + word
        elif width(word) <= max_width:
            lines.append(word)
        else:
            return None
    return lines if len(lines) <= max_lines else None
