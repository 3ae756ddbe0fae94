"""``relay off`` and ``relay test``: the relay on its own, for installers and ``ExecStopPost=``.

The driver is built from ``[relay]`` here; the pulse itself is :mod:`scanner.relay.pulse`.
"""

from __future__ import annotations

from collections.abc import Callable

from scanner.relay import RelayConfig, RelayState, build_relay
from scanner.relay.pulse import pulse_test, transcript

__all__ = ["relay_off", "relay_test"]


def relay_off(config: RelayConfig, say: Callable[[str], None]) -> int:
    """Send OFF synchronously; 0 when the board took it."""
    relay = build_relay(config)
    relay.off_now()
    ok = relay.state is RelayState.OFF
    for line in transcript(relay):
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
    return await pulse_test(relay, config.lock, say, length)
