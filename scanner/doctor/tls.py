"""A certificate the kiosk does not trust: what to do, with fingerprints to compare.

The usual cause on a LAN is a venue hub's own certificate (``hub-cert.pem``, made by the
hub in its state directory): the kiosk trusts it only as its ``[api] ca_file``. So the
fix says where the file is and how to compare its SHA-256 fingerprint on both sides, and
gives the fingerprint of what the server presented (read with a handshake that checks
nothing and sends nothing, made only after verification failed) and of ``api.ca_file``.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from pathlib import Path

import httpx

from scanner.config import Config
from scanner.payload import printable

__all__ = ["certificate_fix", "certificate_problem", "fingerprint", "presented_fingerprint"]

#: Where ``passqr-hub.service`` keeps the hub's certificate (its StateDirectory=).
HUB_CERT = "/var/lib/passqr-hub/hub-cert.pem"
_COMPARE = "openssl x509 -in FILE -noout -fingerprint -sha256"
_PEM_RE = re.compile(
    r"-----BEGIN CERTIFICATE-----\s+.*?-----END CERTIFICATE-----", re.DOTALL | re.ASCII
)
#: OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH and X509_V_ERR_IP_ADDRESS_MISMATCH.
_NAME_MISMATCH = (62, 64)


def certificate_problem(error: BaseException) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure behind ``error`` (its causes followed), if any."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLCertVerificationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _hex(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def fingerprint(path: Path) -> str | None:
    """SHA-256 of the first certificate in a PEM file, as ``openssl x509 -fingerprint``
    prints it (``AB:CD:...``); None when the file holds none or cannot be read."""
    try:
        text = path.read_text(encoding="ascii", errors="replace")[: 1 << 20]
    except OSError:
        return None
    match = _PEM_RE.search(text)
    if match is None:
        return None
    try:
        return _hex(ssl.PEM_cert_to_DER_cert(match.group(0)))
    except ValueError:
        return None


async def presented_fingerprint(url: str, timeout_s: float) -> str | None:
    """SHA-256 of the certificate the server at ``url`` presents; None when not read.

    A TLS handshake that verifies nothing, then closed: no HTTP request, nothing sent.
    """
    parsed = httpx.URL(url)
    host, port = parsed.host, parsed.port or 443
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host or None
            )
    except (OSError, TimeoutError, ValueError):
        return None
    try:
        tls = writer.get_extra_info("ssl_object")
        der = tls.getpeercert(binary_form=True) if isinstance(tls, ssl.SSLObject) else None
    finally:
        writer.close()
        try:
            async with asyncio.timeout(1.0):
                await writer.wait_closed()
        except (OSError, TimeoutError):
            pass
    return _hex(der) if der else None


async def certificate_fix(config: Config, error: BaseException) -> str | None:
    """The fix for a certificate the kiosk refused; None when ``error`` is something else."""
    problem = certificate_problem(error)
    if problem is None:
        return None
    api = config.api
    host = printable(httpx.URL(api.base_url).host, 100)
    if problem.verify_code in _NAME_MISMATCH:
        return (
            f"the server's certificate does not name {host}: use in api.base_url a name or "
            "address the certificate holds (a venue hub logs its names when it makes the "
            "certificate), or add it to the hub's tls_names and give every kiosk the new "
            "certificate"
        )
    presented = await presented_fingerprint(api.base_url, min(api.timeout_s, 3.0))
    shown = f" (it presents SHA-256 {presented})" if presented else ""
    compare = f"compare its SHA-256 fingerprint on both sides ({_COMPARE})"
    if api.ca_file is None:
        return (
            f"this kiosk does not trust the server's certificate{shown}. A venue hub's own "
            f"certificate: copy hub-cert.pem from the hub's state directory ({HUB_CERT}) to "
            f"this kiosk, set [api] ca_file to it and {compare}. Otherwise the network may "
            "be intercepting TLS (a proxy, a captive portal)"
        )
    held = fingerprint(api.ca_file)
    holds = f" (SHA-256 {held})" if held else ""
    return (
        f"api.ca_file {api.ca_file}{holds} does not vouch for the server's "
        f"certificate{shown}: copy the hub's hub-cert.pem ({HUB_CERT} on the hub) again and "
        f"{compare}; a hub whose certificate was made anew needs the new file on every kiosk"
    )
