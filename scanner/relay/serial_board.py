"""What every relay board on a serial port shares: opening, reconnecting, the transcript.

A board is opened exclusively, given ``open_delay_ms`` to boot (Arduino-style
boards reset when the port opens), and sent OFF before anything else, on the
first open and on every reopen after a fault. Each subclass only says which
bytes mean ON and OFF, and how to check the board's answer where it gives one.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import abstractmethod
from collections import deque
from typing import TYPE_CHECKING

from scanner.errors import RelayError
from scanner.relay.base import Relay

if TYPE_CHECKING:
    import serial

_log = logging.getLogger(__name__)


class SerialRelay(Relay):
    """A relay board behind a serial or USB-CDC port.

    Args:
        port: the device (prefer ``/dev/serial/by-id/...`` or a udev name).
        channel: the relay on the board, from 1.
        pulse_ms: how long an admission closes the contact.
        baudrate: the port speed (USB-CDC boards ignore it).
        open_delay_ms: wait after opening before the first command.
    """

    kind = "serial"

    def __init__(
        self,
        port: str,
        *,
        channel: int = 1,
        pulse_ms: int = 1000,
        baudrate: int = 9600,
        open_delay_ms: int = 0,
    ) -> None:
        super().__init__(pulse_ms=pulse_ms)
        self.port = port
        self.channel = channel
        self.baudrate = baudrate
        self.open_delay_ms = open_delay_ms
        self.transcript: deque[tuple[str, bytes]] = deque(maxlen=64)
        self._serial: serial.Serial | None = None
        self._io_lock = threading.Lock()
        self._owner: SerialRelay = self

    def share_port_of(self, owner: SerialRelay) -> None:
        """Drive this channel through ``owner``'s open port (a buzzer on the door board's
        other channel): one exclusive open, one lock around every command."""
        self._owner = owner

    @property
    def description(self) -> str:
        return f"{self.kind} {self.port} ch{self.channel}"

    # -- what a board says ------------------------------------------------------------

    @abstractmethod
    def frame(self, on: bool) -> bytes:
        """The bytes that switch this channel."""

    def check(self, port: serial.Serial, on: bool) -> None:
        """Read the board's answer after a command, where it gives one.

        Raises:
            RelayError: the board says the contact is not where we put it.
        """

    # -- port handling ----------------------------------------------------------------

    def _read_reply(
        self, port: serial.Serial, until: bytes | None, limit: int = 64, wait_s: float = 0.3
    ) -> bytes:
        """Bytes the board sends back within ``wait_s`` (up to ``until``)."""
        deadline = time.monotonic() + wait_s
        data = bytearray()
        while time.monotonic() < deadline and len(data) < limit:
            chunk = port.read(max(1, port.in_waiting))
            if chunk:
                data.extend(chunk)
                if until is not None and until in data:
                    break
            elif until is None and data:
                break
        if data:
            self.transcript.append(("rx", bytes(data)))
        return bytes(data)

    def _send(self, port: serial.Serial, on: bool) -> None:
        data = self.frame(on)
        port.write(data)
        port.flush()
        self.transcript.append(("tx", data))
        self.check(port, on)

    def _open(self) -> serial.Serial:
        import serial  # here, not at the top: validating a config never loads pyserial

        port = serial.Serial(
            self.port, self.baudrate, timeout=0.05, write_timeout=1.0, exclusive=True
        )
        try:
            if self.open_delay_ms:
                time.sleep(self.open_delay_ms / 1000)
            port.reset_input_buffer()
            self._send(port, False)
        except Exception:
            port.close()
            raise
        _log.info("relay %s: opened, contact OFF", self.description)
        return port

    def _switch(self, on: bool) -> None:
        import serial

        owner = self._owner
        with owner._io_lock:
            if owner._serial is None:
                owner._serial = owner._open()
                if not on and owner is self:
                    return  # _open just sent OFF
            try:
                self._send(owner._serial, on)
            except (serial.SerialException, OSError, RelayError):
                owner._drop()
                raise

    def _drop(self) -> None:
        import serial

        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as err:
                _log.debug("closing %s: %s", self.port, err)

    def _release(self) -> None:
        if self._owner is not self:
            return  # the owner closes the port
        with self._io_lock:
            self._drop()
