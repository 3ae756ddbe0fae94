"""A serial or USB-CDC barcode scanner, read by pyserial on its own thread.

Scanners end a code with CR, LF or CRLF (or nothing: then ``idle_timeout_s``
ends it). Partial writes are joined. When the device vanishes, the thread
closes it, marks the source DEGRADED and reopens it as soon as it is back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from scanner.checks import Check
from scanner.payload import MAX_PAYLOAD_CHARS
from scanner.probes import serial_port
from scanner.schema import MAX_BAUD, within
from scanner.sources.base import Source, SourceState, ThreadedSource
from scanner.sources.kind import SourceKind

if TYPE_CHECKING:
    import serial

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SerialSourceConfig:
    type: Literal["serial"]
    port: str
    baudrate: int = within(9600, 1, MAX_BAUD)
    name: str | None = None
    idle_timeout_s: float = within(0.0, 0, 60, unit="seconds")
    """For scanners that send no terminator: a code ends after this much silence (0 = off)."""


class LineSplitter:
    """Bytes in, codes out: CR, LF and CRLF end a code; an over-long line is cut."""

    def __init__(self, max_len: int = MAX_PAYLOAD_CHARS * 4) -> None:
        self._buf = bytearray()
        self._max = max_len
        self._last_cr = False

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for byte in data:
            if byte in (0x0D, 0x0A):
                if byte == 0x0A and self._last_cr:
                    self._last_cr = False
                    continue
                self._last_cr = byte == 0x0D
                if self._buf:
                    out.append(bytes(self._buf))
                    self._buf.clear()
                continue
            self._last_cr = False
            if len(self._buf) < self._max:
                self._buf.append(byte)
        return out

    def flush(self) -> bytes | None:
        """End the pending code (idle timeout); None when nothing is pending."""
        if not self._buf:
            return None
        data = bytes(self._buf)
        self._buf.clear()
        return data

    @property
    def pending(self) -> bool:
        return bool(self._buf)


def decode_payload(data: bytes) -> str:
    """Scanner bytes as text; undecodable bytes stay visible as replacement characters."""
    return data.decode("utf-8", errors="replace")


class SerialSource(ThreadedSource):
    kind = "serial"

    def __init__(
        self,
        port: str,
        *,
        baudrate: int = 9600,
        idle_timeout_s: float = 0.0,
        name: str | None = None,
    ) -> None:
        super().__init__(name or f"serial:{port}")
        self.port = port
        self.baudrate = baudrate
        self.idle_timeout_s = idle_timeout_s

    def _loop(self, deliver: Callable[[str], None]) -> None:
        import serial  # here: validating a config never loads pyserial

        attempt = 0
        while not self._stop.is_set():
            try:
                port = serial.Serial(self.port, self.baudrate, timeout=0.05, exclusive=True)
            except (serial.SerialException, OSError, ValueError) as err:
                self._set(SourceState.DEGRADED, f"cannot open: {_reason(err)}")
                self._backoff(attempt)
                attempt += 1
                continue
            attempt = 0
            self._set(SourceState.READY)
            try:
                self._read(port, deliver)
            except (serial.SerialException, OSError) as err:
                self._set(SourceState.DEGRADED, f"disconnected: {_reason(err)}")
            finally:
                try:
                    port.close()
                except (serial.SerialException, OSError) as err:
                    _log.debug("closing %s: %s", self.port, err)

    def _read(self, port: serial.Serial, deliver: Callable[[str], None]) -> None:
        splitter = LineSplitter()
        last_byte = time.monotonic()
        while not self._stop.is_set():
            data = port.read(port.in_waiting or 1)
            now = time.monotonic()
            if data:
                last_byte = now
                for line in splitter.feed(data):
                    deliver(decode_payload(line))
            elif (
                self.idle_timeout_s > 0
                and splitter.pending
                and now - last_byte >= self.idle_timeout_s
            ):
                pending = splitter.flush()
                if pending:
                    deliver(decode_payload(pending))


def _reason(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text[:120]


def _build(config: SerialSourceConfig, headless: bool) -> Source:
    return SerialSource(
        config.port,
        baudrate=config.baudrate,
        idle_timeout_s=config.idle_timeout_s,
        name=config.name,
    )


async def _probe(config: SerialSourceConfig, name: str) -> list[Check]:
    """The port opens exclusively (as the kiosk opens it); nothing is written."""
    return [await serial_port(name, config.port, config.baudrate, "scanner")]


KIND = SourceKind(
    name="serial", config=SerialSourceConfig, build=_build, probe=_probe, opens="serial"
)
