"""Relay drivers: one interface, one module per board, built from ``[relay]``."""

from __future__ import annotations

import dataclasses

from scanner.config import RelayConfig
from scanner.errors import ConfigError
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
        ConfigError: an ``ascii``/``hex`` command that cannot be rendered; gpiozero missing.
    """
    if config.type == "none":
        return NoRelay(pulse_ms=config.pulse_ms)
    if config.type == "gpio":  # issue 16; gpiozero is imported only for this type
        from scanner.relay.gpio import GpioRelay

        assert config.pin is not None  # checked when the config was loaded
        return GpioRelay(config.pin, active_low=config.active_low, pulse_ms=config.pulse_ms)
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


#: Boards with more than one channel, whose other channels can drive a buzzer.
MULTI_CHANNEL = ("lcus", "numato", "kmtronic", "ascii", "hex")


def build_channel_twin(config: RelayConfig, door: Relay, channel: int) -> Relay:
    """Another channel of the door relay's board (a buzzer or an LED tower).

    It shares the door relay's port: started after it, closed before it.

    Raises:
        ConfigError: the door relay's board has a single channel, or is none.
    """
    if config.type not in MULTI_CHANNEL or not isinstance(door, SerialRelay):
        raise ConfigError(
            f"sound.channel: relay type {config.type!r} has no second channel for a buzzer"
        )
    if channel == config.channel:
        raise ConfigError("sound.channel: the door's own channel cannot be the buzzer")
    twin = build_relay(dataclasses.replace(config, channel=channel))
    assert isinstance(twin, SerialRelay)
    twin.share_port_of(door)
    return twin


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
    "build_channel_twin",
    "SerialRelay",
    "build_relay",
]
