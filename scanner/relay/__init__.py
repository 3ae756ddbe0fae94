"""Relay drivers: one interface, one module per board, built from ``[relay]``."""

from __future__ import annotations

from scanner.config import RelayConfig
from scanner.relay.base import Relay, RelayState
from scanner.relay.lcus import LcusRelay
from scanner.relay.none import NoRelay


def build_relay(config: RelayConfig) -> Relay:
    """The driver for ``[relay] type``; nothing is opened until :meth:`Relay.start`."""
    if config.type == "lcus":
        assert config.port is not None  # checked when the config was loaded
        return LcusRelay(
            config.port, channel=config.channel, pulse_ms=config.pulse_ms, baudrate=config.baudrate
        )
    return NoRelay(pulse_ms=config.pulse_ms)


__all__ = ["LcusRelay", "NoRelay", "Relay", "RelayState", "build_relay"]
