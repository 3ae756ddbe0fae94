"""The hub's own TLS certificate, and the kiosk trusting it over real HTTPS.

Real ``openssl`` (fakes on ``PATH`` only for its absence and its failure), real files,
and the project's own server under uvicorn with the certificate: a kiosk whose
``[api] ca_file`` is the hub's certificate validates a pass; one without it gets a
network fault, never "invalid pass".
"""

from __future__ import annotations

import logging
import os
import ssl
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scanner.api import PassQRClient
from scanner.config import ApiConfig, Config, GateConfig, JournalConfig, OfflineConfig
from scanner.errors import NetworkError
from scanner.explain import describe
from scanner.hub.tls import (
    COMMON_NAME,
    TlsError,
    TlsFiles,
    default_names,
    ensure_certificate,
    fingerprint,
)
from scanner.models import RawScan, Reason
from scanner.relay import NoRelay
from scanner.runtime import Kiosk
from scanner.server import ServerThread, create_key, seed_demo
from scanner.status import ServerState, failure_state

NAMES = ["localhost", "127.0.0.1", "::1", "gate-hub.local", "192.0.2.10"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def openssl(*args: str) -> str:
    return subprocess.run(
        ["openssl", *args], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def handshake(files: TlsFiles, host: str) -> None:
    """A kiosk's TLS handshake with the hub, in memory: the kiosk's context trusts only the
    hub's certificate (its ``ca_file``), checks the host name, and has the strict X.509
    checks Python 3.13 turns on by default.

    Raises:
        ssl.SSLCertVerificationError: the kiosk refuses the certificate for ``host``.
    """
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(files.cert, files.key)
    client = ssl.create_default_context(cafile=str(files.cert))
    client.verify_flags |= ssl.VERIFY_X509_STRICT
    assert client.check_hostname
    kiosk_in, kiosk_out, hub_in, hub_out = (ssl.MemoryBIO() for _ in range(4))
    kiosk = client.wrap_bio(kiosk_in, kiosk_out, server_hostname=host)
    hub = server.wrap_bio(hub_in, hub_out, server_side=True)
    for _ in range(8):
        done = True
        for side, outgoing, peer in ((kiosk, kiosk_out, hub_in), (hub, hub_out, kiosk_in)):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                done = False
            if outgoing.pending:
                peer.write(outgoing.read())
        if done:
            return
    raise AssertionError("the handshake did not finish")


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def fake_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory that is the whole PATH: no openssl, no ip, unless a test adds one."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


def script(directory: Path, name: str, body: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


# -- making the certificate --------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o000, 0o022, 0o077])
def test_a_new_pair_has_its_modes_whatever_the_umask(state: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        files = ensure_certificate(state, NAMES)
    finally:
        os.umask(old)
    assert files == TlsFiles(cert=state / "hub-cert.pem", key=state / "hub-key.pem")
    assert mode(files.key) == 0o600
    assert mode(files.cert) == 0o644
    assert mode(state) == 0o700  # made by us
    assert sorted(os.listdir(state)) == ["hub-cert.pem", "hub-key.pem"]  # no temporary left
    assert files.key.read_text().startswith("-----BEGIN PRIVATE KEY-----\n")  # no passphrase


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    ensure_certificate(tmp_path, NAMES)
    assert mode(tmp_path) == 0o755  # the state directory is systemd's, not ours to change


def test_the_certificate_is_a_ten_year_p256_ca_naming_every_name(state: Path) -> None:
    files = ensure_certificate(state, NAMES)
    text = openssl("x509", "-in", str(files.cert), "-noout", "-text")
    assert f"Subject: CN = {COMMON_NAME}" in text
    assert f"Issuer: CN = {COMMON_NAME}" in text
    assert "NIST CURVE: P-256" in text
    assert "ecdsa-with-SHA256" in text
    constraints = text.split("X509v3 Basic Constraints: critical", 1)[1].splitlines()[1]
    assert constraints.strip().startswith("CA:TRUE")
    sans = openssl("x509", "-in", str(files.cert), "-noout", "-ext", "subjectAltName")
    entries = {e.strip() for e in sans.splitlines()[1].split(",")}
    assert entries == {
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "IP Address:0:0:0:0:0:0:0:1",
        "DNS:gate-hub.local",
        "IP Address:192.0.2.10",
    }
    dates = dict(
        line.split("=", 1)
        for line in openssl("x509", "-in", str(files.cert), "-noout", "-dates").splitlines()
    )
    days = (ssl.cert_time_to_seconds(dates["notAfter"]) - time.time()) / 86400
    assert 3649 < days <= 3650


@pytest.mark.parametrize("host", NAMES)
def test_a_kiosk_trusting_the_certificate_accepts_it_by_each_name(state: Path, host: str) -> None:
    handshake(ensure_certificate(state, NAMES), host)


def test_a_kiosk_refuses_it_for_a_name_it_does_not_hold(state: Path) -> None:
    """The handshake check above can fail: host names are checked."""
    files = ensure_certificate(state, NAMES)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(files, "other-hub.local")
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
        handshake(files, "192.0.2.11")


def test_the_fingerprint_is_openssls(state: Path) -> None:
    files = ensure_certificate(state, NAMES)
    said = openssl("x509", "-in", str(files.cert), "-noout", "-fingerprint", "-sha256")
    assert fingerprint(files.cert) == said.strip().partition("=")[2]
    assert len(fingerprint(files.cert)) == 32 * 3 - 1


def test_no_fingerprint_of_a_file_without_a_certificate(tmp_path: Path) -> None:
    (tmp_path / "x.pem").write_text("hello\n")
    with pytest.raises(TlsError, match="holds no PEM certificate"):
        fingerprint(tmp_path / "x.pem")
    with pytest.raises(TlsError, match="cannot read"):
        fingerprint(tmp_path / "missing.pem")


def test_a_name_that_is_neither_a_host_nor_an_address_is_refused(state: Path) -> None:
    with pytest.raises(TlsError, match=r"'gate hub' is not a host name or an IP address"):
        ensure_certificate(state, ["localhost", "gate hub"])
    assert not state.exists()


# -- keeping it ----------------------------------------------------------------------------------


def test_a_second_call_reuses_the_pair(state: Path) -> None:
    first = ensure_certificate(state, NAMES)
    made = fingerprint(first.cert), first.key.read_bytes()
    again = ensure_certificate(state, list(reversed(NAMES)))
    assert again == first
    assert (fingerprint(again.cert), again.key.read_bytes()) == made


def test_reuse_needs_no_openssl(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    first = fingerprint(ensure_certificate(state, NAMES).cert)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    caplog.set_level(logging.WARNING, logger="scanner.hub.tls")
    assert fingerprint(ensure_certificate(state, NAMES).cert) == first
    assert "Cannot check the names" in caplog.text
    assert "openssl command is not installed" in caplog.text


def test_a_name_the_certificate_lacks_is_a_warning_not_a_new_certificate(
    state: Path, caplog
) -> None:
    files = ensure_certificate(state, ["localhost", "127.0.0.1"])
    made = fingerprint(files.cert)
    caplog.set_level(logging.WARNING, logger="scanner.hub.tls")
    ensure_certificate(state, ["localhost", "gate-hub.local", "127.0.0.1", "192.0.2.10"])
    assert fingerprint(files.cert) == made
    [record] = caplog.records
    message = record.getMessage()
    assert "does not name gate-hub.local, 192.0.2.10:" in message
    assert f"delete {files.cert} and {files.key}" in message
    caplog.clear()
    ensure_certificate(state, ["LOCALHOST", "127.0.0.1"])  # names compare as names do
    assert caplog.records == []


def test_ipv6_names_compare_as_addresses(state: Path, caplog) -> None:
    ensure_certificate(state, ["::1", "2001:db8::1"])
    caplog.set_level(logging.WARNING, logger="scanner.hub.tls")
    ensure_certificate(state, ["0:0:0:0:0:0:0:1", "[2001:DB8:0::1]"])
    assert caplog.records == []


@pytest.mark.parametrize("kept", ["hub-cert.pem", "hub-key.pem"])
def test_half_a_pair_is_made_anew(state: Path, kept: str, caplog) -> None:
    files = ensure_certificate(state, NAMES)
    made = fingerprint(files.cert)
    gone = files.key if kept == "hub-cert.pem" else files.cert
    gone.unlink()
    caplog.set_level(logging.WARNING, logger="scanner.hub.tls")
    again = ensure_certificate(state, NAMES)
    assert fingerprint(again.cert) != made
    assert f"{state / kept} is there without {gone}" in caplog.text
    handshake(again, "gate-hub.local")  # the new key is the new certificate's
    assert mode(again.key) == 0o600


def test_a_key_of_another_certificate_is_refused_not_replaced(state: Path, tmp_path: Path) -> None:
    files = ensure_certificate(state, NAMES)
    other = ensure_certificate(tmp_path / "other", NAMES)
    files.key.write_bytes(other.key.read_bytes())
    cert = files.cert.read_bytes()
    with pytest.raises(TlsError) as caught:
        ensure_certificate(state, NAMES)
    assert str(caught.value) == (
        f"{files.cert} and {files.key} cannot be used: the key is not this certificate's; "
        "delete both files to make a new pair"
    )
    assert files.cert.read_bytes() == cert


def test_a_damaged_certificate_is_refused(state: Path) -> None:
    files = ensure_certificate(state, NAMES)
    files.cert.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(TlsError, match="not a PEM certificate and an unencrypted PEM key"):
        ensure_certificate(state, NAMES)


def test_a_key_with_a_passphrase_is_refused_without_asking(state: Path) -> None:
    files = ensure_certificate(state, NAMES)
    encrypted = openssl("pkey", "-in", str(files.key), "-aes256", "-passout", "pass:secret")
    files.key.write_text(encrypted)
    with pytest.raises(TlsError, match="unencrypted PEM key"):
        ensure_certificate(state, NAMES)


# -- failures --------------------------------------------------------------------------------------


def test_no_openssl_is_one_clear_line(state: Path, fake_bin: Path) -> None:
    with pytest.raises(TlsError) as caught:
        ensure_certificate(state, NAMES)
    assert str(caught.value) == (
        "cannot make the hub's TLS certificate: the openssl command is not installed "
        "(apt install openssl)"
    )
    assert os.listdir(state) == []  # nothing half made


def test_an_openssl_failure_says_its_last_line_escaped(state: Path, fake_bin: Path) -> None:
    script(fake_bin, "openssl", "echo 'warming up' >&2; printf 'bad \\033[31mcurve\\n' >&2; exit 3")
    with pytest.raises(TlsError) as caught:
        ensure_certificate(state, NAMES)
    message = str(caught.value)
    assert message == (
        "cannot make the hub's TLS certificate: openssl genpkey failed (bad \\x1b[31mcurve)"
    )
    assert os.listdir(state) == []


@pytest.mark.parametrize("where", ["file", "file/state"])
def test_a_directory_that_cannot_be_written_is_one_line(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("not a directory\n")
    with pytest.raises(TlsError, match=rf"^cannot write into {tmp_path / where}: [^\n]+$"):
        ensure_certificate(tmp_path / where, NAMES)


# -- default names ---------------------------------------------------------------------------------


def test_default_names_hold_loopback_and_a_specific_listen_host() -> None:
    names = default_names("192.0.2.10")
    assert names[:4] == ["localhost", "127.0.0.1", "::1", "192.0.2.10"]
    assert len(names) == len(set(names))
    assert "0.0.0.0" not in default_names("0.0.0.0")
    assert "::" not in default_names("[::]")
    assert "gate-hub.local" in default_names("Gate-Hub.local")


def test_every_default_name_goes_into_a_certificate(state: Path) -> None:
    names = default_names("0.0.0.0")
    files = ensure_certificate(state, names)
    for name in names:
        handshake(files, name)


def test_default_names_from_the_resolver_ip_and_the_route(
    monkeypatch: pytest.MonkeyPatch, fake_bin: Path
) -> None:
    """Loopback (Debian's 127.0.1.1 for the host name) and link-local addresses are left out."""
    import socket

    def resolve(host: str, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        assert host == "gate-hub"
        stream = socket.SOCK_STREAM
        return [
            (socket.AF_INET, stream, 6, "gate-hub.venue.lan", ("127.0.1.1", 0)),
            (socket.AF_INET, stream, 6, "", ("192.168.1.20", 0)),
            (socket.AF_INET6, stream, 6, "", ("fe80::1", 0, 0, 2)),
        ]

    monkeypatch.setattr(socket, "gethostname", lambda: "gate-hub")
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    script(
        fake_bin,
        "ip",
        "echo '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever'\n"
        "echo '2: eth0    inet 10.1.2.3/24 brd 10.1.2.255 scope global eth0'\n"
        "echo '3: wlan0    inet 169.254.7.7/16 scope link wlan0'",
    )
    names = default_names("0.0.0.0")
    assert {"gate-hub", "gate-hub.venue.lan", "192.168.1.20", "10.1.2.3"} <= set(names)
    assert not {"127.0.1.1", "169.254.7.7", "fe80::1"} & set(names)


def test_default_names_never_raise(monkeypatch: pytest.MonkeyPatch, fake_bin: Path) -> None:
    import socket

    def fail(*args: object, **kwargs: object) -> object:
        raise OSError("no network today")

    monkeypatch.setattr(socket, "gethostname", fail)
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    script(fake_bin, "ip", "echo 'Cannot open netlink socket' >&2; exit 1")
    assert default_names("hub host")[:3] == ["localhost", "127.0.0.1", "::1"]


# -- the hub over HTTPS ----------------------------------------------------------------------------


@dataclass
class Hub:
    base_url: str
    api_key: str
    files: TlsFiles
    codes: dict[str, str]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """The project's server under uvicorn, HTTPS only, with the hub's own certificate."""
    state = tmp_path_factory.mktemp("hub")
    files = ensure_certificate(state, default_names("127.0.0.1"))
    db = state / "hub.sqlite3"
    key = create_key(db, name="kiosk", plan="pro")
    codes = seed_demo(db)
    with ServerThread(
        db, rate_limit=False, ssl_certfile=files.cert, ssl_keyfile=files.key
    ) as server:
        yield Hub(base_url=server.base_url, api_key=key, files=files, codes=codes)


def test_the_server_speaks_https_to_a_client_trusting_the_certificate(hub: Hub) -> None:
    assert hub.base_url.startswith("https://127.0.0.1:")
    headers = {"Authorization": f"Bearer {hub.api_key}"}
    trusting = ssl.create_default_context(cafile=str(hub.files.cert))  # httpx: verify=<str>
    answer = httpx.get(  # is deprecated
        f"{hub.base_url}/templates", headers=headers, verify=trusting, timeout=10
    )
    assert answer.status_code == 200, answer.text
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{hub.base_url}/templates", headers=headers, timeout=10)
    plain = hub.base_url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):  # no plain HTTP on the TLS port
        httpx.get(f"{plain}/templates", headers=headers, timeout=10)


async def test_the_kiosk_client_with_the_ca_file_validates_a_pass(hub: Hub) -> None:
    api = ApiConfig(base_url=hub.base_url, ca_file=hub.files.cert)
    async with PassQRClient.from_config(api, hub.api_key) as client:
        result = await client.validate(hub.codes["season"], idempotency_key="tls-1")
    assert result.admitted
    assert result.pass_ is not None and result.pass_.holder_name == "Grace Hopper"


async def test_the_kiosk_client_without_it_gets_a_network_fault(hub: Hub) -> None:
    async with PassQRClient(hub.base_url, hub.api_key) as client:
        with pytest.raises(NetworkError) as caught:
            await client.validate(hub.codes["season"], idempotency_key="tls-2")
    err = caught.value
    assert "certificate verify failed" in err.message
    assert not err.maybe_delivered  # never sent: no use counted
    assert failure_state(err) is ServerState.UNREACHABLE
    assert describe(err).startswith("server unreachable (cannot reach https://127.0.0.1:")


@pytest.mark.parametrize("trusted", [True, False])
async def test_a_kiosk_gate_over_https(hub: Hub, tmp_path: Path, caplog, trusted: bool) -> None:
    """The whole kiosk: trusting the hub it admits; not trusting it, the guest is told the
    scanner is offline (a fault of the link, never "invalid pass"), and nothing is logged
    with a traceback."""
    config = Config(
        api=ApiConfig(
            base_url=hub.base_url, ca_file=hub.files.cert if trusted else None, timeout_s=2.0
        ),
        gate=GateConfig(name="TLS gate", repeat_ignore_s=0.0),
        offline=OfflineConfig(policy="deny", sync_interval_s=3600),
        journal=JournalConfig(path=tmp_path / "journal.sqlite3"),
    )
    kiosk = Kiosk(config, api_key=hub.api_key, relay=NoRelay(pulse_ms=50), sources=[])
    await kiosk.start()
    try:
        code = hub.codes["season"]
        task = kiosk.gate.submit(RawScan(source="test", text=code, at=time.monotonic()))
        assert task is not None
        decision = await task
    finally:
        await kiosk.stop()
    if trusted:
        assert (decision.accepted, decision.reason) == (True, Reason.VALID)
        return
    assert (decision.accepted, decision.reason) == (False, Reason.OFFLINE)
    assert "certificate verify failed" in (decision.detail or "")
    assert not [r for r in caplog.records if r.exc_info]
    assert "Traceback" not in caplog.text
