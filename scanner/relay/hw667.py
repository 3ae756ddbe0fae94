"""HW-667 "E-3" (CH340) single relay: ``AA`` ON, ``BB`` OFF, ``CC`` ON for 1 s timed by the board.

Admissions use the board-timed ``CC``: if the kiosk dies mid-pulse, the board
still releases the door after a second. ``BB`` is sent after ``pulse_ms`` as
well, so a shorter pulse ends on time; a longer one is capped at 1 s by the board.
"""

from __future__ import annotations

from scanner.relay.kind import RelayKind, serial_board
from scanner.relay.serial_board import SerialRelay

ON_TIMED = b"\xcc"
ON_LATCHED = b"\xaa"
OFF = b"\xbb"
BOARD_PULSE_MS = 1000


class Hw667Relay(SerialRelay):
    kind = "hw667"

    def frame(self, on: bool) -> bytes:
        return ON_TIMED if on else OFF


KIND = RelayKind(name="hw667", channels=1, build=serial_board(Hw667Relay))
