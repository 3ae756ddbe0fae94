from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

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
        ("[offline]\nsync_interval_s = 1\n", r"between 10 and 604800 seconds"),
        ("[api]\nvalidate_per_min = 0\n", r"api.validate_per_min: must be between 1 and 100000"),
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


KEY = "pqr_live_" + "s3cr3tk3y" * 4
"""A well-formed key: no error may ever show it."""


def gate_config(tmp_path: Path, extra: str) -> Path:
    """A config with a good key file and journal, plus ``extra`` (root dotted keys or
    ``[[sources]]``); ``{tmp}`` in it is ``tmp_path``."""
    key = tmp_path / "api-key"
    key.write_text(KEY + "\n")
    key.chmod(0o600)
    (tmp_path / "not-a-cert.pem").write_text("hello, not a certificate\n")
    extra = extra.replace("{tmp}", str(tmp_path))
    head = ""
    if "api.key_file" not in extra:
        head += f'api.key_file = "{key}"\n'
    if "journal.path" not in extra:
        head += f'journal.path = "{tmp_path / "journal.sqlite3"}"\n'
    return write(tmp_path, head + extra)


def load_like_the_cli(path: Path) -> str:
    """What ``run`` does before it opens anything: the config, then the key."""
    return load_api_key(load_config(path), {})


NUL = "\\u0000"  # as TOML writes it

#: (id, extra config, what the one-line error must say); every one a ConfigError.
REFUSED = [
    # URLs that urllib or httpx cannot parse
    ("url-bad-ipv6", 'api.base_url = "http://[::1/api/v1"', r"api\.base_url: .*Invalid IPv6 URL"),
    ("url-port-99999", 'api.base_url = "http://127.0.0.1:99999/api/v1"', r"api\.base_url: .*port"),
    ("url-port-abc", 'api.base_url = "http://127.0.0.1:abc/api/v1"', r"api\.base_url: .*port"),
    ("url-port-0", 'api.base_url = "http://127.0.0.1:0/api/v1"', r"api\.base_url: .*port"),
    ("url-bad-idna", 'api.base_url = "https://\u00e4..example/api/v1"', r"api\.base_url: "),
    ("url-httpx-port", 'api.base_url = "https://[::1]x/api/v1"', r"api\.base_url: .*not a valid"),
    ("url-idna-2008", 'api.base_url = "https://a\u00b2.example/"', r"api\.base_url: .*not a valid"),
    ("url-space", 'api.base_url = "https://pass qr.com/api/v1"', r"api\.base_url: "),
    ("url-nul", f'api.base_url = "https://passqr.com/{NUL}"', r"api\.base_url: .*NUL"),
    # NaN and infinity, in every kind of table
    ("timeout-nan", "api.timeout_s = nan", r"api\.timeout_s: expected a finite number, got nan"),
    ("timeout-inf", "api.timeout_s = inf", r"api\.timeout_s: expected a finite number, got inf"),
    ("live-wait-inf", "api.live_wait_s = inf", r"api\.live_wait_s: expected a finite number"),
    ("repeat-nan", "gate.repeat_ignore_s = nan", r"gate\.repeat_ignore_s: expected a finite"),
    ("hold-inf", "gate.result_hold_s = -inf", r"gate\.result_hold_s: expected a finite"),
    ("sync-nan", "offline.sync_interval_s = nan", r"offline\.sync_interval_s: expected a finite"),
    (
        "serial-idle-nan",
        "[[sources]]\ntype = 'serial'\nport = '/dev/ttyACM0'\nidle_timeout_s = nan",
        r"sources\[0\]\.idle_timeout_s: expected a finite",
    ),
    (
        "simulated-interval-inf",
        "[[sources]]\ntype = 'simulated'\ncodes = ['A']\ninterval_s = inf",
        r"sources\[0\]\.interval_s: expected a finite",
    ),
    (
        "simulated-delay-nan",
        "[[sources]]\ntype = 'simulated'\ncodes = ['A']\nstart_delay_s = nan",
        r"sources\[0\]\.start_delay_s: expected a finite",
    ),
    (
        "camera-watchdog-inf",
        "[[sources]]\ntype = 'camera'\nwatchdog_s = inf",
        r"sources\[0\]\.watchdog_s: expected a finite",
    ),
    # numbers out of their range
    ("timeout-zero", "api.timeout_s = 0", r"api\.timeout_s: must be"),
    ("timeout-huge", "api.timeout_s = 1e300", r"api\.timeout_s: must be"),
    ("live-wait-negative", "api.live_wait_s = -1", r"api\.live_wait_s: must be"),
    ("per-min-zero", "api.read_per_min = 0", r"api\.read_per_min: must be"),
    ("per-min-huge", "api.write_per_min = 10_000_000_000", r"api\.write_per_min: must be"),
    ("repeat-negative", "gate.repeat_ignore_s = -1", r"gate\.repeat_ignore_s: must be"),
    ("hold-huge", "gate.result_hold_s = 1e12", r"gate\.result_hold_s: must be"),
    ("sync-huge", "offline.sync_interval_s = 1e300", r"offline\.sync_interval_s: must be"),
    (
        "serial-baud-negative",
        "[[sources]]\ntype = 'serial'\nport = '/dev/ttyACM0'\nbaudrate = -9600",
        r"sources\[0\]\.baudrate: must be",
    ),
    (
        "serial-idle-negative",
        "[[sources]]\ntype = 'serial'\nport = '/dev/ttyACM0'\nidle_timeout_s = -0.5",
        r"sources\[0\]\.idle_timeout_s: must be",
    ),
    (
        "simulated-interval-negative",
        "[[sources]]\ntype = 'simulated'\ncodes = ['A']\ninterval_s = -2",
        r"sources\[0\]\.interval_s: must be",
    ),
    ("camera-fps-0", "[[sources]]\ntype = 'camera'\nfps = 0", r"sources\[0\]\.fps: must be"),
    ("camera-width", "[[sources]]\ntype = 'camera'\nwidth = -1", r"sources\[0\]\.width: must be"),
    (
        "camera-height",
        "[[sources]]\ntype = 'camera'\nheight = 100_000",
        r"sources\[0\]\.height: must be",
    ),
    ("camera-index", "[[sources]]\ntype = 'camera'\ndevice = -1", r"sources\[0\]\.device: must be"),
    (
        "camera-watchdog-0",
        "[[sources]]\ntype = 'camera'\nwatchdog_s = 0",
        r"sources\[0\]\.watchdog_s: must be",
    ),
    ("pulse-0", "relay.pulse_ms = 0", r"relay\.pulse_ms: must be between 10 and 60000"),
    ("pulse-huge", "relay.pulse_ms = 99_999_999_999", r"relay\.pulse_ms: must be between"),
    ("relay-baud-0", "relay.baudrate = 0", r"relay\.baudrate: must be"),
    ("relay-delay-negative", "relay.open_delay_ms = -1", r"relay\.open_delay_ms: must be"),
    ("relay-channel-negative", "relay.channel = -1", r"relay\.channel: must be"),
    ("metrics-port-99999", 'metrics.listen = "127.0.0.1:99999"', r"metrics\.listen: .*port"),
    ("metrics-port-abc", 'metrics.listen = "127.0.0.1:abc"', r"metrics\.listen: "),
    ("metrics-port-digit", 'metrics.listen = "127.0.0.1:\u00b2"', r"metrics\.listen: "),
    ("metrics-bad-host", f'metrics.listen = "{"a" * 64}:9108"', r"metrics\.listen: .*host"),
    # NUL in every path, port and string
    ("key-file-nul", f'api.key_file = "/etc/k{NUL}ey"', r"api\.key_file: .*NUL"),
    ("journal-nul", f'journal.path = "/var/lib/j{NUL}.sqlite3"', r"journal\.path: .*NUL"),
    ("ca-file-nul", f'api.ca_file = "/etc/ca{NUL}.pem"', r"api\.ca_file: .*NUL"),
    (
        "serial-port-nul",
        f'[[sources]]\ntype = "serial"\nport = "/dev/ttyACM0{NUL}"',
        r"sources\[0\]\.port: .*NUL",
    ),
    (
        "evdev-nul",
        f'[[sources]]\ntype = "evdev"\ndevice = "/dev/input/event0{NUL}"',
        r"sources\[0\]\.device: .*NUL",
    ),
    (
        "camera-nul",
        f'[[sources]]\ntype = "camera"\ndevice = "/dev/video0{NUL}"',
        r"sources\[0\]\.device: .*NUL",
    ),
    (
        "relay-port-nul",
        f'relay.type = "lcus"\nrelay.port = "/dev/ttyUSB0{NUL}"',
        r"relay\.port: .*NUL",
    ),
    ("metrics-nul", f'metrics.listen = "127.0.0.1{NUL}:9108"', r"metrics\.listen: .*NUL"),
    ("gate-name-nul", f'gate.name = "North{NUL}"', r"gate\.name: .*NUL"),
    # paths that cannot be used
    ("key-file-no-user", 'api.key_file = "~nosuchuser-passqr/api-key"', r"api\.key_file: "),
    ("ca-file-missing", 'api.ca_file = "{tmp}/missing.pem"', r"api\.ca_file: .*missing\.pem"),
    ("ca-file-not-a-cert", 'api.ca_file = "{tmp}/not-a-cert.pem"', r"api\.ca_file: .*not-a-cert"),
    ("ca-file-a-directory", 'api.ca_file = "{tmp}"', r"api\.ca_file: "),
    # relay commands Python's str.format cannot fill in
    (
        "relay-command-attribute",
        'relay.type = "ascii"\nrelay.port = "/dev/x"\n'
        'relay.on_command = "{channel.x}"\nrelay.off_command = "off"',
        r"relay\.on_command: ",
    ),
    (
        "relay-command-index",
        'relay.type = "ascii"\nrelay.port = "/dev/x"\n'
        'relay.on_command = "on"\nrelay.off_command = "{channel[0]}"',
        r"relay\.off_command: ",
    ),
]


@pytest.mark.parametrize(("extra", "match"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_every_config_error_is_one_clear_line(tmp_path: Path, extra: str, match: str) -> None:
    path = gate_config(tmp_path, extra)
    with pytest.raises(ConfigError, match=match) as info:
        load_like_the_cli(path)
    message = str(info.value)
    assert str(path) in message
    assert "\n" not in message
    assert "s3cr3tk3y" not in message


def test_an_api_key_inside_a_bad_url_is_not_shown(tmp_path: Path) -> None:
    path = gate_config(tmp_path, f'api.base_url = "https://{KEY}@[::1/api/v1"')
    with pytest.raises(ConfigError, match=r"api\.base_url") as info:
        load_like_the_cli(path)
    assert "s3cr3tk3y" not in str(info.value)


def test_a_toml_file_nested_too_deeply_is_a_config_error(tmp_path: Path) -> None:
    depth = sys.getrecursionlimit() * 2
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "a = " + "[" * depth + "]" * depth + "\n"))


def test_a_good_ca_file_loads(tmp_path: Path) -> None:
    import certifi

    path = gate_config(tmp_path, f'api.ca_file = "{certifi.where()}"')
    assert load_config(path).api.ca_file == Path(certifi.where())


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = gate_config(tmp_path, "")
    key_file = tmp_path / "api-key"
    key_file.chmod(mode)
    with pytest.raises(ConfigError) as info:
        load_like_the_cli(path)
    message = str(info.value)
    assert message.startswith(f"api.key_file {key_file}: readable by other users")
    assert message.endswith(f"chmod 600 {key_file}")
    assert "s3cr3tk3y" not in message
    assert "\n" not in message


def test_a_key_file_that_is_not_text_is_refused(tmp_path: Path) -> None:
    path = gate_config(tmp_path, "")
    (tmp_path / "api-key").write_bytes(b"pqr_live_\xff\xfe" + KEY.encode())
    with pytest.raises(ConfigError, match="not UTF-8 text") as info:
        load_like_the_cli(path)
    assert "s3cr3tk3y" not in str(info.value)


def test_a_key_file_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    path = gate_config(tmp_path, f'api.key_file = "{tmp_path}"')
    with pytest.raises(ConfigError, match="api.key_file .*: not a regular file"):
        load_like_the_cli(path)


def test_the_systemd_credential_and_the_environment_need_no_mode(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "api-key").write_text(KEY)
    (creds / "api-key").chmod(0o644)
    config = parse_config({})
    assert load_api_key(config, {"CREDENTIALS_DIRECTORY": str(creds)}) == KEY
    assert load_api_key(config, {"PASSQR_API_KEY": KEY}) == KEY


#: Every rule ``parse_config`` applies beyond a field's type and range, one case each.
RULES = [
    ("staff-pin-empty", {"staff": {"pin": "  "}}, r"staff\.pin: an empty PIN"),
    ("staff-pin", {"staff": {"pin": "2468"}}, None),
    ("relay-needs-a-port", {"relay": {"type": "numato"}}, r"relay\.port: required for"),
    (
        "lcus-channel-9",
        {"relay": {"type": "lcus", "port": "/dev/x", "channel": 9}},
        r"relay\.channel: lcus boards have channels 1 to 8",
    ),
    (
        "numato-channel-33",
        {"relay": {"type": "numato", "port": "/dev/x", "channel": 33}},
        r"numato boards have channels 1 to 32",
    ),
    (
        "hw667-channel-2",
        {"relay": {"type": "hw667", "port": "/dev/x", "channel": 2}},
        r"hw667 boards have channels 1 to 1",
    ),
    (
        "ascii-channel-0",
        {
            "relay": {
                "type": "ascii",
                "port": "p",
                "channel": 0,
                "on_command": "a",
                "off_command": "b",
            }
        },
        None,
    ),
    (
        "ascii-needs-commands",
        {"relay": {"type": "ascii", "port": "/dev/x", "off_command": "off"}},
        r"relay\.on_command: required for relay type 'ascii'",
    ),
    (
        "hex-not-hex",
        {"relay": {"type": "hex", "port": "/dev/x", "on_command": "zz", "off_command": "00"}},
        r"relay\.on_command: relay command 'zz' is not hex bytes",
    ),
    (
        "commands-on-a-board",
        {"relay": {"type": "lcus", "port": "/dev/x", "off_command": "x"}},
        r"relay\.on_command: only relay types 'ascii' and 'hex' take commands",
    ),
    (
        "two-keyboards",
        {"sources": [{"type": "keyboard"}, {"type": "keyboard", "name": "b"}]},
        r"sources: only one keyboard source can exist",
    ),
    (
        "synthetic-option",
        {"sources": [{"type": "camera", "device": "synthetic?speed=2"}]},
        r"sources\[0\]\.device: camera device 'synthetic\?speed=2': option 'speed' is unknown",
    ),
    (
        "synthetic-value",
        {"sources": [{"type": "camera", "device": "synthetic?loop=maybe"}]},
        r"sources\[0\]\.device: .*'maybe' is not true or false",
    ),
    (
        "url-space",
        {"api": {"base_url": "https://passqr.com/api v1"}},
        r"api\.base_url: .* contains spaces",
    ),
    ("url-port-0", {"api": {"base_url": "https://passqr.com:0/api"}}, r"port must be a number"),
    ("url-bad-host", {"api": {"base_url": "https://a..b/api"}}, r"not a valid host name"),
    ("metrics-listen", {"metrics": {"listen": "9108"}}, r"metrics\.listen: '9108' is not host"),
]


@pytest.mark.parametrize(("table", "match"), [c[1:] for c in RULES], ids=[c[0] for c in RULES])
def test_every_rule_beyond_the_fields(table: dict[str, Any], match: str | None) -> None:
    if match is None:
        assert parse_config(table)
        return
    with pytest.raises(ConfigError, match=match):
        parse_config(table)


def test_the_staff_pin_is_read_from_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[staff]\npin = "2468"\n'))
    assert config.staff.pin == "2468"
    assert load_config(write(tmp_path, "")).staff.pin is None
