"""Block letters for the words a person reads from two metres away.

A terminal cannot scale its font, so the headline (ACCEPTED, REJECTED, SCAN YOUR
PASS) is drawn with a 5x5 dot font, one cell per dot. Every glyph is made of the
full block alone: the console font the deploy guide installs (Lat15-Terminus32x16,
like Debian's default Lat15-Fixed16) has it, but not the half blocks (the kernel
draws those as diamonds), so there is no half-height size.
"""

from __future__ import annotations

from collections.abc import Mapping

FULL = "\u2588"  # █

HEIGHT = 5

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

GLYPHS = frozenset(_RAW)
"""The characters that have a glyph (upper case)."""

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
    return [gap.join(g[row] for g in glyphs) for row in range(HEIGHT)]


def render(text: str) -> list[str]:
    """The :data:`HEIGHT` rows of ``text`` in block letters.

    Raises:
        KeyError: a character has no glyph (:func:`supports` says which texts have all).
    """
    return [row.replace("#", FULL) for row in _rows(text)]


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
