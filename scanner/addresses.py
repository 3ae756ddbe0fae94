"""Addresses the configuration names: the API's base URL, a listen address, a CA file.

Checked when the config is loaded, so a typo is one line and exit 78, never a
traceback from the first request.
"""

from __future__ import annotations

import ipaddress
import re
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from scanner.errors import ConfigError


def parse_listen(value: str, *, where: str = "metrics.listen") -> tuple[str, int]:
    """``"127.0.0.1:9108"``, ``"[::1]:9108"`` or ``":9108"`` (all addresses) -> (host, port).

    Raises:
        ConfigError: not ``host:port`` with a port from 1 to 65535 and a host that
            can be looked up.
    """
    host, sep, port_text = value.rpartition(":")
    if not sep or not (port_text.isascii() and port_text.isdigit()):
        raise ConfigError(f"{where}: {value!r} is not host:port (127.0.0.1:9108)")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ConfigError(f"{where}: port {port} is not between 1 and 65535")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    problem = host_problem(host) if host else None
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    return host or "0.0.0.0", port


def is_loopback_host(host: str) -> bool:
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(
    url: str,
    *,
    allow_insecure_http: bool,
    where: str = "api.base_url",
    setting: str = "api.allow_insecure_http",
) -> None:
    """Refuse a base URL that would send the API key in clear text or nowhere.

    Raises:
        ConfigError: not a URL the client can use (a space, a bad port or host
            name), not http(s), no host, or plain http to a non-loopback host
            without ``allow_insecure_http``.
    """
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ConfigError(f"{where}: {url!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
    except ValueError as err:  # "http://[::1/api": an unclosed IPv6 address
        raise ConfigError(f"{where}: {url!r} is not a valid URL ({err})") from err
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{where}: {url!r} is not an http(s) URL")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigError(f"{where}: {url!r}: the port must be a number from 1 to 65535")
    problem = host_problem(parts.hostname)
    if problem is not None:
        raise ConfigError(f"{where}: {url!r}: {problem}")
    import httpx  # its parser (IDNA 2008, strict ports) is the client's, and stricter

    try:
        httpx.URL(url)
    except httpx.InvalidURL as err:
        raise ConfigError(f"{where}: {url!r} is not a valid URL ({err})") from err
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback_host(parts.hostname):
        raise ConfigError(
            f"{where}: plain http:// to {parts.hostname} would send the API key unencrypted; "
            f"use https:// or set {setting} = true"
        )


_HOST_NAME = re.compile(rb"[A-Za-z0-9_.-]+")


def host_problem(host: str) -> str | None:
    """Why ``host`` (an address or a DNS name, IPv6 without brackets) can never be
    looked up, or None. The resolver raises ``UnicodeError``, not ``OSError``, for
    these, which nothing at run time would expect."""
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        pass
    else:
        return None
    try:
        name = host.encode("idna")
    except UnicodeError:
        return f"{host!r} is not a valid host name (empty or over-long label)"
    if not _HOST_NAME.fullmatch(name):
        return f"{host!r} is not an IP address or a host name"
    return None


def check_ca_file(path: Path, *, where: str = "api.ca_file") -> None:
    """Load the CA bundle once now, as the client will: a bad one is a config error,
    not a traceback when the first request is built.

    Raises:
        ConfigError: unreadable, or no PEM certificate in it.
    """
    try:
        ssl.create_default_context(cafile=str(path))
    except ssl.SSLError as err:
        raise ConfigError(
            f"{where}: {path} is not a PEM bundle of CA certificates ({err.reason or err})"
        ) from err
    except OSError as err:
        raise ConfigError(f"{where}: cannot read {path} ({err.strerror or err})") from err
