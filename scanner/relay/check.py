"""``relay off`` and ``relay test``: the relay on its own, for installers and ``ExecStopPost=``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from scanner.relay import Relay, RelayConfig, RelayState, SerialRelay, build_relay
from scanner.relay.gpio import GpioRelay
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


def _transcript(relay: Relay) -> list[str]:
    if isinstance(relay, GpioRelay):
        return relay.transcript_lines()
    if not isinstance(relay, SerialRelay):
        return ["(no board: relay type none)"]
    lines = []
    for direction, data in relay.transcript:
        printable = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in data)
        arrow = "sent    " if direction == "tx" else "received"
        lines.append(f"{arrow} {data.hex(' ').upper():<24} {printable}")
    return lines or ["nothing was sent"]


def relay_off(config: RelayConfig, say: Callable[[str], None]) -> int:
    """Send OFF synchronously; 0 when the board took it."""
    relay = build_relay(config)
    relay.off_now()
    ok = relay.state is RelayState.OFF
    for line in _transcript(relay):
        say(line)
    relay._release()
    say(f"relay {relay.description}: {'OFF' if ok else 'FAILED to switch OFF'}")
    return 0 if ok else 1


async def relay_test(
    config: RelayConfig, say: Callable[[str], None], pulse_ms: int | None = None
) -> int:
    """One pulse: OFF, ON for ``pulse_ms``, OFF; says what went over the wire.

    SIGTERM or SIGINT during the pulse ends it with the contact OFF.
    """
    relay = build_relay(config)
    length = pulse_ms if pulse_ms is not None else config.pulse_ms
    say(f"relay: {relay.description}, pulse {length} ms")
    say(f"lock: {LOCK_TEXT[config.lock]}")
    with stop_on_signals() as stop:
        return await _pulse_once(relay, length, stop, say)


async def _pulse_once(
    relay: Relay, length: int, stop: asyncio.Event, say: Callable[[str], None]
) -> int:
    try:
        await relay.start()
        if relay.state is RelayState.FAULT:
            say(f"FAILED to open or switch OFF: {relay.fault}")
            fix = relay.hint(relay.fault) if isinstance(relay, GpioRelay) else None
            say(f"fix: {fix or port_hint(relay.fault)}")
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
    for line in _transcript(relay):
        say(line)
    ok = relay.state is RelayState.OFF
    say("OFF" if ok else f"FAILED to switch OFF: {relay.fault}")
    return 0 if ok else 1
