"""`passqr-scanner hub ...` run as an operator would, as a subprocess."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scanner.server import ServerThread, create_key, seed_demo
from tests.support.venue import wait_until

ROOT = Path(__file__).resolve().parents[2]
KEY_RE = re.compile(r"pqr_live_[A-Za-z0-9]{40}")


def hub(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v for k, v in os.environ.items() if k not in ("PASSQR_API_KEY", "CREDENTIALS_DIRECTORY")
    }
    return subprocess.run(
        [sys.executable, "-m", "scanner", "hub", *args],
        cwd=ROOT,
        env={**clean, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.toml"
    path.write_text(text)
    return path


def _config_at(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_gate_key_before_the_first_run_prints_the_key_alone(tmp_path: Path) -> None:
    config = _config(tmp_path, '[hub]\ndb = "state/hub.sqlite3"\n')
    result = hub("gate-key", "--config", str(config), "--name", "north-1")
    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert KEY_RE.fullmatch(key)
    assert result.stdout == key + "\n"
    assert "north-1" in result.stderr
    assert "validates and reads" in result.stderr
    db = tmp_path / "state" / "hub.sqlite3"
    assert db.exists()  # relative to the config file's directory
    stored = b"".join(p.read_bytes() for p in db.parent.iterdir() if p.is_file())
    assert key.encode() not in stored  # only its hash
    staff = hub("gate-key", "--config", str(config), "--name", "office", "--role", "staff")
    assert staff.returncode == 0, staff.stderr
    assert "validates, reads and writes" in staff.stderr


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[hub]\nlisten = 8790\n", "hub.listen: expected str"),
        ('[hub]\nlisten = "0.0.0.0:8790"\ntls = "off"\n', "hub.tls: plain HTTP"),
        ('[upstream]\nbase_url = "http://passqr.example/api/v1"\n', "upstream.allow_insecure_http"),
        ("[upstream]\nvalidate_per_min = 0\n", "upstream.validate_per_min"),
        ("[upstream]\nsync_interval_s = nan\n", "upstream.sync_interval_s"),
        ("[upstrem]\n", "did you mean 'upstream'"),
        ('[hub]\ntls_cert = "/x.pem"\n', "tls_cert and tls_key go together"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_a_bad_config_is_one_line_and_exit_78(tmp_path: Path, text: str, fragment: str) -> None:
    config = _config(tmp_path, text)
    for args in (("run",), ("gate-key", "--name", "north-1")):
        result = hub(*args, "--config", str(config), env={"PASSQR_API_KEY": "pqr_live_" + "a" * 40})
        assert result.returncode == 78, result.stderr
        assert result.stdout == ""
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert fragment in result.stderr


def test_no_upstream_key_is_exit_78_and_names_the_places(tmp_path: Path) -> None:
    config = _config(tmp_path, "[upstream]\n")
    result = hub("run", "--config", str(config))
    assert result.returncode == 78
    assert "PASSQR_API_KEY" in result.stderr
    assert "upstream.key_file" in result.stderr


def test_hub_run_serves_gates_until_sigterm(tmp_path: Path) -> None:
    up_db = tmp_path / "passqr.sqlite3"
    up_key = create_key(up_db, name="venue", plan="pro")
    codes = seed_demo(up_db)
    port = _free_port()
    key_file = tmp_path / "api-key"
    key_file.write_text(up_key + "\n")
    key_file.chmod(0o600)
    with ServerThread(up_db, rate_limit=False) as upstream:
        config = _config(
            tmp_path,
            f'[upstream]\nbase_url = "{upstream.base_url}"\nkey_file = "api-key"\n'
            f'[hub]\nlisten = "127.0.0.1:{port}"\n',
        )
        gate = hub("gate-key", "--config", str(config), "--name", "north-1").stdout.strip()
        process = subprocess.Popen(
            [sys.executable, "-m", "scanner", "hub", "run", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            auth = {"Authorization": f"Bearer {gate}"}

            def synced() -> bool:
                try:
                    answer = httpx.get(f"{base}/hub/status", headers=auth, timeout=2)
                except httpx.HTTPError:
                    return False
                return (
                    answer.status_code == 200 and answer.json()["upstream"]["last_sync"] is not None
                )

            wait_until(synced, within_s=30)
            answer = httpx.post(
                f"{base}/api/v1/validate", json={"code": codes["valid"]}, headers=auth, timeout=5
            )
            assert answer.json()["data"]["result"] == "valid"
            assert (tmp_path / "hub.sqlite3").exists()  # the default db, beside the config
            # A second hub on the same database would forward every admission twice.
            other = _config_at(
                tmp_path / "other.toml",
                config.read_text()
                .replace(f"127.0.0.1:{port}", f"127.0.0.1:{_free_port()}")
                .replace('key_file = "api-key"', f'key_file = "{key_file}"')
                + "",
            )
            second = hub("run", "--config", str(other))
            assert second.returncode == 1, second.stderr
            assert "in use by another running hub" in second.stderr
            assert len(second.stderr.strip().splitlines()) == 1, second.stderr
        finally:
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "Traceback" not in err
        assert up_key not in err
        assert gate not in err
        assert "hub" in err.lower()


def test_keys_are_listed_without_secrets_and_a_stolen_gates_keys_revoked(tmp_path: Path) -> None:
    from scanner.hub.tables import create_hub_key

    config = _config(tmp_path, '[hub]\ndb = "hub.sqlite3"\n')
    stolen = hub("gate-key", "--config", str(config), "--name", "south-2").stdout.strip()
    kept = hub("gate-key", "--config", str(config), "--name", "north-1").stdout.strip()
    create_hub_key(tmp_path / "hub.sqlite3", name="south-2", role="gate")  # a second key, same gate
    listing = hub("keys", "--config", str(config))
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        ["north-1", "gate"],
        ["south-2", "gate"],
        ["south-2", "gate"],
    ]
    assert stolen not in listing.stdout
    assert kept not in listing.stdout
    revoked = hub("revoke-key", "--config", str(config), "--name", "south-2")
    assert revoked.returncode == 0, revoked.stderr
    assert "Revoked 2 key(s)" in revoked.stderr
    after = hub("keys", "--config", str(config)).stdout.splitlines()
    assert [line.split("\t")[0] for line in after] == ["north-1"]
    again = hub("revoke-key", "--config", str(config), "--name", "south-2")
    assert again.returncode == 1
    assert "no key named" in again.stderr


def test_hub_run_with_tls_serves_https_with_its_own_certificate(tmp_path: Path) -> None:
    import ssl

    up_db = tmp_path / "passqr.sqlite3"
    up_key = create_key(up_db, name="venue", plan="pro")
    port = _free_port()
    with ServerThread(up_db, rate_limit=False) as upstream:
        config = _config(
            tmp_path,
            f'[upstream]\nbase_url = "{upstream.base_url}"\n'
            f'[hub]\nlisten = "127.0.0.1:{port}"\ndb = "state/hub.sqlite3"\ntls = "on"\n',
        )
        gate = hub("gate-key", "--config", str(config), "--name", "north-1").stdout.strip()
        process = subprocess.Popen(
            [sys.executable, "-m", "scanner", "hub", "run", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "PASSQR_API_KEY": up_key},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            cert = tmp_path / "state" / "hub-cert.pem"
            wait_until(cert.exists, within_s=30)
            trust = ssl.create_default_context(cafile=str(cert))
            auth = {"Authorization": f"Bearer {gate}"}

            def answers() -> bool:
                try:
                    got = httpx.get(
                        f"https://127.0.0.1:{port}/hub/status", headers=auth, verify=trust
                    )
                except httpx.ConnectError:
                    return False
                return got.status_code == 200

            wait_until(answers, within_s=30)
            with pytest.raises(httpx.HTTPError):
                httpx.get(f"http://127.0.0.1:{port}/hub/status", headers=auth, timeout=3)
            with pytest.raises(httpx.ConnectError):  # not trusted without the hub's cert
                httpx.get(f"https://127.0.0.1:{port}/hub/status", headers=auth)
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=30)
        assert process.returncode == 0, err
        assert "PassQR venue hub on https://127.0.0.1" in err
        assert "SHA-256" in err
        assert oct((tmp_path / "state" / "hub-key.pem").stat().st_mode & 0o777) == "0o600"
