"""Sound at the gate: a distinct signal for accepted, rejected and "staff, look".

Stewards at a busy door listen more than they look (pretixSCAN beeps for the
same reason). Three cues, each a fixed pattern of (on, off) milliseconds, so a
buzzer, a sound card and the terminal bell all say the same thing:

- ``accept``: one short beep;
- ``reject``: two long beeps;
- ``attention``: three quick beeps, for what a steward must act on: an admission
  whose door did not open, "possibly admitted", a scanner out of service.

Sinks, chosen with ``[sound] type``: ``relay`` (a buzzer or LED tower on another
channel of the door relay's board), ``alsa`` (a tone played with ``aplay``),
``bell`` (the terminal bell: the last resort, the UI only) and ``none`` (the
default: unattended sites that want silence). A sink never blocks or fails the
gate: a cue still playing when the next arrives is cut short, errors are logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import io
import logging
import math
import struct
import wave
from collections.abc import Callable, Sequence
from typing import Protocol

from scanner.models import Decision, Reason
from scanner.relay import Relay

_log = logging.getLogger(__name__)


class Cue(enum.StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    ATTENTION = "attention"


#: (on ms, off ms) per beep.
PATTERNS: dict[Cue, tuple[tuple[int, int], ...]] = {
    Cue.ACCEPT: ((150, 0),),
    Cue.REJECT: ((400, 150), (400, 0)),
    Cue.ATTENTION: ((100, 100), (100, 100), (100, 0)),
}

#: Tone pitch per cue for a sound card (Hz): high for yes, low for no.
PITCH: dict[Cue, float] = {Cue.ACCEPT: 1760.0, Cue.REJECT: 440.0, Cue.ATTENTION: 1175.0}

#: Messages that mean a steward must step in even though the verdict is a rejection.
_ATTENTION_MESSAGES = ("Possibly admitted on the first try", "Scanner out of service")


def cue_for(decision: Decision) -> Cue:
    """The cue a decision sounds."""
    if decision.accepted:
        return Cue.ATTENTION if decision.relay_fault else Cue.ACCEPT
    if decision.message in _ATTENTION_MESSAGES or (
        decision.reason is Reason.ERROR and "journal" in decision.detail
    ):
        return Cue.ATTENTION
    return Cue.REJECT


class Sink(Protocol):
    """Something that sounds a cue; ``play`` returns when the pattern is over."""

    name: str

    async def start(self) -> None: ...

    async def play(self, cue: Cue) -> None: ...

    async def close(self) -> None: ...


class BellSink:
    """The terminal bell, once per beep (``ring`` is the UI's ``App.bell``)."""

    name = "bell"

    def __init__(self, ring: Callable[[], None]) -> None:
        self._ring = ring

    async def start(self) -> None:
        return None

    async def play(self, cue: Cue) -> None:
        for on_ms, off_ms in PATTERNS[cue]:
            self._ring()
            await asyncio.sleep((on_ms + off_ms) / 1000)

    async def close(self) -> None:
        return None


def tone_wav(cue: Cue, *, rate: int = 16000, volume: float = 0.5) -> bytes:
    """The cue's pattern as a mono 16-bit WAV (sine at :data:`PITCH`, 5 ms ramps)."""
    frames = bytearray()
    pitch = PITCH[cue]
    ramp = max(int(rate * 0.005), 1)
    for on_ms, off_ms in PATTERNS[cue]:
        n = rate * on_ms // 1000
        for i in range(n):
            envelope = min(1.0, i / ramp, (n - 1 - i) / ramp)
            sample = volume * envelope * math.sin(2 * math.pi * pitch * i / rate)
            frames += struct.pack("<h", int(sample * 32767))
        frames += b"\x00\x00" * (rate * off_ms // 1000)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return out.getvalue()


class AlsaSink:
    """A tone through the sound card: ``aplay -q -D DEVICE -`` fed a WAV on stdin.

    Args:
        device: the ALSA device (``default``, ``plughw:1,0``...).
        command: the player; tests pass their own recorder.
    """

    name = "alsa"

    def __init__(self, device: str = "default", *, command: Sequence[str] | None = None) -> None:
        self.command = list(command) if command else ["aplay", "-q", "-D", device, "-"]
        self._wavs = {cue: tone_wav(cue) for cue in Cue}
        self.fault = ""

    async def start(self) -> None:
        return None

    async def play(self, cue: Cue) -> None:
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as err:
            self._failed(f"cannot run {self.command[0]}: {err}")
            return
        try:
            _, err_text = await proc.communicate(self._wavs[cue])
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise
        if proc.returncode:
            why = err_text.decode(errors="replace").strip()[:200]
            self._failed(f"{self.command[0]} exited {proc.returncode}: {why}")
        else:
            self.fault = ""

    def _failed(self, why: str) -> None:
        if why != self.fault:
            _log.warning("sound: %s", why)
        self.fault = why

    async def close(self) -> None:
        return None


class RelaySink:
    """A buzzer (or LED tower) on a relay contact: one pulse per beep."""

    name = "relay"

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def start(self) -> None:
        """OFF at start, like the door's own contact."""
        await self.relay.start()

    async def play(self, cue: Cue) -> None:
        for on_ms, off_ms in PATTERNS[cue]:
            await self.relay.pulse(on_ms)
            await asyncio.sleep((on_ms + off_ms) / 1000)

    async def close(self) -> None:
        await self.relay.close()


class Sounder:
    """Plays the cue of every decision on a sink, in the background.

    Args:
        sink: where the sound goes.
        cues: which cues sound (the others stay silent).
    """

    def __init__(self, sink: Sink, cues: Sequence[Cue] = tuple(Cue)) -> None:
        self.sink = sink
        self.cues = frozenset(cues)
        self.played: list[Cue] = []
        self._task: asyncio.Task[None] | None = None

    def observe(self, decision: Decision) -> None:
        """Pass this to ``Gate.subscribe``: the newest decision's cue wins."""
        cue = cue_for(decision)
        if cue not in self.cues:
            return
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = asyncio.create_task(self._play(cue), name=f"sound-{cue}")

    async def _play(self, cue: Cue) -> None:
        try:
            await self.sink.play(cue)
            self.played.append(cue)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a sound fault must never touch the gate
            _log.exception("sound: playing %s failed", cue)

    async def start(self) -> None:
        await self.sink.start()

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sink.close()
