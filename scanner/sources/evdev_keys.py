"""Keycodes to text for HID keyboard-wedge scanners, on a US layout.

Scanners emulate a US keyboard. Mapping the keycodes ourselves (rather than
letting the console's keymap do it) keeps Y/Z and punctuation right whatever
the kiosk's keyboard layout is. Codes are the Linux ``input-event-codes.h``
numbers, so this module needs no evdev to be installed and is tested on
recorded event sequences.
"""

from __future__ import annotations

EV_KEY = 1
KEY_ENTER = 28
KEY_KPENTER = 96
KEY_TAB = 15
KEY_LEFTSHIFT = 42
KEY_RIGHTSHIFT = 54
KEY_CAPSLOCK = 58

_ROWS: list[tuple[int, str, str]] = [
    (2, "1234567890-=", "!@#$%^&*()_+"),
    (16, "qwertyuiop[]", "QWERTYUIOP{}"),
    (30, "asdfghjkl;'`", 'ASDFGHJKL:"~'),
    (43, "\\zxcvbnm,./", "|ZXCVBNM<>?"),
]

#: keycode -> (plain, with Shift)
US_KEYMAP: dict[int, tuple[str, str]] = {57: (" ", " ")}
for _start, _plain, _shifted in _ROWS:
    for _i, (_p, _s) in enumerate(zip(_plain, _shifted, strict=True)):
        US_KEYMAP[_start + _i] = (_p, _s)
# The keypad, as scanners configured for "numeric keypad" emulation send it.
US_KEYMAP.update(
    {
        71: ("7", "7"),
        72: ("8", "8"),
        73: ("9", "9"),
        74: ("-", "-"),
        75: ("4", "4"),
        76: ("5", "5"),
        77: ("6", "6"),
        78: ("+", "+"),
        79: ("1", "1"),
        80: ("2", "2"),
        81: ("3", "3"),
        82: ("0", "0"),
        83: (".", "."),
        98: ("/", "/"),
        55: ("*", "*"),
    }
)

MAX_LINE = 2048


class KeyDecoder:
    """Feeds key events, returns a code each time Enter (or Tab) ends one."""

    def __init__(self) -> None:
        self._shift: set[int] = set()
        self._caps = False
        self._chars: list[str] = []

    def feed(self, ev_type: int, code: int, value: int) -> str | None:
        """One input event (``value``: 1 press, 0 release, 2 autorepeat)."""
        if ev_type != EV_KEY:
            return None
        if code in (KEY_LEFTSHIFT, KEY_RIGHTSHIFT):
            if value == 0:
                self._shift.discard(code)
            else:
                self._shift.add(code)
            return None
        if value != 1:
            return None  # releases and autorepeat carry no new characters
        if code == KEY_CAPSLOCK:
            self._caps = not self._caps
            return None
        if code in (KEY_ENTER, KEY_KPENTER, KEY_TAB):
            text = "".join(self._chars)
            self._chars.clear()
            return text or None
        mapped = US_KEYMAP.get(code)
        if mapped is None:
            return None
        shifted = bool(self._shift)
        char = mapped[1] if shifted else mapped[0]
        if self._caps and char.isalpha():
            char = char.lower() if shifted else char.upper()
        if len(self._chars) < MAX_LINE:
            self._chars.append(char)
        return None
