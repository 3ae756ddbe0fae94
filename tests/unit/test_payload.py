from __future__ import annotations

from pathlib import Path

import pytest

from scanner.errors import InvalidPayloadError
from scanner.payload import MAX_PAYLOAD_CHARS, is_pass_code, normalise, printable, strip_aim


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ("PASS-ABC12345", "PASS-ABC12345"),
        ("  pass-abc12345\r\n", "PASS-ABC12345"),
        ("]Q1PASS-ABC12345", "PASS-ABC12345"),
        ("https://www.passqr.com/p/PASS-ABC12345", "PASS-ABC12345"),
        ("https://www.passqr.com/p/pass-abc12345/", "PASS-ABC12345"),
        ("https://passqr.com/scan?code=PASS-ABC12345&x=1", "PASS-ABC12345"),
        ("HTTPS://WWW.PASSQR.COM/P/PASS-ABC12345", "PASS-ABC12345"),
        ("]Q1https://www.passqr.com/p/PASS-0000ZZZZ", "PASS-0000ZZZZ"),
    ],
)
def test_codes_are_extracted_and_upper_cased(payload: str, code: str) -> None:
    assert normalise(payload) == code


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ("", "empty"),
        ("   \r\n", "empty"),
        ("PASS-ABC\x0012345", "control"),
        ("PASS-ABC12345\x1b[2J", "control"),
        ("PASS-ABC1234\u200b", "control"),
        ("X" * (MAX_PAYLOAD_CHARS + 1), "too long"),
        ("[bold red]PASS-ABC12345[/]", "not a PassQR"),
        ("PASS-ABC1234", "not a PassQR"),
        ("PASS-ABC123456", "not a PassQR"),
        ("4006381333931", "not a PassQR"),
        ("https://example.com/p/nothing", "URL without"),
    ],
)
def test_junk_is_refused_with_a_reason(payload: str, why: str) -> None:
    with pytest.raises(InvalidPayloadError, match=why):
        normalise(payload)


def test_refusal_never_echoes_the_payload() -> None:
    with pytest.raises(InvalidPayloadError) as info:
        normalise("[link=evil]secret-stuff[/link]")
    assert "secret-stuff" not in str(info.value)


def test_aim_prefix_only_at_start() -> None:
    assert strip_aim("]C1abc") == "abc"
    assert strip_aim("abc]C1") == "abc]C1"


def test_printable_escapes_controls_and_caps_length() -> None:
    assert printable("a\x1bb\nc") == "a\\x1bb\\x0ac"
    assert printable("x" * 100, 10) == "x" * 10 + "…"


def test_the_client_spells_the_pass_code_pattern_once() -> None:
    """`scanner.payload` is the kiosk's one home of the pattern; the server keeps its own."""
    root = Path(__file__).resolve().parents[2] / "scanner"
    spelled = sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "PASS-[A-Z0-9]" in path.read_text(encoding="utf-8")
        and path.relative_to(root).parts[0] != "server"
    )
    assert spelled == ["payload.py"]
    assert is_pass_code("PASS-ABC12345")
    assert not any(is_pass_code(t) for t in ("pass-abc12345", "PASS-ABC12345\n", " PASS-ABC12345"))
