"""The scanner's TOML configuration, validated into frozen values.

Every table is a dataclass; loading walks its fields, so the dataclasses *are* the
schema: unknown keys are refused with a "did you mean", wrong types name the file
and the key, and missing required keys say which. The API key never lives in the
file: it comes from ``PASSQR_API_KEY``, ``api.key_file`` or the systemd credential
``api-key`` (``$CREDENTIALS_DIRECTORY/api-key``).
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import logging
import os
import stat
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from scanner.errors import ConfigError

OfflinePolicy = Literal["deny", "allow-known", "allow-all"]

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    base_url: str = "https://passqr.com/api/v1"
    """PassQR's API root; the local server's is ``http://127.0.0.1:8787/api/v1``."""
    key_file: Path | None = None
    """A file holding the API key (mode 0600); the environment and credentials win."""
    timeout_s: float = 3.0
    """Whole-request timeout for one try of a validation."""
    allow_insecure_http: bool = False
    """Allow plain ``http://`` to a host that is not loopback (a venue's own LAN server)."""
    ca_file: Path | None = None
    """Extra CA bundle for a server with a private certificate."""
    validate_per_min: int = 60
    """The client's own budget for ``POST /validate`` (the spec's limit per IP)."""
    read_per_min: int = 120
    write_per_min: int = 60
    live_wait_s: float = 2.0
    """How long a live scan may wait for budget (or a short Retry-After) before the
    offline policy decides."""


@dataclass(frozen=True, kw_only=True)
class GateConfig:
    name: str = "Gate"
    repeat_ignore_s: float = 3.0
    """The same code again within this window, from any source, is ignored."""
    result_hold_s: float = 3.0
    """How long a result stays on screen before the idle screen returns."""
    show_data: list[str] = field(default_factory=list)
    """Keys of a pass's ``data`` shown under ACCEPTED, in this order (``["seat", "table"]``)."""


@dataclass(frozen=True, kw_only=True)
class OfflineConfig:
    policy: OfflinePolicy = "deny"
    """deny: no server, no entry. allow-known: decide from a local copy of the passes.
    allow-all: admit everyone (emergencies), loudly marked."""
    sync_interval_s: float = 300.0
    """allow-known: how often the local copy of the passes is refreshed."""


@dataclass(frozen=True, kw_only=True)
class SerialSourceConfig:
    type: Literal["serial"]
    port: str
    baudrate: int = 9600
    name: str | None = None
    idle_timeout_s: float = 0.0
    """For scanners that send no terminator: a code ends after this much silence (0 = off)."""


@dataclass(frozen=True, kw_only=True)
class KeyboardSourceConfig:
    type: Literal["keyboard"]
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class SimulatedSourceConfig:
    type: Literal["simulated"]
    codes: list[str]
    interval_s: float = 2.0
    start_delay_s: float = 1.0
    loop: bool = False
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class CameraSourceConfig:
    type: Literal["camera"]
    device: int | str = 0
    """A camera index, a ``/dev/video*`` or ``/dev/v4l/by-id/...`` path, a video file, an
    RTSP/HTTP URL, ``"picamera2"`` for a Raspberry Pi CSI camera, or ``"synthetic"``."""
    width: int = 1280
    height: int = 720
    fps: int = 30
    decoder: Literal["auto", "zxing", "zbar", "opencv"] = "auto"
    watchdog_s: float = 3.0
    """No frame for this long: the capture is reopened and the status line says so."""
    codes: list[str] = field(default_factory=list)
    """For ``device = "synthetic"``: the payloads its generated frames show."""
    name: str | None = None


@dataclass(frozen=True, kw_only=True)
class EvdevSourceConfig:
    type: Literal["evdev"]
    device: str
    """``/dev/input/by-id/...-event-kbd``, or part of the device's name."""
    grab: bool = True
    """Take the device for ourselves, so scans never reach the console."""
    name: str | None = None


SourceConfig = (
    SerialSourceConfig
    | KeyboardSourceConfig
    | SimulatedSourceConfig
    | CameraSourceConfig
    | EvdevSourceConfig
)
_SOURCE_TYPES: Mapping[str, type[Any]] = {
    "serial": SerialSourceConfig,
    "keyboard": KeyboardSourceConfig,
    "simulated": SimulatedSourceConfig,
    "camera": CameraSourceConfig,
    "evdev": EvdevSourceConfig,
}


RelayType = Literal["none", "lcus", "numato", "kmtronic", "hw667", "ascii", "hex"]

#: Channels each board type has (``ascii``/``hex``: whatever the commands say).
RELAY_CHANNELS: Mapping[str, int] = {"lcus": 8, "numato": 32, "kmtronic": 8, "hw667": 1}


@dataclass(frozen=True, kw_only=True)
class RelayConfig:
    type: RelayType = "none"
    port: str | None = None
    channel: int = 1
    pulse_ms: int = 1000
    baudrate: int = 9600
    open_delay_ms: int = 0
    """Wait after opening the port (Arduino-style boards reset when it opens: ~2000)."""
    lock: Literal["fail-safe", "fail-secure"] = "fail-secure"
    """Without power a fail-safe lock (maglock) opens, a fail-secure one (strike) stays shut."""
    on_command: str | None = None
    """``ascii``/``hex``: the ON command; ``{channel}`` is replaced by the channel."""
    off_command: str | None = None


@dataclass(frozen=True, kw_only=True)
class JournalConfig:
    path: Path = Path("/var/lib/passqr-scanner/journal.sqlite3")
    min_free_kb: int = 10240
    """Below this much free space on the journal's filesystem no scan is sent to the
    server: the rows of admissions under way always fit."""
    keep_days: int = 90
    """Decided rows older than this are pruned (0: never); staff's open cases are kept."""
    max_rows: int = 1_000_000
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
    source_file: Path | None = None
    """Where this config was read from (not a TOML key)."""


_INTERNAL_FIELDS = {"source_file"}


def _where(file: Path | None, key: str) -> str:
    return f"{file}: {key}" if file else key


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_name(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if tp is Path:
        return "path (string)"
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp: Any, file: Path | None, key: str) -> Any:
    origin = typing.get_origin(tp)
    bad = ConfigError(
        f"{_where(file, key)}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}"
    )
    if origin in (types.UnionType, typing.Union):
        for arg in typing.get_args(tp):
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, file, key)
            except ConfigError:
                continue
        raise bad
    if origin is Literal:
        if value in typing.get_args(tp):
            return value
        raise bad
    if origin is list:
        if not isinstance(value, list):
            raise bad
        (item,) = typing.get_args(tp)
        return [_convert(v, item, file, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if tp is Path:
        if isinstance(value, str) and value:
            path = Path(value).expanduser()
            if not path.is_absolute() and file is not None:
                path = file.parent / path
            return path
        raise bad
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{_where(file, key)}: expected a table, got {type(value).__name__}")
        return _build(tp, value, file, key + ".")
    raise bad  # pragma: no cover - a field type this loader does not know


def _build(cls: type[Any], table: Mapping[str, Any], file: Path | None, prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = [f.name for f in dataclasses.fields(cls) if f.name not in _INTERNAL_FIELDS]
    for key in table:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean {near[0]!r}?)" if near else f" (known keys: {', '.join(known)})"
            raise ConfigError(f"{_where(file, prefix + key)}: unknown key{hint}")
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in _INTERNAL_FIELDS:
            continue
        if f.name not in table:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{_where(file, prefix + f.name)}: required key is missing")
            continue
        if f.name == "sources":
            kwargs[f.name] = _sources(table[f.name], file)
        else:
            kwargs[f.name] = _convert(table[f.name], hints[f.name], file, prefix + f.name)
    return cls(**kwargs)


def _sources(value: Any, file: Path | None) -> list[SourceConfig]:
    if not isinstance(value, list):
        raise ConfigError(f"{_where(file, 'sources')}: expected [[sources]] tables")
    out: list[SourceConfig] = []
    for i, table in enumerate(value):
        key = f"sources[{i}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{_where(file, key)}: expected a table")
        kind = table.get("type")
        if kind not in _SOURCE_TYPES:
            near = difflib.get_close_matches(str(kind), list(_SOURCE_TYPES), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(
                f"{_where(file, key + '.type')}: unknown source type {kind!r}{hint}; "
                f"expected one of {', '.join(_SOURCE_TYPES)}"
            )
        out.append(_build(_SOURCE_TYPES[str(kind)], table, file, key + "."))
    return out


def _check(config: Config, file: Path | None) -> None:
    if config.staff.pin is not None and not config.staff.pin.strip():
        raise ConfigError(f"{_where(file, 'staff.pin')}: an empty PIN; remove the key for none")
    if config.metrics.listen is not None:
        from scanner.metrics import parse_listen

        try:
            parse_listen(config.metrics.listen)
        except ConfigError as err:
            raise ConfigError(f"{file}: {err}" if file else str(err)) from err
    for key, low in (("min_free_kb", 0), ("keep_days", 0), ("max_rows", 1000)):
        if getattr(config.journal, key) < low:
            raise ConfigError(f"{_where(file, 'journal.' + key)}: must be at least {low}")
    if config.offline.sync_interval_s < 10:
        raise ConfigError(f"{_where(file, 'offline.sync_interval_s')}: at least 10 seconds")
    for key in ("validate_per_min", "read_per_min", "write_per_min"):
        if getattr(config.api, key) < 1:
            raise ConfigError(f"{_where(file, 'api.' + key)}: must be at least 1")
    if config.api.live_wait_s < 0:
        raise ConfigError(f"{_where(file, 'api.live_wait_s')}: must not be negative")
    if config.relay.type != "none" and not config.relay.port:
        raise ConfigError(
            f"{_where(file, 'relay.port')}: required for relay type {config.relay.type!r}"
        )
    relay = config.relay
    most = RELAY_CHANNELS.get(relay.type)
    if most is not None and not 1 <= relay.channel <= most:
        raise ConfigError(
            f"{_where(file, 'relay.channel')}: {relay.type} boards have channels 1 to {most}"
        )
    if relay.type in ("ascii", "hex"):
        from scanner.relay.commands import render

        for key in ("on_command", "off_command"):
            command = getattr(relay, key)
            if not command:
                raise ConfigError(
                    f"{_where(file, 'relay.' + key)}: required for relay type {relay.type!r}"
                )
            try:
                render(command, relay.channel, hex_bytes=relay.type == "hex")
            except ConfigError as err:
                raise ConfigError(f"{_where(file, 'relay.' + key)}: {err}") from err
    elif relay.on_command or relay.off_command:
        raise ConfigError(
            f"{_where(file, 'relay.on_command')}: only relay types 'ascii' and 'hex' take commands"
        )
    if not 0 <= relay.open_delay_ms <= 10_000:
        raise ConfigError(f"{_where(file, 'relay.open_delay_ms')}: must be between 0 and 10000")
    if not 10 <= config.relay.pulse_ms <= 60_000:
        raise ConfigError(f"{_where(file, 'relay.pulse_ms')}: must be between 10 and 60000")
    if config.api.timeout_s <= 0:
        raise ConfigError(f"{_where(file, 'api.timeout_s')}: must be positive")
    for key, value in (
        ("gate.repeat_ignore_s", config.gate.repeat_ignore_s),
        ("gate.result_hold_s", config.gate.result_hold_s),
    ):
        if value < 0:
            raise ConfigError(f"{_where(file, key)}: must not be negative")
    check_base_url(
        config.api.base_url,
        allow_insecure_http=config.api.allow_insecure_http,
        where=_where(file, "api.base_url"),
    )
    for i, source in enumerate(config.sources):
        if not isinstance(source, CameraSourceConfig):
            continue
        where = _where(file, f"sources[{i}]")
        if not (1 <= source.fps <= 240 and source.width >= 16 and source.height >= 16):
            raise ConfigError(f"{where}: width, height and fps must be positive and sane")
        if source.watchdog_s <= 0:
            raise ConfigError(f"{where}.watchdog_s: must be positive")
        if isinstance(source.device, str) and source.device.startswith("synthetic"):
            from scanner.sources.synthetic import parse_synthetic_device

            try:
                parse_synthetic_device(source.device)
            except ConfigError as err:
                raise ConfigError(f"{where}.device: {err}") from err
    keyboards = [s for s in config.sources if isinstance(s, KeyboardSourceConfig)]
    if len(keyboards) > 1:
        raise ConfigError(f"{_where(file, 'sources')}: only one keyboard source can exist")


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, *, allow_insecure_http: bool, where: str = "api.base_url") -> None:
    """Refuse a base URL that would send the API key in clear text or nowhere.

    Raises:
        ConfigError: not http(s), no host, or plain http to a non-loopback host
            without ``allow_insecure_http``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: {url!r} is not an http(s) URL")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"{where}: plain http:// to {parts.hostname} would send the API key unencrypted; "
            "use https:// or set api.allow_insecure_http = true"
        )


def parse_config(table: Mapping[str, Any], file: Path | None = None) -> Config:
    """Validate a TOML table (already parsed) into a :class:`Config`.

    Raises:
        ConfigError: naming the file and the key.
    """
    config: Config = _build(Config, table, file, "")
    config = dataclasses.replace(config, source_file=file)
    _check(config, file)
    return config


def load_config(path: Path) -> Config:
    """Read and validate a config file.

    Raises:
        ConfigError: unreadable file, TOML syntax error, or an invalid key.
    """
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from err
    try:
        table = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    return parse_config(table, path.resolve())


def _check_key(key: str, origin: str) -> str:
    key = key.strip()
    if not key:
        raise ConfigError(f"{origin}: the API key is empty")
    if any(ch.isspace() for ch in key) or not key.isprintable():
        raise ConfigError(f"{origin}: the API key contains spaces or control characters")
    if not key.startswith("pqr_"):
        raise ConfigError(f"{origin}: this does not look like a PassQR API key (pqr_live_...)")
    return key


def _read_key_file(path: Path, origin: str) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{origin} {path}: cannot read the API key ({err.strerror})") from err
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        _log.warning("API key file %s is readable by other users; chmod 600 it", path)
    return _check_key(text, f"{origin} {path}")


def load_api_key(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """Find the API key: ``PASSQR_API_KEY``, then the systemd credential, then ``api.key_file``.

    The credential comes before the file: a unit with ``LoadCredential=`` is the
    deliberate choice of whoever installed the service, and the file it loads
    from is usually readable by root only.

    Raises:
        ConfigError: no key anywhere, or an unreadable or malformed one. The
            message never contains the key.
    """
    env = os.environ if environ is None else environ
    if env.get("PASSQR_API_KEY"):
        return _check_key(env["PASSQR_API_KEY"], "PASSQR_API_KEY")
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / "api-key").exists():
        return _read_key_file(Path(cred_dir) / "api-key", "systemd credential")
    if config.api.key_file is not None:
        return _read_key_file(config.api.key_file, "api.key_file")
    raise ConfigError(
        "no API key: set PASSQR_API_KEY, api.key_file in the config, "
        "or LoadCredential=api-key:... in the systemd unit"
    )
