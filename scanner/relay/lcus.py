"""LCUS-1/2/4/8 (CH340) relay boards: 9600 8N1, frame ``A0 ch op (A0+ch+op)&0xFF``."""

from __future__ import annotations

import logging
import threading

import serial

from scanner.relay.base import Relay

_log = logging.getLogger(__name__)


def lcus_frame(channel: int, on: bool) -> bytes:
    """The 4-byte command for one channel (1-8)."""
    op = 1 if on else 0
    return bytes((0xA0, channel, op, (0xA0 + channel + op) & 0xFF))


class LcusRelay(Relay):
    """One channel of an LCUS board.

    The port is opened exclusively; if it vanishes (unplugged cable) the next
    switch reopens it and sends OFF before anything else.
    """

    kind = "lcus"

    def __init__(
        self, port: str, *, channel: int = 1, pulse_ms: int = 1000, baudrate: int = 9600
    ) -> None:
        super().__init__(pulse_ms=pulse_ms)
        self.port = port
        self.channel = channel
        self.baudrate = baudrate
        self._serial: serial.Serial | None = None
        self._io_lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"lcus {self.port} ch{self.channel}"

    def _open(self) -> serial.Serial:
        port = serial.Serial(
            self.port, self.baudrate, timeout=0.2, write_timeout=1.0, exclusive=True
        )
        port.write(lcus_frame(self.channel, False))
        port.flush()
        return port

    def _switch(self, on: bool) -> None:
        with self._io_lock:
            if self._serial is None:
                self._serial = self._open()
            try:
                self._serial.write(lcus_frame(self.channel, on))
                self._serial.flush()
            except (serial.SerialException, OSError):
                self._drop()
                raise

    def _drop(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as err:
                _log.debug("closing %s: %s", self.port, err)

    def _release(self) -> None:
        with self._io_lock:
            self._drop()
