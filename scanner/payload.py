"""Turn whatever a scanner read into a pass code, or refuse it before the API sees it.

A payload spends a validation from a budget of about one a second, so anything
that cannot be a PassQR code is refused here: too long, control bytes, a URL
without a code, a barcode of some other product.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import parse_qs, urlsplit

from scanner.errors import InvalidPayloadError

#: Longer than any PassQR URL; a QR code can hold kilobytes, a pass never needs them.
MAX_PAYLOAD_CHARS = 512

#: A PassQR pass code, upper case: the client's one copy of the pattern (the local
#: server keeps its own, as it shares nothing with the kiosk but JSON shapes).
CODE_RE = re.compile(r"PASS-[A-Z0-9]{8}")
_AIM_RE = re.compile(r"^\][A-Za-z][0-9A-Za-z]")


def strip_aim(text: str) -> str:
    """Drop a leading AIM symbology identifier (``]Q1``, ``]C1``...) some scanners add."""
    return _AIM_RE.sub("", text, count=1)


def is_pass_code(text: str) -> bool:
    """Whether `text` is exactly a pass code as PassQR spells it (upper case, no spaces)."""
    return CODE_RE.fullmatch(text) is not None


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in text)


def _code_from_url(text: str) -> str | None:
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    for value in parse_qs(parts.query).get("code", []):
        if CODE_RE.fullmatch(value.strip().upper()):
            return value.strip().upper()
    for segment in reversed([s for s in parts.path.split("/") if s]):
        if CODE_RE.fullmatch(segment.upper()):
            return segment.upper()
    return None


def normalise(payload: str) -> str:
    """Return the ``PASS-XXXXXXXX`` code a payload carries.

    Args:
        payload: text exactly as read (may carry a terminator, an AIM prefix, a URL).

    Returns:
        The upper-cased code.

    Raises:
        InvalidPayloadError: the payload is empty, too long, carries control bytes,
            or holds no pass code. The message is safe to journal (it never echoes
            the payload).
    """
    text = strip_aim(payload.strip()).strip()
    if not text:
        raise InvalidPayloadError("empty payload")
    if len(text) > MAX_PAYLOAD_CHARS:
        raise InvalidPayloadError(f"payload too long ({len(text)} characters)")
    if _has_control(text):
        raise InvalidPayloadError("payload contains control characters")
    if text.lower().startswith(("http://", "https://")):
        code = _code_from_url(text)
        if code is None:
            raise InvalidPayloadError("URL without a pass code")
        return code
    code = text.upper()
    if not CODE_RE.fullmatch(code):
        raise InvalidPayloadError("not a PassQR pass code")
    return code


def escape_char(ch: str) -> str:
    """One character as a visible escape: ``\\x1b``, ``\\u202e``, ``\\U0001f600``."""
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: str, limit: int = 80) -> str:
    """A payload made safe to show or log: control characters escaped, length capped."""
    out = "".join(
        ch if unicodedata.category(ch)[0] != "C" else escape_char(ch) for ch in text[:limit]
    )
    return out + ("…" if len(text) > limit else "")
