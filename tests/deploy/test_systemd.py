"""The systemd units pass ``systemd-analyze verify`` and the udev rules parse.

``verify`` insists that ExecStart= binaries exist, so it runs on copies whose
``/opt/passqr-scanner/.venv/bin/passqr-scanner`` points at this checkout's
virtual environment. It needs no running systemd (PID 1 may be anything), only
the ``systemd`` package: ``apt-get install systemd``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "systemd"
UNITS = (
    "passqr-scanner.service",
    "passqr-scanner-headless.service",
    "passqr-server.service",
    "passqr-hub.service",
)
INSTALLED = "/opt/passqr-scanner/.venv/bin/passqr-scanner"
RULES = SYSTEMD / "99-passqr-scanner.rules"


def _program() -> Path:
    program = Path(sys.executable).parent / "passqr-scanner"
    assert program.exists(), f"{program} missing: pip install -e . into the venv"
    return program


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    return found


@pytest.fixture(scope="module")
def units(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Copies of the units with the install path rewritten to this venv's program."""
    out = tmp_path_factory.mktemp("units")
    program = str(_program())
    copies: dict[str, Path] = {}
    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        assert INSTALLED in text, f"{name} does not run {INSTALLED}"
        copy = out / name
        copy.write_text(text.replace(INSTALLED, program))
        copies[name] = copy
    return copies


def _about_us(output: str, units: dict[str, Path]) -> list[str]:
    names = [*units, *(str(p) for p in units.values())]
    return [line for line in output.splitlines() if any(n in line for n in names)]


def test_verify_reports_nothing_about_our_units(units: dict[str, Path]) -> None:
    analyze = _analyze()
    proc = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, units.values())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = _about_us(proc.stdout + proc.stderr, units)
    assert complaints == [], "\n".join(complaints)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_verify_would_catch_a_mistake(units: dict[str, Path], tmp_path: Path) -> None:
    """The check above can fail: a misspelt directive and a missing binary are reported."""
    analyze = _analyze()
    broken = tmp_path / "passqr-scanner.service"
    text = units["passqr-scanner.service"].read_text()
    text = text.replace("ProtectHome=yes", "ProtectHomme=yes").replace(
        str(_program()), "/nonexistent/passqr-scanner"
    )
    broken.write_text(text)
    proc = subprocess.run(
        [analyze, "verify", "--man=no", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    complaints = _about_us(proc.stdout + proc.stderr, {broken.name: broken})
    assert any("ProtectHomme" in line for line in complaints), proc.stderr
    assert any("/nonexistent/passqr-scanner" in line for line in complaints), proc.stderr


def test_security_exposure_is_low(units: dict[str, Path]) -> None:
    analyze = _analyze()
    for name in ("passqr-scanner.service", "passqr-server.service", "passqr-hub.service"):
        proc = subprocess.run(
            [analyze, "security", "--offline=yes", str(units[name])],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", proc.stdout)
        assert match, proc.stdout + proc.stderr
        assert float(match[1]) <= 2.5, proc.stdout


def _directives(name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            out.setdefault(key, []).append(value)
    return out


def test_the_kiosk_keeps_what_a_gate_needs() -> None:
    """Hardening that would break a real kiosk is easy to add by accident: pin the needs."""
    unit = _directives("passqr-scanner.service")
    assert unit["Type"] == ["notify"]
    assert unit["NotifyAccess"] == ["main"]
    assert unit["Restart"] == ["always"]
    assert "WatchdogSec" in unit
    assert unit["TTYPath"] == ["/dev/tty1"]
    for stream in ("StandardInput", "StandardOutput", "StandardError"):
        assert unit[stream] == ["tty"]
    assert "getty@tty1.service" in unit["Conflicts"][0]
    assert "PrivateDevices" not in unit  # it would hide the serial ports, cameras and inputs
    assert "PrivateUsers" not in unit  # it would hide the dialout/video/input groups
    allowed = " | ".join(unit["DeviceAllow"])
    for device in ("char-ttyUSB rw", "char-ttyACM rw", "char-video4linux rw", "char-input r"):
        assert device in allowed
    assert set(unit["SupplementaryGroups"][0].split()) >= {"dialout", "video", "input"}
    assert unit["StateDirectory"] == ["passqr-scanner"]
    assert unit["LoadCredential"] == ["api-key:/etc/passqr-scanner/api-key"]
    assert "AF_INET" in unit["RestrictAddressFamilies"][0].split()
    assert "AF_UNIX" in unit["RestrictAddressFamilies"][0].split()  # journald, sd_notify
    assert any("relay off" in cmd for cmd in unit["ExecStopPost"])


def test_the_headless_unit_logs_to_the_journal() -> None:
    unit = _directives("passqr-scanner-headless.service")
    assert unit["StandardOutput"] == ["journal"]
    assert "--headless" in unit["ExecStart"][0]
    assert any("relay off" in cmd for cmd in unit["ExecStopPost"])
    assert "TTYPath" not in unit


def test_the_server_unit() -> None:
    unit = _directives("passqr-server.service")
    assert unit["Type"] == ["exec"]  # uvicorn sends no READY=1
    assert "--db /var/lib/passqr-server/passqr.sqlite3" in unit["ExecStart"][0]
    assert unit["StateDirectory"] == ["passqr-server"]


def test_the_hub_unit() -> None:
    unit = _directives("passqr-hub.service")
    assert unit["ExecStart"] == [f"{INSTALLED} hub run --config /etc/passqr-hub/hub.toml"]
    assert unit["Type"] == ["exec"]  # uvicorn sends no READY=1
    assert unit["Restart"] == ["on-failure"]
    assert unit["RestartPreventExitStatus"] == ["78"]  # a bad config is not retried forever
    assert unit["User"] == unit["Group"] == ["passqr-hub"]
    assert unit["StateDirectory"] == ["passqr-hub"]  # the database and the certificate
    assert unit["LoadCredential"] == ["api-key:/etc/passqr-hub/api-key"]
    assert "network-online.target" in unit["After"][0].split()
    assert set(unit["RestrictAddressFamilies"][0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert "PrivateNetwork" not in unit  # it serves the kiosks on the LAN


def _covers(setting: str, target: str) -> bool:
    """One of a path setting's paths (``-``/``+`` prefixes and ``:options`` aside) is
    ``target`` or a directory above it."""
    for item in setting.split():
        path = item.lstrip("-+").split(":")[0].rstrip("/")
        if target == path or target.startswith(path + "/"):
            return True
    return False


def test_the_hub_may_run_openssl() -> None:
    """The hub makes its certificate with /usr/bin/openssl: no path setting may stop that."""
    unit = _directives("passqr-hub.service")
    for key in ("NoExecPaths", "InaccessiblePaths", "TemporaryFileSystem"):
        for value in unit.get(key, []):
            assert not _covers(value, "/usr/bin/openssl"), f"{key}={value}"
    for value in unit.get("ExecPaths", []):
        assert _covers(value, "/usr/bin/openssl"), f"ExecPaths={value}"
    assert unit["ProtectSystem"] == ["strict"]  # read-only, still executable


@pytest.mark.parametrize(
    ("setting", "covered"),
    [("/usr/bin/openssl", True), ("-/usr/", True), ("/", True), ("/usr/sbin /opt", False)],
)
def test_the_path_check_can_fail(setting: str, covered: bool) -> None:
    assert _covers(setting, "/usr/bin/openssl") is covered


# -- udev rules ------------------------------------------------------------------------------
#
# `udevadm verify` exists from systemd 254; Debian 12 has 252. So: the syntax, key by key,
# as udev's rules parser (src/udev/udev-rules.c) reads it.

_MATCH_ONLY = {
    "ACTION", "DEVPATH", "KERNEL", "KERNELS", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER", "DRIVERS",
    "ATTRS", "TAGS", "TEST", "PROGRAM", "RESULT", "CONST",
}  # fmt: skip
_ASSIGN_ONLY = {"OWNER", "GROUP", "MODE", "RUN", "LABEL", "GOTO", "OPTIONS", "SECLABEL", "IMPORT"}
_EITHER = {"NAME", "SYMLINK", "ATTR", "SYSCTL", "ENV", "TAG"}
_WITH_ATTRIBUTE = {"ATTR", "ATTRS", "ENV", "TEST", "SYSCTL", "CONST", "SECLABEL", "IMPORT", "RUN"}
_TOKEN = re.compile(
    r'\s*(?P<key>[A-Z]+)(?:\{(?P<attr>[^}]*)\})?\s*(?P<op>==|!=|\+=|-=|:=|=)\s*"(?P<value>[^"]*)"'
    r"\s*(?P<sep>,|$)"
)


def parse_rule(line: str) -> list[tuple[str, str | None, str, str]]:
    """(key, attribute, operator, value) per token; raises ValueError on bad syntax."""
    tokens: list[tuple[str, str | None, str, str]] = []
    pos = 0
    while pos < len(line):
        match = _TOKEN.match(line, pos)
        if not match:
            raise ValueError(f"cannot parse at column {pos}: {line[pos:]!r}")
        key, attr, op, value = match["key"], match["attr"], match["op"], match["value"]
        if key not in _MATCH_ONLY | _ASSIGN_ONLY | _EITHER:
            raise ValueError(f"unknown key {key}")
        if (attr is not None) != (key in _WITH_ATTRIBUTE) and key not in ("IMPORT", "RUN"):
            raise ValueError(f"{key} {'needs' if attr is None else 'takes no'} {{attribute}}")
        matching = op in ("==", "!=")
        if key in _MATCH_ONLY and not matching:
            raise ValueError(f"{key} can only be matched (==, !=), not assigned with {op}")
        if key in _ASSIGN_ONLY and matching:
            raise ValueError(f"{key} can only be assigned, not matched with {op}")
        if key in ("MODE",) and not re.fullmatch(r"0?[0-7]{3}", value):
            raise ValueError(f"MODE {value!r} is not octal")
        tokens.append((key, attr, op, value))
        pos = match.end()
        if match["sep"] == "" and pos < len(line):
            raise ValueError(f"missing comma at column {pos}")
    return tokens


def rules() -> list[list[tuple[str, str | None, str, str]]]:
    out = []
    for number, line in enumerate(RULES.read_text().splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        assert not stripped.endswith("\\"), f"line {number}: continuation lines are fragile"
        try:
            out.append(parse_rule(stripped))
        except ValueError as err:
            pytest.fail(f"{RULES.name}:{number}: {err}")
    return out


def test_udev_rules_parse() -> None:
    parsed = rules()
    labels = {v for rule in parsed for k, _, _, v in rule if k == "LABEL"}
    gotos = {v for rule in parsed for k, _, _, v in rule if k == "GOTO"}
    assert gotos <= labels
    assert len(parsed) >= 5


def test_udev_rules_name_the_devices_and_keep_modemmanager_off() -> None:
    by_link: dict[str, list[dict[str, str]]] = {}
    for rule in rules():
        fields = {(k + (f"{{{a}}}" if a else "")): v for k, a, _, v in rule}
        if "SYMLINK" in fields:
            by_link.setdefault(fields["SYMLINK"], []).append(fields)
    assert set(by_link) == {"passqr-relay", "passqr-scanner", "input/passqr-scanner"}
    vendors = {
        (r.get("ATTRS{idVendor}"), r.get("ATTRS{idProduct}")) for r in by_link["passqr-relay"]
    }
    assert ("1a86", "7523") in vendors  # CH340: LCUS, HW-667
    assert ("2a19", "0c05") in vendors  # Numato
    for link in ("passqr-relay", "passqr-scanner"):
        for tty in by_link[link]:
            assert tty["SUBSYSTEM"] == "tty"
            assert tty["ENV{ID_MM_DEVICE_IGNORE}"] == "1"
            assert tty["GROUP"] == "dialout"
    for evdev in by_link["input/passqr-scanner"]:
        assert evdev["SUBSYSTEM"] == "input"
        assert evdev["GROUP"] == "input"


@pytest.mark.parametrize(
    "bad",
    [
        'SUBSYSTEM="tty", SYMLINK+="x"',  # assignment to a match-only key
        'SUBSYSTEM=="tty" SYMLINK+="x"',  # missing comma
        'SUBSYTEM=="tty", SYMLINK+="x"',  # unknown key
        'ATTRS=="1a86"',  # ATTRS without {attribute}
        'SUBSYSTEM=="tty", MODE="rw"',  # MODE not octal
        'GROUP=="dialout"',  # matching an assign-only key
    ],
)
def test_the_rules_parser_catches_mistakes(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_rule(bad)
