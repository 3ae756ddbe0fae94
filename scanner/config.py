"""The scanner's TOML configuration, validated into frozen values.

Every table is a dataclass; loading walks its fields, so the dataclasses *are* the
schema: unknown keys are refused with a "did you mean", wrong types name the file
and the key, and missing required keys say which. A number's range lives on its
field (:func:`scanner.schema.within`); NaN and infinity are never a number here, and no string but
a relay command may hold a NUL (the OS cannot open such a path). Every problem is one
:class:`ConfigError` line, so ``run`` ends with exit 78 and systemd does not loop.

A device's table belongs to its kind: ``[relay]`` is :class:`scanner.relay.kind.RelayConfig`
and its ``type`` one of :data:`scanner.relay.RELAY_KINDS`; each ``[[sources]]`` table
is the dataclass of the kind :data:`scanner.sources.SOURCE_KINDS` names. The kinds'
own rules (a board's channels, ``ascii`` commands, a synthetic camera's options) are
theirs; this module applies them and the rules that span tables.

The API key never lives in the file: it comes from ``PASSQR_API_KEY``,
``api.key_file`` (mode 0600) or the systemd credential ``api-key``
(``$CREDENTIALS_DIRECTORY/api-key``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scanner.addresses import (
    check_base_url,
    check_ca_file,
    host_problem,
    is_loopback_host,
    parse_listen,
)
from scanner.errors import ConfigError
from scanner.gpio_input import GpioInputConfig, check_input
from scanner.keys import load_api_key, read_key_file
from scanner.relay import RELAY_KINDS
from scanner.relay.kind import RelayConfig, RelayKind
from scanner.schema import DAY_S, Bounds, within
from scanner.sources import SOURCE_KINDS
from scanner.sources.camera import CameraSourceConfig
from scanner.sources.evdev_source import EvdevSourceConfig
from scanner.sources.keyboard import KeyboardSourceConfig
from scanner.sources.serial import SerialSourceConfig
from scanner.sources.simulated import SimulatedSourceConfig
from scanner.tomlconfig import build, convert, read_toml, where

OfflinePolicy = Literal["deny", "allow-known", "allow-all"]


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    base_url: str = "https://passqr.com/api/v1"
    """PassQR's API root; the local server's is ``http://127.0.0.1:8787/api/v1``."""
    key_file: Path | None = None
    """A file holding the API key (mode 0600); the environment and credentials win."""
    timeout_s: float = within(3.0, 0, 600, above=True, unit="seconds")
    """Whole-request timeout for one try of a validation."""
    allow_insecure_http: bool = False
    """Allow plain ``http://`` to a host that is not loopback (a venue's own LAN server)."""
    ca_file: Path | None = None
    """Extra CA bundle for a server with a private certificate."""
    validate_per_min: int = within(60, 1, 100_000)
    """The client's own budget for ``POST /validate`` (the spec's limit per IP)."""
    read_per_min: int = within(120, 1, 100_000)
    write_per_min: int = within(60, 1, 100_000)
    live_wait_s: float = within(2.0, 0, 600, unit="seconds")
    """How long a live scan may wait for budget (or a short Retry-After) before the
    offline policy decides."""


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    name: str = "Gate"
    repeat_ignore_s: float = within(3.0, 0, DAY_S, unit="seconds")
    """The same code again within this window, from any source, is ignored."""
    result_hold_s: float = within(3.0, 0, DAY_S, unit="seconds")
    """How long a result stays on screen before the idle screen returns."""
    show_data: list[str] = field(default_factory=list)
    """Keys of a pass's ``data`` shown under ACCEPTED, in this order (``["seat", "table"]``)."""
    passage_window_s: float = within(10.0, 0, 3600, above=True, unit="seconds")
    """With a passage sensor (``[[inputs]] role = "passage"``): how long an admission waits
    for its guest to go through; a passage outside every window is forced or tailgating."""


@dataclass(frozen=True, kw_only=True)
class OfflineConfig:
    policy: OfflinePolicy = "deny"
    """deny: no server, no entry. allow-known: decide from a local copy of the passes.
    allow-all: admit everyone (emergencies), loudly marked."""
    sync_interval_s: float = within(300.0, 10, 7 * DAY_S, unit="seconds")
    """allow-known: how often the local copy of the passes is refreshed."""


#: The built-in kinds' tables (each declared in its kind's module); a kind registered
#: elsewhere (``SOURCE_KINDS``) is parsed and built the same way.
SourceConfig = (
    SerialSourceConfig
    | KeyboardSourceConfig
    | SimulatedSourceConfig
    | CameraSourceConfig
    | EvdevSourceConfig
)


@dataclass(frozen=True, kw_only=True)
class SoundConfig:
    type: Literal["none", "bell", "alsa", "relay"] = "none"
    """Where the accept/reject/attention signals go; ``none``: silence."""
    device: str = "default"
    """``alsa``: the ALSA device (``default``, ``plughw:1,0``)."""
    channel: int = within(2, 1, 32)
    """``relay``: the buzzer's channel on the door relay's board."""
    cues: list[Literal["accept", "reject", "attention"]] = field(
        default_factory=lambda: ["accept", "reject", "attention"]
    )
    """Which signals sound."""


@dataclass(frozen=True, kw_only=True)
class JournalConfig:
    path: Path = Path("/var/lib/passqr-scanner/journal.sqlite3")
    min_free_kb: int = within(10240, 0, 2**40)
    """Below this much free space on the journal's filesystem no scan is sent to the
    server: the rows of admissions under way always fit."""
    keep_days: int = within(90, 0, 36500)
    """Decided rows older than this are pruned (0: never); staff's open cases are kept."""
    max_rows: int = within(1_000_000, 1000, 2**40)
    """At most this many rows; the oldest decided ones are pruned first."""


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    listen: str | None = None
    """``host:port`` for Prometheus metrics at ``/metrics`` (``127.0.0.1:9108``); unset: off."""


@dataclass(frozen=True, kw_only=True)
class StaffConfig:
    pin: str | None = None
    """A PIN staff type before staff mode (F4) opens; unset: no PIN."""


@dataclass(frozen=True, kw_only=True)
class Config:
    api: ApiConfig = field(default_factory=ApiConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    offline: OfflineConfig = field(default_factory=OfflineConfig)
    sources: list[SourceConfig] = field(default_factory=list)
    relay: RelayConfig = field(default_factory=RelayConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    sound: SoundConfig = field(default_factory=SoundConfig)
    inputs: list[GpioInputConfig] = field(default_factory=list)
    """``[[inputs]]``: contacts on the Pi's GPIO lines (issue 16)."""
    source_file: Path | None = None
    """Where this config was read from (not a TOML key)."""


def _relay(value: Any, file: Path | None) -> RelayConfig:
    """``[relay]``: its ``type`` must be a registered kind, then the common shape."""
    if isinstance(value, dict) and "type" in value and value["type"] not in RELAY_KINDS:
        kind = value["type"]
        choices = " | ".join(repr(name) for name in RELAY_KINDS.names())
        raise ConfigError(
            f"{where(file, 'relay.type')}: expected {choices}, got {type(kind).__name__} "
            f"{kind!r}{RELAY_KINDS.suggestion(kind)}"
        )
    relay: RelayConfig = convert(value, RelayConfig, file, "relay")
    return relay


def _sources(value: Any, file: Path | None) -> list[SourceConfig]:
    if not isinstance(value, list):
        raise ConfigError(f"{where(file, 'sources')}: expected [[sources]] tables")
    out: list[SourceConfig] = []
    for i, table in enumerate(value):
        key = f"sources[{i}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where(file, key)}: expected a table")
        kind = SOURCE_KINDS.lookup(table.get("type"), where(file, key + ".type"))
        out.append(build(kind.config, table, file, key + "."))
    return out


def _check_relay(relay: RelayConfig, kind: RelayKind, file: Path | None) -> None:
    if kind.needs_port and not relay.port:
        raise ConfigError(f"{where(file, 'relay.port')}: required for relay type {relay.type!r}")
    most = kind.channels
    if most is not None and not 1 <= relay.channel <= most:
        raise ConfigError(
            f"{where(file, 'relay.channel')}: {relay.type} boards have channels 1 to {most}"
        )
    if not kind.takes_commands and (relay.on_command or relay.off_command):
        takers = " and ".join(repr(k.name) for k in RELAY_KINDS if k.takes_commands)
        raise ConfigError(
            f"{where(file, 'relay.on_command')}: only relay types {takers} take commands"
        )
    if not kind.takes_pin and relay.pin is not None:
        takers = " and ".join(repr(k.name) for k in RELAY_KINDS if k.takes_pin)
        raise ConfigError(f"{where(file, 'relay.pin')}: only relay type {takers} takes a pin")
    if kind.check is not None:
        try:
            kind.check(relay)
        except ConfigError as err:
            raise ConfigError(where(file, f"relay.{err}")) from err


def _check_sound(config: Config, kind: RelayKind, file: Path | None) -> None:
    sound, relay = config.sound, config.relay
    if sound.type != "relay":
        return
    most = kind.most_channels
    if most < 2:
        raise ConfigError(
            f"{where(file, 'sound.type')}: a buzzer needs a second channel on the door relay's "
            f"board; relay type {relay.type!r} has none"
        )
    if sound.channel == relay.channel or sound.channel > most:
        raise ConfigError(
            f"{where(file, 'sound.channel')}: another channel of the {relay.type} board than "
            f"the door's ({relay.channel}), 1 to {most}"
        )


def _check_sources(sources: list[SourceConfig], file: Path | None) -> None:
    seen: set[str] = set()
    for i, source in enumerate(sources):
        kind = SOURCE_KINDS[source.type]
        if kind.single and kind.name in seen:
            raise ConfigError(f"{where(file, 'sources')}: only one {kind.name} source can exist")
        seen.add(kind.name)
        if kind.check is not None:
            try:
                kind.check(source)
            except ConfigError as err:
                raise ConfigError(where(file, f"sources[{i}].{err}")) from err


def _check_inputs(config: Config, file: Path | None) -> None:
    """Each ``[[inputs]]`` table's own rules, and one line for one device (the relay's too)."""
    used: dict[int, str] = {}
    if config.relay.pin is not None:
        used[config.relay.pin] = "relay.pin"
    for i, item in enumerate(config.inputs):
        key = f"inputs[{i}]"
        try:
            check_input(item)
        except ConfigError as err:
            raise ConfigError(where(file, f"{key}.{err}")) from err
        if item.pin in used:
            raise ConfigError(
                f"{where(file, key + '.pin')}: GPIO{item.pin} is already {used[item.pin]}"
            )
        used[item.pin] = key + ".pin"


def _check(config: Config, file: Path | None) -> None:
    if config.staff.pin is not None and not config.staff.pin.strip():
        raise ConfigError(f"{where(file, 'staff.pin')}: an empty PIN; remove the key for none")
    if config.metrics.listen is not None:
        try:
            parse_listen(config.metrics.listen)
        except ConfigError as err:
            raise ConfigError(f"{file}: {err}" if file else str(err)) from err
    kind = RELAY_KINDS[config.relay.type]
    _check_relay(config.relay, kind, file)
    _check_sound(config, kind, file)
    _check_inputs(config, file)
    check_base_url(
        config.api.base_url,
        allow_insecure_http=config.api.allow_insecure_http,
        where=where(file, "api.base_url"),
    )
    if config.api.ca_file is not None:
        check_ca_file(config.api.ca_file, where=where(file, "api.ca_file"))
    _check_sources(config.sources, file)


def parse_config(table: Mapping[str, Any], file: Path | None = None) -> Config:
    """Validate a TOML table (already parsed) into a :class:`Config`.

    Raises:
        ConfigError: naming the file and the key.
    """
    config: Config = build(Config, table, file, "", special={"sources": _sources, "relay": _relay})
    config = dataclasses.replace(config, source_file=file)
    _check(config, file)
    return config


def load_config(path: Path) -> Config:
    """Read and validate a config file.

    Raises:
        ConfigError: unreadable file, TOML syntax error, or an invalid key.
    """
    return parse_config(read_toml(path), path.resolve())


__all__ = [
    "ApiConfig",
    "Bounds",
    "CameraSourceConfig",
    "Config",
    "EvdevSourceConfig",
    "GateConfig",
    "GpioInputConfig",
    "JournalConfig",
    "KeyboardSourceConfig",
    "MetricsConfig",
    "OfflineConfig",
    "OfflinePolicy",
    "RelayConfig",
    "SerialSourceConfig",
    "SimulatedSourceConfig",
    "SoundConfig",
    "SourceConfig",
    "StaffConfig",
    "check_base_url",
    "check_ca_file",
    "host_problem",
    "is_loopback_host",
    "load_api_key",
    "load_config",
    "parse_config",
    "parse_listen",
    "read_key_file",
]
