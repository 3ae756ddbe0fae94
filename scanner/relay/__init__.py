"""Relay drivers: one interface, one module per board, built from ``[relay]``.

A board's module declares its kind (:class:`RelayKind`: channels, builder, rules,
doctor probe) beside its driver; :data:`RELAY_KINDS` below makes it known, one line per kind.
Light on import: pyserial loads when a port is first opened, gpiozero when a ``gpio``
relay is built.
"""

from __future__ import annotations

import dataclasses

from scanner.errors import ConfigError
from scanner.registry import Registry
from scanner.relay import commands, gpio, hw667, kmtronic, lcus, none, numato
from scanner.relay.base import LockKind, Relay, RelayState
from scanner.relay.commands import CommandRelay
from scanner.relay.gpio import GpioRelay
from scanner.relay.hw667 import Hw667Relay
from scanner.relay.kind import RelayConfig, RelayKind
from scanner.relay.kmtronic import KmtronicRelay
from scanner.relay.lcus import LcusRelay
from scanner.relay.none import NoRelay
from scanner.relay.numato import NumatoRelay
from scanner.relay.serial_board import SerialRelay

#: Every relay kind, by ``[relay] type``: a new board is one module and one line here.
RELAY_KINDS: Registry[RelayKind] = Registry("relay type")
RELAY_KINDS.register(none.KIND)
RELAY_KINDS.register(lcus.KIND)
RELAY_KINDS.register(numato.KIND)
RELAY_KINDS.register(kmtronic.KIND)
RELAY_KINDS.register(hw667.KIND)
RELAY_KINDS.register(commands.ASCII)
RELAY_KINDS.register(commands.HEX)
RELAY_KINDS.register(gpio.KIND)


def build_relay(config: RelayConfig) -> Relay:
    """The driver for ``[relay] type``; nothing is opened until :meth:`Relay.start`.

    Raises:
        ConfigError: an unknown type, or an ``ascii``/``hex`` command that cannot be rendered.
    """
    return RELAY_KINDS.lookup(config.type, "relay.type").build(config)


def build_channel_twin(config: RelayConfig, door: Relay, channel: int) -> Relay:
    """Another channel of the door relay's board (a buzzer or an LED tower).

    It shares the door relay's port: started after it, closed before it.

    Raises:
        ConfigError: the door relay's board has a single channel, or is none.
    """
    kind = RELAY_KINDS.lookup(config.type, "relay.type")
    if kind.most_channels < 2 or not isinstance(door, SerialRelay):
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
    "RELAY_KINDS",
    "CommandRelay",
    "GpioRelay",
    "Hw667Relay",
    "KmtronicRelay",
    "LcusRelay",
    "LockKind",
    "NoRelay",
    "NumatoRelay",
    "Relay",
    "RelayConfig",
    "RelayKind",
    "RelayState",
    "SerialRelay",
    "build_channel_twin",
    "build_relay",
]
