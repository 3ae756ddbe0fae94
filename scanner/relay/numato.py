"""Numato USB relay modules (CDC, ``/dev/ttyACM*``): ASCII commands, state read back.

``relay on 0\\r`` / ``relay off 0\\r``; relays 10 and up are letters (A = 10).
After each command the driver asks ``relay read N\\r`` and checks the answer
(the board echoes the command, then ``on`` or ``off``, then ``\\r\\n>``).
"""

from __future__ import annotations

import logging
import string
from typing import TYPE_CHECKING

from scanner.errors import RelayError
from scanner.relay.kind import RelayKind, serial_board
from scanner.relay.serial_board import SerialRelay

if TYPE_CHECKING:
    import serial

_log = logging.getLogger(__name__)

_INDEX = string.digits + string.ascii_uppercase


def numato_index(channel: int) -> str:
    """Channel 1 is relay ``0``; channel 11 is relay ``A``."""
    if not 1 <= channel <= len(_INDEX):
        raise ValueError(f"Numato channels are 1 to {len(_INDEX)}")
    return _INDEX[channel - 1]


def parse_read(answer: bytes, index: str) -> bool | None:
    """The relay state in the answer to ``relay read N``, or None if there is none."""
    text = answer.decode("ascii", errors="replace").replace("\r", "\n")
    command = f"relay read {index}"
    words = [w.strip().lower() for w in text.split("\n") if w.strip()]
    words = [w for w in words if w != command and w != ">"]
    for word in words:
        if word in ("on", "off"):
            return word == "on"
    return None


class NumatoRelay(SerialRelay):
    kind = "numato"

    def frame(self, on: bool) -> bytes:
        return f"relay {'on' if on else 'off'} {numato_index(self.channel)}\r".encode()

    def check(self, port: serial.Serial, on: bool) -> None:
        self._read_reply(port, b">")  # the echo and prompt of the command itself
        index = numato_index(self.channel)
        query = f"relay read {index}\r".encode()
        port.write(query)
        port.flush()
        self.transcript.append(("tx", query))
        state = parse_read(self._read_reply(port, b">"), index)
        if state is None:
            raise RelayError(f"Numato board gave no state for relay {index}")
        if state is not on:
            raise RelayError(
                f"Numato board reports relay {index} {'on' if state else 'off'} "
                f"after {'ON' if on else 'OFF'}"
            )


KIND = RelayKind(name="numato", channels=32, build=serial_board(NumatoRelay))
