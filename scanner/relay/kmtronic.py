"""KMTronic USB relay boards: 9600, ``FF ch 01`` / ``FF ch 00``, status ``FF ch 03``.

The status answer (``FF ch xx``) is checked when the board gives one; boards
whose firmware stays silent are accepted as they are.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scanner.errors import RelayError
from scanner.relay.kind import RelayKind, serial_board
from scanner.relay.serial_board import SerialRelay

if TYPE_CHECKING:
    import serial

_log = logging.getLogger(__name__)


class KmtronicRelay(SerialRelay):
    kind = "kmtronic"

    def frame(self, on: bool) -> bytes:
        return bytes((0xFF, self.channel, 1 if on else 0))

    def check(self, port: serial.Serial, on: bool) -> None:
        query = bytes((0xFF, self.channel, 0x03))
        port.reset_input_buffer()
        port.write(query)
        port.flush()
        self.transcript.append(("tx", query))
        answer = self._read_reply(port, None, limit=3, wait_s=0.2)
        if len(answer) < 3:
            _log.debug("kmtronic %s: no status answer", self.port)
            return
        if answer[0] != 0xFF or answer[1] != self.channel:
            raise RelayError(f"KMTronic board answered {answer.hex(' ')} to a status query")
        if bool(answer[2]) is not on:
            raise RelayError(
                f"KMTronic board reports channel {self.channel} "
                f"{'on' if answer[2] else 'off'} after {'ON' if on else 'OFF'}"
            )


KIND = RelayKind(name="kmtronic", channels=8, build=serial_board(KmtronicRelay))
