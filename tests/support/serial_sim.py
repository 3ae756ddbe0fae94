"""Devices on the far side of a pseudo-terminal pair.

The code under test opens the pty's slave path with pyserial exactly as it
would open ``/dev/ttyUSB0``; these simulators sit on the master side. A stable
symlink (like ``/dev/serial/by-id/...``) lets a test unplug a device (close
the pty) and plug it back (a new pty behind the same name).
"""

from __future__ import annotations

import asyncio
import os
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


class PtyDevice:
    """A pty pair whose slave is reachable through ``link`` (a stable name)."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        # Held while a reader thread uses ``master``: a closed descriptor number can be
        # reused at once by another file (a socket...), which must never be read.
        self.fd_lock = threading.Lock()
        self.plug()

    def plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)  # no echo, no CR->LF: bytes pass untouched
        tmp = self.link.with_suffix(".new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.ttyname(self.slave))
        tmp.replace(self.link)

    def unplug(self) -> None:
        """The cable is pulled: the name disappears and the port reports EOF/EIO."""
        self.link.unlink(missing_ok=True)
        with self.fd_lock:
            fds = (self.slave, self.master)
            self.master = self.slave = -1
            for fd in fds:
                if fd >= 0:
                    os.close(fd)

    def close(self) -> None:
        self.unplug()


class ScannerSim(PtyDevice):
    """A serial barcode scanner: writes codes with a chosen terminator."""

    def scan(
        self,
        code: str | bytes,
        terminator: bytes = b"\r\n",
        *,
        split: int = 0,
        pause_s: float = 0.0,
    ) -> None:
        data = (code.encode() if isinstance(code, str) else code) + terminator
        if split <= 0:
            os.write(self.master, data)
            return
        for i in range(0, len(data), split):
            os.write(self.master, data[i : i + split])
            if pause_s:
                time.sleep(pause_s)


@dataclass
class RelayLog:
    """What the board did: (monotonic time, channel, on) per valid command, plus junk."""

    events: list[tuple[float, int, bool]] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    bad_frames: int = 0


Parsed = tuple[list[tuple[int, bool]], bytes]
"""Switches a protocol parsed out of the buffer, and the bytes the board answers."""


class BoardSim(PtyDevice):
    """A relay board: a protocol parser on the far side of a pty, recording the contacts."""

    def __init__(self, link: Path, channels: int = 8) -> None:
        self.log = RelayLog()
        self.state = dict.fromkeys(range(1, channels + 1), False)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._buf = bytearray()
        super().__init__(link)
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)
        self._thread.start()

    def parse(self, buf: bytearray) -> Parsed:
        """Consume complete commands from ``buf``; count junk in ``self.log.bad_frames``."""
        raise NotImplementedError

    def _record(self, switches: list[tuple[int, bool]], now: float) -> None:
        for ch, on in switches:
            self.state[ch] = on
            self.log.events.append((now, ch, on))
        self._cond.notify_all()

    def switch_by_board(self, channel: int, on: bool) -> None:
        """The board changes a contact by itself (a board-timed pulse ending)."""
        with self._cond:
            self._record([(channel, on)], time.monotonic())

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.fd_lock:
                fd = self.master
                data = b""
                if fd >= 0:
                    try:
                        ready, _, _ = select.select([fd], [], [], 0.05)
                        data = os.read(fd, 256) if ready else b""
                    except OSError:
                        data = b""
            if fd < 0 or not data:
                time.sleep(0.005)
                continue
            now = time.monotonic()
            with self._cond:
                self.log.raw.extend(data)
                self._buf.extend(data)
                switches, reply = self.parse(self._buf)
                self._record(switches, now)
            if reply:
                with self.fd_lock:
                    if self.master == fd:
                        try:
                            os.write(fd, reply)
                        except OSError:
                            pass

    def wait_for(self, predicate: Callable[[BoardSim], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    async def until(self, predicate: Callable[[BoardSim], bool], within_s: float = 5.0) -> bool:
        """:meth:`wait_for` without blocking the event loop the code under test runs on."""
        return await asyncio.to_thread(self.wait_for, predicate, within_s)

    def on_events(self, channel: int = 1) -> list[float]:
        return [t for t, ch, on in self.log.events if ch == channel and on]

    def pulses(self, channel: int = 1) -> list[tuple[float, float]]:
        """(on time, off time) for each completed ON period of a channel."""
        out: list[tuple[float, float]] = []
        start: float | None = None
        for t, ch, on in self.log.events:
            if ch != channel:
                continue
            if on and start is None:
                start = t
            elif not on and start is not None:
                out.append((start, t))
                start = None
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        super().close()


class LcusSim(BoardSim):
    """LCUS: ``A0 ch op (A0+ch+op)&0xFF``; says nothing back."""

    def parse(self, buf: bytearray) -> Parsed:
        out: list[tuple[int, bool]] = []
        while len(buf) >= 4:
            if buf[0] != 0xA0:
                buf.pop(0)
                self.log.bad_frames += 1
                continue
            _, ch, op, chk = buf[:4]
            del buf[:4]
            if chk != (0xA0 + ch + op) & 0xFF or op not in (0, 1) or ch not in self.state:
                self.log.bad_frames += 1
                continue
            out.append((ch, bool(op)))
        return out, b""


class NumatoSim(BoardSim):
    """Numato: ASCII lines ending in CR, echoed; ``relay read N`` answers on/off and a prompt."""

    def __init__(self, link: Path, channels: int = 8, *, lie: bool = False) -> None:
        self.lie = lie  # a faulty board that reports the opposite state
        super().__init__(link, channels)

    def parse(self, buf: bytearray) -> Parsed:
        out: list[tuple[int, bool]] = []
        reply = bytearray()
        while b"\r" in buf:
            line, _, rest = bytes(buf).partition(b"\r")
            buf[:] = rest
            words = line.decode("ascii", errors="replace").split()
            reply += line + b"\n\r"
            if len(words) == 3 and words[0] == "relay":
                ch = "0123456789ABCDEFGHIJKLMNOPQRSTUV".find(words[2].upper()) + 1
                if ch in self.state and words[1] in ("on", "off"):
                    out.append((ch, words[1] == "on"))
                    reply += b">"
                    continue
                if ch in self.state and words[1] == "read":
                    on = self.state[ch]
                    for c, o in out:
                        if c == ch:
                            on = o
                    reply += b"on" if on != self.lie else b"off"
                    reply += b"\n\r>"
                    continue
            self.log.bad_frames += 1
            reply += b">"
        return out, bytes(reply)


class KmtronicSim(BoardSim):
    """KMTronic: ``FF ch 01``/``FF ch 00``; ``FF ch 03`` answers ``FF ch state``."""

    def parse(self, buf: bytearray) -> Parsed:
        out: list[tuple[int, bool]] = []
        reply = bytearray()
        while len(buf) >= 3:
            if buf[0] != 0xFF:
                buf.pop(0)
                self.log.bad_frames += 1
                continue
            _, ch, op = buf[:3]
            del buf[:3]
            if ch not in self.state or op not in (0, 1, 3):
                self.log.bad_frames += 1
                continue
            if op == 3:
                on = self.state[ch]
                for c, o in out:
                    if c == ch:
                        on = o
                reply += bytes((0xFF, ch, int(on)))
            else:
                out.append((ch, bool(op)))
        return out, bytes(reply)


class Hw667Sim(BoardSim):
    """HW-667: ``AA`` ON, ``BB`` OFF, ``CC`` ON for 1 s timed by the board itself."""

    def __init__(self, link: Path) -> None:
        self._timer: threading.Timer | None = None
        super().__init__(link, channels=1)

    def parse(self, buf: bytearray) -> Parsed:
        out: list[tuple[int, bool]] = []
        for byte in bytes(buf):
            if byte == 0xAA:
                out.append((1, True))
            elif byte == 0xBB:
                out.append((1, False))
            elif byte == 0xCC:
                out.append((1, True))
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = threading.Timer(1.0, self.switch_by_board, (1, False))
                self._timer.daemon = True
                self._timer.start()
            else:
                self.log.bad_frames += 1
        buf.clear()
        return out, b""

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        super().close()


class CommandSim(BoardSim):
    """A board with fixed ON/OFF byte strings (the ``ascii`` and ``hex`` drivers)."""

    def __init__(self, link: Path, on: bytes, off: bytes) -> None:
        self.on_bytes, self.off_bytes = on, off
        super().__init__(link, channels=1)

    def parse(self, buf: bytearray) -> Parsed:
        out: list[tuple[int, bool]] = []
        while buf:
            if buf.startswith(self.on_bytes):
                out.append((1, True))
                del buf[: len(self.on_bytes)]
            elif buf.startswith(self.off_bytes):
                out.append((1, False))
                del buf[: len(self.off_bytes)]
            elif self.on_bytes.startswith(bytes(buf)) or self.off_bytes.startswith(bytes(buf)):
                break  # a command still arriving
            else:
                buf.pop(0)
                self.log.bad_frames += 1
        return out, b""
