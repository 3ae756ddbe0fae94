"""``ascii`` and ``hex`` relays: any board whose ON and OFF commands are fixed strings.

``{channel}`` in a command is replaced by the configured channel. ASCII
commands take TOML escapes (``"relay on {channel}\\r"``); hex commands are
bytes written as hex digits (``"A0 {channel:02X} 01 A2"``).
"""

from __future__ import annotations

from scanner.errors import ConfigError
from scanner.relay.kind import RelayConfig, RelayKind
from scanner.relay.serial_board import SerialRelay


def render(template: str, channel: int, *, hex_bytes: bool) -> bytes:
    """A command with its channel filled in.

    Raises:
        ConfigError: an unknown placeholder, or (hex) text that is not hex bytes.
    """
    try:
        text = template.format(channel=channel)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as err:
        raise ConfigError(f"relay command {template!r}: {err}") from err
    if not hex_bytes:
        return text.encode("utf-8")
    try:
        data = bytes.fromhex(text)
    except ValueError as err:
        raise ConfigError(f"relay command {template!r} is not hex bytes ({text!r})") from err
    if not data:
        raise ConfigError(f"relay command {template!r} is empty")
    return data


class CommandRelay(SerialRelay):
    """Fixed ON/OFF commands; nothing read back."""

    kind = "ascii"

    def __init__(
        self,
        port: str,
        *,
        on_command: str,
        off_command: str,
        hex_bytes: bool,
        channel: int = 1,
        pulse_ms: int = 1000,
        baudrate: int = 9600,
        open_delay_ms: int = 0,
    ) -> None:
        super().__init__(
            port, channel=channel, pulse_ms=pulse_ms, baudrate=baudrate, open_delay_ms=open_delay_ms
        )
        self.kind = "hex" if hex_bytes else "ascii"
        self._on = render(on_command, channel, hex_bytes=hex_bytes)
        self._off = render(off_command, channel, hex_bytes=hex_bytes)

    def frame(self, on: bool) -> bytes:
        return self._on if on else self._off


def _check(config: RelayConfig) -> None:
    for key in ("on_command", "off_command"):
        command = getattr(config, key)
        if not command:
            raise ConfigError(f"relay.{key}: required for relay type {config.type!r}")
        try:
            render(command, config.channel, hex_bytes=config.type == "hex")
        except ConfigError as err:
            raise ConfigError(f"relay.{key}: {err}") from err


def _build(config: RelayConfig) -> CommandRelay:
    assert config.port is not None  # checked when the config was loaded
    assert config.on_command is not None
    assert config.off_command is not None
    return CommandRelay(
        config.port,
        on_command=config.on_command,
        off_command=config.off_command,
        hex_bytes=config.type == "hex",
        channel=config.channel,
        pulse_ms=config.pulse_ms,
        baudrate=config.baudrate,
        open_delay_ms=config.open_delay_ms,
    )


ASCII = RelayKind(name="ascii", build=_build, takes_commands=True, check=_check)
HEX = RelayKind(name="hex", build=_build, takes_commands=True, check=_check)
