"""The hub's TOML configuration (``hub.toml``), strict like the kiosk's.

::

    [upstream]
    base_url = "https://passqr.com/api/v1"
    key_file = "/etc/passqr-hub/api-key"   # also PASSQR_API_KEY / $CREDENTIALS_DIRECTORY/api-key
    validate_per_min = 60
    read_per_min = 120
    sync_interval_s = 300
    [hub]
    listen = "127.0.0.1:8790"
    db = "hub.sqlite3"

Every problem is one :class:`~scanner.errors.ConfigError` line naming the file and key
(``hub run`` and ``hub gate-key`` exit 78). The upstream key never lives in the file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from scanner.addresses import check_base_url, check_ca_file, is_loopback_host, parse_listen
from scanner.errors import ConfigError
from scanner.keys import load_key
from scanner.schema import within
from scanner.tomlconfig import build, read_toml, where

TlsMode = Literal["auto", "on", "off"]


@dataclass(frozen=True, kw_only=True)
class UpstreamConfig:
    base_url: str = "https://passqr.com/api/v1"
    """PassQR, or any PassQR-compatible server (another hub, the local server)."""
    key_file: Path | None = None
    """The PassQR key with full rights (mode 0600); it lives only on the hub."""
    ca_file: Path | None = None
    """An extra CA bundle for the upstream's certificate; TLS is always verified."""
    allow_insecure_http: bool = False
    """Allow plain ``http://`` to a host other than loopback (the key would cross in clear)."""
    validate_per_min: int = within(60, 1, 100_000)
    """``POST /validate`` the venue's IP may send upstream per window."""
    read_per_min: int = within(120, 1, 100_000)
    """``GET`` requests per window (the mirror's sync and lookups)."""
    write_per_min: int = within(60, 1, 100_000)
    """Other writes per window (staff creating, changing, revoking passes)."""
    window_s: float = within(60.0, 1.0, 3600.0, unit="s")
    """The length of the upstream's rate-limit window (PassQR's is a minute)."""
    sync_interval_s: float = within(300.0, 5.0, 86_400.0, unit="s")
    """A full refresh of the mirror this often."""
    timeout_s: float = within(10.0, 0.5, 120.0, unit="s")
    """One upstream request at most this long."""


@dataclass(frozen=True, kw_only=True)
class HubSection:
    listen: str = "127.0.0.1:8790"
    """``host:port`` of the LAN API; plain HTTP only on loopback."""
    db: Path = Path("hub.sqlite3")
    """The mirror, the queue and the keys (relative to the config file's directory)."""
    tls: TlsMode = "auto"
    """``auto``: HTTPS with the hub's own certificate unless ``listen`` is loopback."""
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_names: list[str] = field(default_factory=list)
    """Extra names or addresses for the hub's own certificate."""


@dataclass(frozen=True, kw_only=True)
class HubConfig:
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    hub: HubSection = field(default_factory=HubSection)
    source_file: Path | None = None

    @property
    def host(self) -> str:
        return parse_listen(self.hub.listen, where="hub.listen")[0]

    @property
    def port(self) -> int:
        return parse_listen(self.hub.listen, where="hub.listen")[1]

    @property
    def uses_tls(self) -> bool:
        """Whether the LAN API is HTTPS."""
        if self.hub.tls == "auto":
            return not is_loopback_host(self.host) or self.hub.tls_cert is not None
        return self.hub.tls == "on"


def parse_hub_config(table: Mapping[str, Any], file: Path | None = None) -> HubConfig:
    """Validate a TOML table into a :class:`HubConfig`.

    Raises:
        ConfigError: naming the file and the key.
    """
    config: HubConfig = build(HubConfig, table, file, "")
    config = dataclasses.replace(config, source_file=file)
    if not config.hub.db.is_absolute():  # the default's too: beside the config file
        db = (file.parent if file is not None else Path.cwd()) / config.hub.db
        config = dataclasses.replace(config, hub=dataclasses.replace(config.hub, db=db))
    _check(config, file)
    return config


def _check(config: HubConfig, file: Path | None) -> None:
    up, hub = config.upstream, config.hub
    check_base_url(
        up.base_url,
        allow_insecure_http=up.allow_insecure_http,
        where=where(file, "upstream.base_url"),
        setting="upstream.allow_insecure_http",
    )
    if up.ca_file is not None:
        check_ca_file(up.ca_file, where=where(file, "upstream.ca_file"))
    host, _ = parse_listen(hub.listen, where=where(file, "hub.listen"))
    if (hub.tls_cert is None) != (hub.tls_key is None):
        raise ConfigError(f"{where(file, 'hub.tls_cert')}: tls_cert and tls_key go together")
    if hub.tls == "off" and not is_loopback_host(host):
        raise ConfigError(
            f"{where(file, 'hub.tls')}: plain HTTP on {host} would send the gates' keys "
            'unencrypted over the LAN; use tls = "auto" (the hub makes its certificate)'
        )
    if hub.tls == "off" and hub.tls_cert is not None:
        raise ConfigError(f"{where(file, 'hub.tls')}: tls is off but tls_cert is set")
    for i, name in enumerate(hub.tls_names):
        if not name or not name.isprintable() or any(c in name for c in " ,/"):
            raise ConfigError(f"{where(file, f'hub.tls_names[{i}]')}: {name!r} is not a host name")


def load_hub_config(path: Path) -> HubConfig:
    """Read and validate a hub config file.

    Raises:
        ConfigError: unreadable file, TOML syntax error, or an invalid key.
    """
    return parse_hub_config(read_toml(path), path.resolve())


def load_upstream_key(config: HubConfig, environ: Mapping[str, str] | None = None) -> str:
    """The upstream PassQR key: ``PASSQR_API_KEY``, the credential, then ``upstream.key_file``.

    Raises:
        ConfigError: no key, or an unreadable or malformed one (never in the message).
    """
    return load_key(config.upstream.key_file, "upstream.key_file", environ)
