"""LCUS-1/2/4/8 (CH340) boards: 9600 8N1, frame ``A0 ch op (A0+ch+op)&0xFF``.

Some answer ``FF``, many say nothing, so nothing is read back.
"""

from __future__ import annotations

from scanner.relay.kind import RelayKind, serial_board
from scanner.relay.serial_board import SerialRelay


def lcus_frame(channel: int, on: bool) -> bytes:
    """The 4-byte command for one channel (1-8)."""
    op = 1 if on else 0
    return bytes((0xA0, channel, op, (0xA0 + channel + op) & 0xFF))


class LcusRelay(SerialRelay):
    kind = "lcus"

    def frame(self, on: bool) -> bytes:
        return lcus_frame(self.channel, on)


KIND = RelayKind(name="lcus", channels=8, build=serial_board(LcusRelay))
