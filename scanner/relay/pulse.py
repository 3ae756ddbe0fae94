"""One pulse of a built relay, told line by line: ``relay test`` and the doctor's click.

OFF, ON for the pulse, OFF, with what went over the wire and how to fix a port that
would not open. It takes a driver already built, so a kind's doctor probe
(:mod:`scanner.relay.probe`) uses it without the registry; :mod:`scanner.relay.check`
builds the driver from ``[relay]`` for the command line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from scanner.relay.base import Relay, RelayState
from scanner.relay.serial_board import SerialRelay
from scanner.signals import stop_on_signals

LOCK_TEXT = {
    "fail-safe": "fail-safe: the door unlocks when power is lost (maglock)",
    "fail-secure": "fail-secure: the door stays locked when power is lost (strike)",
}


def port_hint(fault: str) -> str:
    """What an installer does about a relay port that would not open."""
    text = fault.lower()
    if "no such file" in text or "errno 2]" in text:
        return (
            "relay.port does not exist: check the cable and the name "
            "(ls -l /dev/serial/by-id/ /dev/passqr-relay)"
        )
    if "permission denied" in text or "errno 13]" in text:
        return "no access to relay.port: add the service user to the dialout group"
    if "busy" in text or "resource temporarily unavailable" in text or "errno 16]" in text:
        return "another program holds relay.port (a running kiosk? ModemManager?)"
    return "check relay.type, relay.port and relay.baudrate against the board"


def transcript(relay: Relay) -> list[str]:
    """What went over the wire, one line per frame, hex and printable (a GPIO line: what
    was done to it, and what it reads back)."""
    own = relay.transcript_lines()
    if own is not None:
        return own
    if not isinstance(relay, SerialRelay):
        return ["(no board: relay type none)"]
    lines = []
    for direction, data in relay.transcript:
        printable = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)
        arrow = "sent    " if direction == "tx" else "received"
        lines.append(f"{arrow} {data.hex(' ').upper():<24} {printable}")
    return lines or ["nothing was sent"]


async def pulse_test(relay: Relay, lock: str, say: Callable[[str], None], length: int) -> int:
    """One pulse of ``length`` ms: OFF, ON, OFF; says what went over the wire; 0 when it worked.

    ``lock`` is ``relay.lock``, said in words. SIGTERM or SIGINT during the pulse ends it
    with the contact OFF.
    """
    say(f"relay: {relay.description}, pulse {length} ms")
    say(f"lock: {LOCK_TEXT[lock]}")
    with stop_on_signals() as stop:
        return await _pulse_once(relay, length, stop, say)


async def _pulse_once(
    relay: Relay, length: int, stop: asyncio.Event, say: Callable[[str], None]
) -> int:
    try:
        await relay.start()
        if relay.state is RelayState.FAULT:
            say(f"FAILED to open or switch OFF: {relay.fault}")
            say(f"fix: {relay.hint(relay.fault) or port_hint(relay.fault)}")
            return 1
        if not await relay.pulse(length):
            say(f"FAILED to switch ON: {relay.fault}")
            return 1
        say("ON")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(length / 1000 + 0.2):
                await stop.wait()
        if stop.is_set():
            say("interrupted: switching OFF")
    finally:
        await relay.close()
    for line in transcript(relay):
        say(line)
    ok = relay.state is RelayState.OFF
    say("OFF" if ok else f"FAILED to switch OFF: {relay.fault}")
    return 0 if ok else 1
