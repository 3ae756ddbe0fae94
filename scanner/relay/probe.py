"""The doctor's probe of a relay board on a serial port: the default ``probe`` of a kind.

Without ``--relay-click`` the port is opened exclusively and closed, nothing written;
with it, the board is pulsed once for :data:`CLICK_MS` and, when that fails, the
port's own check says why. Imported by :class:`~scanner.relay.kind.RelayKind`'s
default probe when the doctor runs, never when a config is validated.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from scanner.checks import Check, Status
from scanner.probes import serial_port
from scanner.relay.pulse import pulse_test

if TYPE_CHECKING:
    from scanner.relay.base import Relay
    from scanner.relay.kind import RelayConfig

__all__ = ["CLICK_MS", "probe_board"]

#: ``--relay-click``: long enough to hear the relay, short enough not to hold a door open.
CLICK_MS = 200
WHAT = "relay board"


async def probe_board(config: RelayConfig, click: Relay | None) -> list[Check]:
    """The ``relay`` line: the port opens, or (``click``: the board's driver) one pulse."""
    assert config.port is not None  # checked by load_config
    if click is not None:
        return [await _click(config, click)]
    check = await serial_port("relay", config.port, config.baudrate, WHAT)
    if check.status is Status.OK:
        reset = " (this board resets when opened)" if config.open_delay_ms else ""
        check = dataclasses.replace(
            check,
            detail=f"{config.type} ch{config.channel}, {config.lock}: {check.detail}{reset}; "
            "nothing switched (--relay-click pulses it once)",
        )
    return [check]


async def _click(config: RelayConfig, relay: Relay) -> Check:
    """Pulse the relay once (``CLICK_MS``); on failure, say why the port would not do."""
    assert config.port is not None
    lines: list[str] = []
    status = await pulse_test(relay, config.lock, lines.append, CLICK_MS)
    transcript = "; ".join(" ".join(line.split()) for line in lines)
    if status == 0:
        return Check(name="relay", status=Status.OK, detail=f"clicked: {transcript}")
    check = await serial_port("relay", config.port, config.baudrate, WHAT)
    return Check(
        name="relay",
        status=Status.FAIL,
        detail=f"click failed: {transcript}",
        fix=check.fix or "check relay.type and relay.channel against the board",
    )
