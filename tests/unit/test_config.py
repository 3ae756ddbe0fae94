from __future__ import annotations

import os
from pathlib import Path

import pytest

from scanner.config import (
    KeyboardSourceConfig,
    SerialSourceConfig,
    load_api_key,
    load_config,
    parse_config,
)
from scanner.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scanner.toml"
    path.write_text(text)
    return path


def test_the_shipped_example_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.api.base_url.startswith("https://")
    assert config.gate.repeat_ignore_s == 3.0
    assert config.offline.policy == "deny"
    assert isinstance(config.sources[0], SerialSourceConfig)
    assert isinstance(config.sources[1], KeyboardSourceConfig)
    assert config.relay.type == "lcus"
    assert config.relay.pulse_ms == 1000


def test_unknown_key_names_file_key_and_suggestion(tmp_path: Path) -> None:
    path = write(tmp_path, '[gate]\nname = "x"\nrepeat_ignore = 3\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    assert "gate.repeat_ignore" in message
    assert "did you mean 'repeat_ignore_s'" in message


def test_unknown_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'relay'"):
        load_config(write(tmp_path, "[relais]\ntype = 'none'\n"))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[api]\ntimeout_s = 'fast'\n", r"api.timeout_s: expected float"),
        ("[gate]\nrepeat_ignore_s = true\n", r"gate.repeat_ignore_s: expected float"),
        (
            "[relay]\ntype = 'lcus'\nport = '/dev/x'\nchannel = '1'\n",
            r"relay.channel: expected int",
        ),
        ("[relay]\ntype = 'sonoff'\n", r"relay.type: expected 'none' \| 'lcus'"),
        ("[relay]\ntype = 'lcus'\n", r"relay.port: required"),
        ("[[sources]]\ntype = 'serial'\n", r"sources\[0\].port: required key is missing"),
        ("[[sources]]\ntype = 'seriall'\nport = 'x'\n", r"did you mean 'serial'"),
        ("[[sources]]\ntype = 'serial'\nport = 'x'\nbaud = 9600\n", r"did you mean 'baudrate'"),
        ("[offline]\nsync_interval_s = 1\n", r"at least 10 seconds"),
        ("[api]\nvalidate_per_min = 0\n", r"api.validate_per_min: must be at least 1"),
        ("[offline]\npolicy = 'open'\n", r"offline.policy: expected"),
        ("[api]\nbase_url = 'http://passqr.example.com/api/v1'\n", r"unencrypted"),
        ("[api]\nbase_url = 'ftp://x'\n", r"not an http"),
        ("sources = 3\n", r"expected \[\[sources\]\]"),
        ("[gate]\nname = 'a'\n[gate.extra]\n", r"gate.extra: unknown key"),
    ],
)
def test_wrong_values_are_refused_with_the_key(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[gate\n"))
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "missing.toml")


def test_http_allowed_for_loopback_and_when_explicit() -> None:
    assert parse_config({"api": {"base_url": "http://127.0.0.1:8787/api/v1"}})
    assert parse_config({"api": {"base_url": "http://[::1]:8787/api/v1"}})
    assert parse_config({"api": {"base_url": "http://localhost/api/v1"}})
    assert parse_config(
        {"api": {"base_url": "http://10.0.0.5/api/v1", "allow_insecure_http": True}}
    )


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[journal]\npath = 'data/j.sqlite3'\n"))
    assert config.journal.path == tmp_path / "data" / "j.sqlite3"


def test_api_key_sources_in_order(tmp_path: Path) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("pqr_live_fromfile\n")
    key_file.chmod(0o600)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api-key").write_text("pqr_live_fromcredential")
    with_file = parse_config({"api": {"key_file": str(key_file)}})
    without_file = parse_config({})
    env = {"PASSQR_API_KEY": "pqr_live_fromenv", "CREDENTIALS_DIRECTORY": str(creds)}
    assert load_api_key(with_file, env) == "pqr_live_fromenv"
    creds_env = {"CREDENTIALS_DIRECTORY": str(creds)}
    assert load_api_key(with_file, creds_env) == "pqr_live_fromcredential"
    assert load_api_key(with_file, {}) == "pqr_live_fromfile"
    assert load_api_key(without_file, creds_env) == "pqr_live_fromcredential"
    with pytest.raises(ConfigError, match="no API key"):
        load_api_key(without_file, {})


def test_api_key_errors_never_show_the_key(tmp_path: Path) -> None:
    bad = "pqr_live_has space inside"
    with pytest.raises(ConfigError) as info:
        load_api_key(parse_config({}), {"PASSQR_API_KEY": bad})
    assert "has space" not in str(info.value)
    with pytest.raises(ConfigError, match="does not look like"):
        load_api_key(parse_config({}), {"PASSQR_API_KEY": "sk_live_abc"})
    missing = parse_config({"api": {"key_file": str(tmp_path / "nope")}})
    with pytest.raises(ConfigError, match="cannot read the API key"):
        load_api_key(missing, {})


def test_world_readable_key_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key_file = tmp_path / "api-key"
    key_file.write_text("pqr_live_" + "a" * 32)
    os.chmod(key_file, 0o644)
    load_api_key(parse_config({"api": {"key_file": str(key_file)}}), {})
    assert "readable by other users" in caplog.text
    assert "a" * 32 not in caplog.text
