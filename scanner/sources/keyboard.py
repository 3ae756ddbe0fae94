"""A HID wedge scanner typing into the kiosk: code + Enter.

In the UI, the app feeds keystrokes to :meth:`KeyboardSource.feed_key`. Headless,
the source reads lines from standard input (a wedge scanner on the console, or
a script piping codes in).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
from dataclasses import dataclass
from typing import Literal, TextIO

from scanner.checks import Check, Status
from scanner.models import RawScan
from scanner.payload import MAX_PAYLOAD_CHARS
from scanner.sources.base import Emit, Source, SourceState
from scanner.sources.kind import SourceKind

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class KeyboardSourceConfig:
    type: Literal["keyboard"]
    name: str | None = None


class KeyboardSource(Source):
    """Keystrokes from the UI (or lines from standard input) as scans.

    A wedge scanner types a whole code in one burst, a few milliseconds a key; a
    person is far slower. Keys left from someone touching the keyboard would spoil
    the next scan (``xyzPASS-...``), so a partial code is dropped once no key came
    for ``key_gap_s``: the next key starts a new code, and an Enter after such a
    pause sends nothing.
    """

    kind = "keyboard"

    KEY_GAP_S = 0.5
    """The default ``key_gap_s``: far above a scanner's gap between keys, below a pause."""

    def __init__(self, name: str = "keyboard", *, stdin: TextIO | None = None) -> None:
        super().__init__(name)
        self._stdin = stdin
        self._buffer: list[str] = []
        self._last_key = 0.0
        self._emit: Emit | None = None
        self.key_gap_s = self.KEY_GAP_S
        """A partial code older than this (seconds since its last key) is dropped."""
        self.dropped = 0
        """Partial codes dropped as stale."""

    def feed_key(
        self, character: str | None, *, enter: bool = False, at: float | None = None
    ) -> None:
        """One keystroke from the UI; Enter ends the code.

        Args:
            at: when the key was pressed (monotonic seconds; now if None).
        """
        now = time.monotonic() if at is None else at
        if self._buffer and now - self._last_key > self.key_gap_s:
            self.dropped += 1
            _log.info(
                "keyboard: dropped %d stray keys (no key for %.1f s)",
                len(self._buffer),
                now - self._last_key,
            )
            self._buffer.clear()
        self._last_key = now
        if enter:
            text = "".join(self._buffer)
            self._buffer.clear()
            if text:
                self._deliver(text)
            return
        if character and len(self._buffer) <= MAX_PAYLOAD_CHARS:
            self._buffer.append(character)

    def feed_line(self, text: str, *, manual: bool = False) -> None:
        """A whole code at once (staff entry)."""
        self._deliver(text, manual=manual)

    def _deliver(self, text: str, *, manual: bool = False) -> None:
        if self._emit is None:
            return
        self.count += 1
        self._emit(RawScan(source=self.name, text=text, at=time.monotonic(), manual=manual))

    async def run(self, emit: Emit) -> None:
        self._emit = emit
        self.state = SourceState.READY
        if self._stdin is None:
            await asyncio.Event().wait()
            return
        loop = asyncio.get_running_loop()
        stream = self._stdin
        ended = asyncio.Event()

        def reader() -> None:
            try:
                for line in stream:
                    loop.call_soon_threadsafe(self._deliver, line.rstrip("\r\n"))
            except (OSError, ValueError) as err:
                _log.warning("keyboard input failed: %s", err)
            loop.call_soon_threadsafe(ended.set)

        # A daemon thread: a blocked read of stdin must not hold up the exit.
        threading.Thread(target=reader, name="keyboard-stdin", daemon=True).start()
        await ended.wait()
        self.state = SourceState.STOPPED
        self.detail = "end of input"


def stdin_if_piped() -> TextIO | None:
    """Standard input when it is not the terminal the UI draws on."""
    return sys.stdin if sys.stdin is not None and not sys.stdin.isatty() else None


def _build(config: KeyboardSourceConfig, headless: bool) -> Source:
    return KeyboardSource(config.name or "keyboard", stdin=stdin_if_piped() if headless else None)


#: One keyboard: the UI has one set of keys to feed, headless one standard input.
async def _probe(config: KeyboardSourceConfig, name: str) -> list[Check]:
    detail = "n/a: a keyboard-wedge scanner types into the kiosk's terminal"
    return [Check(name=name, status=Status.SKIP, detail=detail)]


KIND = SourceKind(
    name="keyboard", config=KeyboardSourceConfig, build=_build, probe=_probe, single=True
)
