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
    """What the board did: (monotonic time, channel, on) per valid frame, plus junk."""

    events: list[tuple[float, int, bool]] = field(default_factory=list)
    raw: bytearray = field(default_factory=bytearray)
    bad_frames: int = 0


class LcusSim(PtyDevice):
    """An LCUS relay board: parses ``A0 ch op sum`` frames and records the contact state."""

    def __init__(self, link: Path, channels: int = 8) -> None:
        self.log = RelayLog()
        self.state = dict.fromkeys(range(1, channels + 1), False)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        super().__init__(link)
        self._thread = threading.Thread(target=self._run, name="lcus-sim", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buf = bytearray()
        while not self._stop.is_set():
            fd = self.master
            if fd < 0:
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(fd, 256)
            except OSError:
                time.sleep(0.01)
                continue
            now = time.monotonic()
            with self._cond:
                self.log.raw.extend(data)
                buf.extend(data)
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
                    self.state[ch] = bool(op)
                    self.log.events.append((now, ch, bool(op)))
                self._cond.notify_all()

    def wait_for(self, predicate: Callable[[LcusSim], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    async def until(self, predicate: Callable[[LcusSim], bool], within_s: float = 5.0) -> bool:
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
