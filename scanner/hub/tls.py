"""The hub's own TLS certificate: made once with the ``openssl`` command, then kept.

Why self-signed, and its own CA: kiosks always verify TLS (:mod:`scanner.api`), but a
venue has no certificate authority and its hub no public name a public one would sign.
So the hub makes one certificate on its first start, with ``basicConstraints CA:TRUE``,
and every kiosk is given a copy as its ``[api] ca_file``: the certificate is then both
the kiosk's trust anchor and the server's certificate, which OpenSSL, and so Python's
``ssl`` and httpx, accept with host name checks on (and with the strict X.509 checks
Python 3.13 turns on by default: hence the key identifiers and key usage).

Why the ``openssl`` command: no new Python dependency (``cryptography`` is a compiled
wheel); Debian and Raspberry Pi OS ship the command. It runs when the certificate is
made, and to read the names of an existing one.

Why kept: kiosks trust exactly this certificate, and a new one means copying it to
every kiosk again. An existing pair is never replaced: when it lacks a name the hub is
now reached by, the hub logs which names and how to make a new pair (delete both).

The files: ``hub-cert.pem`` (0644, to be copied) and ``hub-key.pem`` (0600), each
written into a private (0700) temporary directory beside them, with its mode from the
start whatever the umask, then renamed into place. The file of the pair that is there
already is replaced first: a crash between the two renames leaves half a pair (made
anew at the next start), never a key and a certificate that do not belong together.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scanner.payload import printable
from scanner.smallfile import NotARegularFile, read_small_file

__all__ = [
    "CERT_FILE",
    "KEY_FILE",
    "TlsError",
    "TlsFiles",
    "check_files",
    "default_names",
    "ensure_certificate",
    "fingerprint",
]

logger = logging.getLogger(__name__)

CERT_FILE = "hub-cert.pem"
KEY_FILE = "hub-key.pem"
COMMON_NAME = "PassQR venue hub"
#: Ten years: a venue installs the hub once; kiosks trust this certificate, not a CA.
VALID_DAYS = 3650
_KEY_ARGS = ("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
_CERT_ARGS = ("-days", str(VALID_DAYS), "-sha256")
_OPENSSL_TIMEOUT_S = 30.0
_IP_TIMEOUT_S = 2.0
#: A PEM certificate chain or key is a few kilobytes.
_MAX_PEM_BYTES = 1 << 20
#: Listen hosts that mean "every address": no name of their own.
_ANY_HOST = frozenset({"", "0.0.0.0", "::", "*"})
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PEM_CERT = re.compile(
    r"-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----", re.ASCII
)
_IP_INET = re.compile(r"\binet (\d{1,3}(?:\.\d{1,3}){3})/")


@dataclass(frozen=True)
class TlsFiles:
    """A certificate (chain) and its private key, both PEM: what uvicorn serves TLS with."""

    cert: Path
    key: Path


class TlsError(Exception):
    """The certificate cannot be made, read or used; the message is one line for the operator."""


# -- names --------------------------------------------------------------------------------


def _subject_alt_name(name: str) -> str:
    """``IP:<address>`` or ``DNS:<name>``, canonical (compressed, lower case).

    Raises:
        TlsError: ``name`` is neither an IP address nor a host name.
    """
    text = name.strip().removeprefix("[").removesuffix("]")
    try:
        return f"IP:{ipaddress.ip_address(text.partition('%')[0])}"
    except ValueError:
        pass
    host = text.rstrip(".").lower()
    if len(host) > 253 or not _HOSTNAME.fullmatch(host):
        raise TlsError(f"{printable(name)!r} is not a host name or an IP address")
    return f"DNS:{host}"


def _subject_alt_names(names: Iterable[str]) -> dict[str, str]:
    """Canonical subjectAltName entry -> the name as given, in order, without repeats."""
    out: dict[str, str] = {}
    for name in names:
        out.setdefault(_subject_alt_name(name), name)
    return out


def default_names(listen_host: str) -> list[str]:
    """The names and addresses kiosks may reach this machine by, for its certificate.

    Loopback (``localhost``, ``127.0.0.1``, ``::1``), the listen host unless it means
    every address, the host name and its canonical name, and the machine's IPv4
    addresses that are neither loopback nor link-local: from its host name, from
    ``ip -o -4 addr`` when that runs, and the source address of its default route
    (found without sending anything; it also works where netlink is not allowed, as
    in the hub's systemd sandbox). Never raises: a source that fails adds nothing.

    Returns:
        Canonical names (lower case, compressed addresses), without repeats.
    """
    candidates = ["localhost", "127.0.0.1", "::1"]
    host = listen_host.strip().removeprefix("[").removesuffix("]")
    if host not in _ANY_HOST:
        candidates.append(host)
    hostname = _hostname()
    if hostname:
        canonical, addresses = _resolve(hostname)
        candidates += [hostname, canonical, *_lan_ipv4(addresses)]
    candidates += _lan_ipv4([*_interface_addresses(), _route_address()])
    names: dict[str, None] = {}
    for candidate in candidates:
        try:
            names.setdefault(_subject_alt_name(candidate).partition(":")[2])
        except TlsError:
            continue  # an odd host name (spaces, non-ASCII): not in the certificate
    return list(names)


def _hostname() -> str:
    try:
        return socket.gethostname()
    except OSError:
        return ""


def _resolve(hostname: str) -> tuple[str, list[str]]:
    """The host name's canonical name and its IPv4 addresses, as the resolver says."""
    try:
        infos = socket.getaddrinfo(
            hostname, None, type=socket.SOCK_STREAM, flags=socket.AI_CANONNAME
        )
    except (OSError, UnicodeError):
        return "", []
    canonical = next((info[3] for info in infos if info[3]), "")
    return canonical, [str(info[4][0]) for info in infos if info[0] == socket.AF_INET]


def _interface_addresses() -> list[str]:
    """Every interface's IPv4 address, from ``ip -o -4 addr`` (iproute2) if it runs."""
    try:
        proc = subprocess.run(
            ["ip", "-o", "-4", "addr", "show"],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=_IP_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []
    return _IP_INET.findall(proc.stdout.decode("ascii", "replace"))


def _route_address() -> str:
    """The source address of the default route: a UDP socket's connect sends nothing."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1 (RFC 5737): never reached
            return str(probe.getsockname()[0])
    except OSError:
        return ""


def _lan_ipv4(addresses: Iterable[str]) -> list[str]:
    out = []
    for text in addresses:
        try:
            address = ipaddress.IPv4Address(text)
        except ValueError:
            continue
        if not (address.is_loopback or address.is_link_local or address.is_unspecified):
            out.append(str(address))
    return out


# -- the certificate ----------------------------------------------------------------------


def ensure_certificate(directory: Path, names: Sequence[str]) -> TlsFiles:
    """The hub's own certificate and key in ``directory``: made on the first call, then kept.

    An existing pair is reused as long as it loads (kiosks already trust it); names
    it lacks are logged as a warning that says how to make a new pair, never fixed by
    replacing it.

    Args:
        directory: where the pair lives (the hub's state directory); made 0700 if missing.
        names: host names and IP addresses kiosks reach the hub by (:func:`default_names`
            plus the configured ones); at least one.

    Returns:
        The paths of ``hub-cert.pem`` and ``hub-key.pem``.

    Raises:
        TlsError: a name that is neither; the directory cannot be made or written; the
            ``openssl`` command is missing or fails; an existing pair cannot be read or
            does not belong together.
        ValueError: ``names`` is empty.
    """
    sans = _subject_alt_names(names)
    if not sans:
        raise ValueError("the hub's certificate needs at least one name")
    files = TlsFiles(cert=directory / CERT_FILE, key=directory / KEY_FILE)
    if _pair_present(files):
        try:
            check_files(files)
        except TlsError as err:
            raise TlsError(f"{err}; delete both files to make a new pair") from err
        _warn_missing_names(files, sans)
        return files
    _make(directory, files, list(sans))
    logger.info(
        "Made the hub's TLS certificate %s (valid %d days) for %s; SHA-256 fingerprint %s",
        files.cert,
        VALID_DAYS,
        ", ".join(sans.values()),
        fingerprint(files.cert),
    )
    return files


def check_files(files: TlsFiles) -> None:
    """The certificate and key can be read and belong together, as the server loads them.

    Raises:
        TlsError: one cannot be read or is not a regular file; not PEM; a key with a
            passphrase (the hub has no way to ask for it); a key of another certificate.
    """
    for path in (files.cert, files.key):
        try:
            read_small_file(path, _MAX_PEM_BYTES)
        except NotARegularFile as err:
            raise TlsError(f"{path} is not a regular file") from err
        except OSError as err:
            raise TlsError(f"cannot read {path}: {err.strerror or err}") from err
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(files.cert, files.key, password=lambda: b"")
    except ssl.SSLError as err:
        if err.reason == "KEY_VALUES_MISMATCH":
            reason = "the key is not this certificate's"
        else:
            reason = "not a PEM certificate and an unencrypted PEM key"
        raise TlsError(f"{files.cert} and {files.key} cannot be used: {reason}") from err


def fingerprint(cert: Path) -> str:
    """The SHA-256 fingerprint of the (first) certificate in ``cert``, ``AA:BB:...``: what
    ``openssl x509 -noout -fingerprint -sha256`` says, for an operator to compare.

    Raises:
        TlsError: the file cannot be read or holds no PEM certificate.
    """
    try:
        data, _ = read_small_file(cert, _MAX_PEM_BYTES)
    except (OSError, NotARegularFile) as err:
        raise TlsError(f"cannot read {cert}: {getattr(err, 'strerror', None) or err}") from err
    match = _PEM_CERT.search(data.decode("ascii", "replace"))
    try:
        if match is None:
            raise ValueError("no PEM certificate")
        der = ssl.PEM_cert_to_DER_cert(match.group(0))
    except ValueError as err:
        raise TlsError(f"{cert} holds no PEM certificate") from err
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _pair_present(files: TlsFiles) -> bool:
    """Both files are there; half a pair is logged and made anew."""
    cert, key = os.path.lexists(files.cert), os.path.lexists(files.key)
    if cert != key:
        there, missing = (files.cert, files.key) if cert else (files.key, files.cert)
        logger.warning(
            "%s is there without %s: making a new certificate and key "
            "(kiosks must be given the new certificate)",
            there,
            missing,
        )
    return cert and key


def _warn_missing_names(files: TlsFiles, sans: dict[str, str]) -> None:
    try:
        has = _names_in(files.cert)
    except TlsError as err:
        logger.warning("Cannot check the names in %s: %s", files.cert, err)
        return
    missing = [name for san, name in sans.items() if san not in has]
    if missing:
        logger.warning(
            "The hub's certificate %s does not name %s: a kiosk that reaches the hub by "
            "one of these refuses it. For a certificate with every name, stop the hub, "
            "delete %s and %s, start it again, and give every kiosk the new certificate",
            files.cert,
            ", ".join(missing),
            files.cert,
            files.key,
        )


def _names_in(cert: Path) -> set[str]:
    """The certificate's subjectAltName entries, canonical as :func:`_subject_alt_name`'s."""
    out = _openssl("read", "x509", "-in", str(cert), "-noout", "-ext", "subjectAltName")
    lines = out.decode("utf-8", "replace").splitlines()[1:]  # after the extension's title
    names = set()
    for entry in ",".join(lines).split(","):
        kind, _, value = entry.strip().partition(":")
        if kind in ("DNS", "IP Address"):
            try:
                names.add(_subject_alt_name(value))
            except TlsError:
                continue  # a wildcard or an odd name: it answers for no name of ours
    return names


def _config(sans: Sequence[str]) -> str:
    """``openssl req``'s whole configuration: the system's own openssl.cnf plays no part."""
    return "\n".join(
        (
            "[req]",
            "distinguished_name = dn",
            "x509_extensions = ext",
            "prompt = no",
            "[dn]",
            f"CN = {COMMON_NAME}",
            "[ext]",
            "basicConstraints = critical, CA:TRUE, pathlen:0",
            "keyUsage = critical, digitalSignature, keyCertSign",
            "extendedKeyUsage = serverAuth",
            "subjectKeyIdentifier = hash",
            "authorityKeyIdentifier = keyid:always",
            f"subjectAltName = {', '.join(sans)}",
            "",
        )
    )


def _make(directory: Path, files: TlsFiles, sans: Sequence[str]) -> None:
    """A new EC P-256 key and certificate, renamed into place; see the module's docstring."""
    try:
        _private_directory(directory)
        work = Path(tempfile.mkdtemp(prefix=".hub-tls-", dir=directory))  # 0700
    except OSError as err:
        raise TlsError(f"cannot write into {directory}: {err.strerror or err}") from err
    try:
        key = _write(work / KEY_FILE, _openssl("make", *_KEY_ARGS), 0o600)
        config = _write(work / "req.cnf", _config(sans).encode("ascii"), 0o600)
        req = ("req", "-new", "-x509", "-config", str(config), "-key", str(key))
        cert = _write(work / CERT_FILE, _openssl("make", *req, *_CERT_ARGS), 0o644)
        moves = sorted(((cert, files.cert), (key, files.key)), key=lambda m: not m[1].exists())
        for made, final in moves:
            os.replace(made, final)
        _fsync_directory(directory)
    except OSError as err:
        raise TlsError(f"cannot write into {directory}: {err.strerror or err}") from err
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _private_directory(directory: Path) -> None:
    """Make ``directory`` 0700 if it is missing; an existing one keeps its mode."""
    if not directory.is_dir():
        directory.mkdir(parents=True, mode=0o700)
        directory.chmod(0o700)  # mkdir's mode is masked by the umask


def _write(path: Path, data: bytes, mode: int) -> Path:
    """A new file with ``mode`` from its creation (the umask cannot widen or narrow it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "wb") as stream:
        os.fchmod(fd, mode)  # created with mode & ~umask: never more, maybe less
        stream.write(data)
        stream.flush()
        os.fsync(fd)
    return path


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _openssl(doing: str, *args: str) -> bytes:
    """What ``openssl args...`` writes on standard output.

    Raises:
        TlsError: the command is missing, hangs or fails (with its last error line).
    """
    what = "make the hub's TLS certificate" if doing == "make" else "read the certificate"
    try:
        proc = subprocess.run(
            ["openssl", *args],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=_OPENSSL_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as err:
        raise TlsError(
            f"cannot {what}: the openssl command is not installed (apt install openssl)"
        ) from err
    except subprocess.TimeoutExpired as err:
        raise TlsError(f"cannot {what}: openssl took over {_OPENSSL_TIMEOUT_S:g} s") from err
    except OSError as err:
        raise TlsError(f"cannot {what}: cannot run openssl: {err.strerror or err}") from err
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        said = printable(lines[-1].strip(), 200) if lines else "no message"
        raise TlsError(f"cannot {what}: openssl {args[0]} failed ({said})")
    return proc.stdout
