"""Relay drivers: one interface, one module per board, built from ``[relay]``."""

from __future__ import annotations

from scanner.config import RelayConfig
from scanner.relay.base import LockKind, Relay, RelayState
from scanner.relay.commands import CommandRelay
from scanner.relay.hw667 import Hw667Relay
from scanner.relay.kmtronic import KmtronicRelay
from scanner.relay.lcus import LcusRelay
from scanner.relay.none import NoRelay
from scanner.relay.numato import NumatoRelay
from scanner.relay.serial_board import SerialRelay

_BOARDS: dict[str, type[SerialRelay]] = {
    "lcus": LcusRelay,
    "numato": NumatoRelay,
    "kmtronic": KmtronicRelay,
    "hw667": Hw667Relay,
}


def build_relay(config: RelayConfig) -> Relay:
    """The driver for ``[relay] type``; nothing is opened until :meth:`Relay.start`.

    Raises:
        ConfigError: an ``ascii``/``hex`` command that cannot be rendered.
    """
    if config.type == "none":
        return NoRelay(pulse_ms=config.pulse_ms)
    assert config.port is not None  # checked when the config was loaded
    common = {
        "channel": config.channel,
        "pulse_ms": config.pulse_ms,
        "baudrate": config.baudrate,
        "open_delay_ms": config.open_delay_ms,
    }
    if config.type in ("ascii", "hex"):
        assert config.on_command is not None
        assert config.off_command is not None
        return CommandRelay(
            config.port,
            on_command=config.on_command,
            off_command=config.off_command,
            hex_bytes=config.type == "hex",
            **common,
        )
    return _BOARDS[config.type](config.port, **common)


__all__ = [
    "CommandRelay",
    "Hw667Relay",
    "KmtronicRelay",
    "LcusRelay",
    "LockKind",
    "NoRelay",
    "NumatoRelay",
    "Relay",
    "RelayState",
    "SerialRelay",
    "build_relay",
]
