"""What a relay kind declares: ``[relay]``'s shape, its board's channels, its builder, its probe.

Every board on a serial port takes the same ``[relay]`` table (:class:`RelayConfig`);
a kind says what the table means for it (:class:`RelayKind`). A board's module
declares its kind beside its driver (``KIND = RelayKind(name="lcus", channels=8,
build=...)``) and ``scanner/relay/__init__.py`` registers it with one line; the
config loader, :func:`scanner.relay.build_relay` and ``passqr-scanner doctor`` ask
the registry, never a list of their own.

Imported by :mod:`scanner.config`: standard library only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from scanner.schema import MAX_BAUD, any_bytes, within

if TYPE_CHECKING:
    from scanner.checks import Check
    from scanner.relay.base import Relay

LockType = Literal["fail-safe", "fail-secure"]

#: A relay command carries the channel in one byte: ``ascii``/``hex`` take any.
ANY_CHANNEL = 255


@dataclass(frozen=True, kw_only=True)
class RelayConfig:
    type: str = "none"
    """A registered relay kind: ``none``, ``lcus``, ``numato``, ``kmtronic``, ``hw667``,
    ``ascii``, ``hex``, ``gpio``."""
    port: str | None = None
    channel: int = within(1, 0, ANY_CHANNEL)
    """Each board narrows it (:attr:`RelayKind.channels`); ``ascii``/``hex`` take any byte."""
    pulse_ms: int = within(1000, 10, 60_000)
    baudrate: int = within(9600, 1, MAX_BAUD)
    open_delay_ms: int = within(0, 0, 10_000)
    """Wait after opening the port (Arduino-style boards reset when it opens: ~2000)."""
    lock: LockType = "fail-secure"
    """Without power a fail-safe lock (maglock) opens, a fail-secure one (strike) stays shut."""
    on_command: str | None = any_bytes(None)
    """``ascii``/``hex``: the ON command; ``{channel}`` is replaced by the channel."""
    off_command: str | None = any_bytes(None)
    pin: int | None = within(None, 0, 53)
    """``gpio``: the relay's line, as a BCM number (GPIO17 is header pin 11)."""
    active_low: bool = False
    """``gpio``: the relay closes when the line is low (most opto-isolated relay modules)."""


async def serial_board_probe(config: RelayConfig, click: Relay | None) -> list[Check]:
    """The doctor's check of a board on ``relay.port`` (every kind's default ``probe``).

    The port opens exclusively, nothing written; with ``click``, one short pulse.
    The work is in :mod:`scanner.relay.probe`, imported only when the doctor runs.
    """
    from scanner.relay.probe import probe_board

    return await probe_board(config, click)


@dataclass(frozen=True, kw_only=True)
class RelayKind:
    """One kind of relay, as the registry knows it.

    Attributes:
        name: the value of ``[relay] type``.
        build: the driver for a validated table; opens nothing (``Relay.start`` does).
        channels: the board's channels are 1 to this; None: any byte (``ascii``/``hex``,
            whose commands say what a channel is) or no board at all.
        needs_port: ``relay.port`` is required (every kind but ``none``).
        takes_commands: ``on_command``/``off_command`` are required, and only here.
        takes_pin: ``pin`` (and ``active_low``) mean something, and only here (``gpio``).
        check: rules of this kind beyond the shape; raises :class:`ConfigError` naming
            the key without its file (``"relay.on_command: ..."``).
        probe: the doctor's checks of the configured board, ``probe(table, click)``:
            :class:`~scanner.checks.Check` lines (``relay``), blocking I/O off the event
            loop (:mod:`scanner.probes`). ``click`` is the board's driver (built, not
            started) when ``--relay-click`` asks for one pulse, else None: nothing is
            switched. Default: :func:`serial_board_probe`.
    """

    name: str
    build: Callable[[RelayConfig], Relay]
    channels: int | None = None
    needs_port: bool = True
    takes_commands: bool = False
    takes_pin: bool = False
    check: Callable[[RelayConfig], None] | None = None
    probe: Callable[[RelayConfig, Relay | None], Awaitable[list[Check]]] = serial_board_probe

    @property
    def most_channels(self) -> int:
        """The highest channel number this kind can switch (0: no board)."""
        if self.channels is not None:
            return self.channels
        return ANY_CHANNEL if self.needs_port else 0


def serial_board(cls: Callable[..., Relay]) -> Callable[[RelayConfig], Relay]:
    """The builder of a board that needs nothing but ``[relay]``'s common keys."""

    def build(config: RelayConfig) -> Relay:
        assert config.port is not None  # checked when the config was loaded
        return cls(
            config.port,
            channel=config.channel,
            pulse_ms=config.pulse_ms,
            baudrate=config.baudrate,
            open_delay_ms=config.open_delay_ms,
        )

    return build
