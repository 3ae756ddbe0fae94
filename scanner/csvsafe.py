"""CSV fields that are safe to open in a spreadsheet and to ``cat`` in a terminal.

Everything the project writes to CSV can hold outside text: holder names from
the server, payloads anyone can print into a QR code. Two defences, after
OWASP's CSV injection guidance:

- a field that a spreadsheet would read as a formula (it starts with ``=``,
  ``+``, ``-``, ``@``, a tab, CR or NUL) gets a leading ``'``;
- control characters (C0 with tab and newline, DEL, C1 such as U+009B, the 8-bit CSI)
  are written as ``\\xNN`` escapes, so the file cannot drive the terminal that shows it;
  the bidirectional overrides (U+202A-U+202E, U+2066-U+2069) and line separators as
  ``\\uNNNN``, so a cell cannot reorder or split what a reader sees.

Numbers and booleans are left alone: ``-3.5`` is a value, not a formula.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any

from scanner.payload import escape_char

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\x00")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def csv_field(value: Any) -> Any:
    """``value`` as it may be written to a CSV cell (non-strings unchanged)."""
    if not isinstance(value, str):
        return value
    text = value
    if text.startswith(_FORMULA_START):
        text = "'" + text
    return _CONTROL.sub(lambda match: escape_char(match.group()), text)


class SafeCsvWriter:
    """A ``csv.writer`` whose every field goes through :func:`csv_field`.

    Every CSV file the project writes is written through one of these.
    """

    def __init__(self, stream: Any, **fmtparams: Any) -> None:
        self._writer = csv.writer(stream, **fmtparams)

    def write_row(self, values: Iterable[Any]) -> None:
        self._writer.writerow([csv_field(value) for value in values])
