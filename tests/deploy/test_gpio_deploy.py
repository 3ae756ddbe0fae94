"""Issue 16's deployment: the service user reaches /dev/gpiochip* under the units' sandbox, the
udev rules give the chips to group gpio, and the docs and the example config show the keys.
(``systemd-analyze verify`` and ``security`` of the units run in test_systemd.py.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from scanner.config import GpioInputConfig, load_config
from tests.deploy.test_systemd import RULES, _directives, rules

ROOT = Path(__file__).resolve().parents[2]
KIOSK_UNITS = ("passqr-scanner.service", "passqr-scanner-headless.service")


@pytest.mark.parametrize("name", KIOSK_UNITS)
def test_the_kiosk_units_reach_the_gpio_chips_and_stay_closed(name: str) -> None:
    unit = _directives(name)
    assert "gpio" in unit["SupplementaryGroups"][0].split()
    assert "char-gpiochip rw" in unit["DeviceAllow"]
    assert unit["DevicePolicy"] == ["closed"]
    assert "PrivateDevices" not in unit
    assert not any("gpiomem" in d or d.startswith("/dev/gpiochip") for d in unit["DeviceAllow"])


def test_udev_gives_the_chips_to_group_gpio() -> None:
    chips = [
        {k: v for k, _, _, v in rule}
        for rule in rules()
        if any(k == "KERNEL" and v == "gpiochip*" for k, _, _, v in rule)
    ]
    assert chips == [{"SUBSYSTEM": "gpio", "KERNEL": "gpiochip*", "GROUP": "gpio", "MODE": "0660"}]
    assert "groupadd" in RULES.read_text()


def test_the_example_config_has_a_gpio_turnstile_that_loads(tmp_path: Path) -> None:
    text = (ROOT / "config" / "example.toml").read_text()
    block = re.search(r"# >>> gpio turnstile\n(.*?)# <<< gpio turnstile", text, re.S)
    assert block, "config/example.toml lacks its commented GPIO turnstile"
    uncommented = "\n".join(
        line[2:] if line.startswith("# ") else line.lstrip("#")
        for line in block[1].splitlines()
        if not line.startswith("# ---")
    )
    without_relay = re.sub(r"\[relay\]\n(?:[^\[].*\n|\n)*", "", text)
    path = tmp_path / "scanner.toml"
    path.write_text(without_relay + "\n" + uncommented + "\n")
    config = load_config(path)
    assert config.relay.type == "gpio" and config.relay.pin == 17
    assert [i.role for i in config.inputs] == ["passage", "exit"]
    assert all(isinstance(i, GpioInputConfig) for i in config.inputs)


def test_the_readme_documents_the_keys_and_the_event_lines() -> None:
    readme = (ROOT / "README.md").read_text()
    for key in (
        "`relay.pin`",
        "`relay.active_low`",
        '`[[inputs]] type = "gpio"`',
        "`gate.passage_window_s`",
        '"event": "passage"',
        "not_passed",
        "forced",
    ):
        assert key in readme, key


def test_the_deploy_guide_shows_the_wiring() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert "## A turnstile on the Pi's own pins" in guide
    for needle in ("relay HAT", "pull-up", "GPIO17", "python3-lgpio", "SupplementaryGroups=gpio"):
        assert needle in guide, needle
