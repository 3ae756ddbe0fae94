"""Issue 16: ``[relay] type = "gpio"``, ``[[inputs]] type = "gpio"`` and ``gate.passage_window_s``
as the config loader sees them, and a missing gpiozero as one clear line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from scanner.config import GpioInputConfig, RelayConfig, parse_config
from scanner.errors import ConfigError
from scanner.relay import build_relay

BASE: dict[str, Any] = {"api": {"base_url": "http://127.0.0.1:8787/api/v1"}}


def parse(**tables: Any) -> Any:
    return parse_config({**BASE, **tables}, Path("/etc/gate.toml"))


def test_a_gpio_relay_and_inputs_load() -> None:
    config = parse(
        gate={"passage_window_s": 8.0},
        relay={"type": "gpio", "pin": 17, "active_low": True, "pulse_ms": 500},
        inputs=[
            {"type": "gpio", "pin": 27, "role": "passage"},
            {"type": "gpio", "pin": 22, "role": "exit", "pull": "down", "debounce_ms": 20},
            {"type": "gpio", "pin": 23, "role": "tamper", "pull": "up", "active": "high"},
        ],
    )
    assert config.relay.type == "gpio" and config.relay.pin == 17 and config.relay.active_low
    assert config.gate.passage_window_s == 8.0
    passage, exit_, tamper = config.inputs
    assert isinstance(passage, GpioInputConfig)
    assert (passage.pin, passage.role, passage.pull, passage.active_level) == (
        27,
        "passage",
        "up",
        "low",
    )
    assert exit_.active_level == "high"  # pulled down: the button pulls it up
    assert tamper.active_level == "high"  # a normally-closed contact on a pull-up
    assert parse().gate.passage_window_s == 10.0
    assert parse().inputs == []


@pytest.mark.parametrize(
    ("tables", "message"),
    [
        ({"relay": {"type": "gpio"}}, "relay.pin: required for relay type 'gpio'"),
        (
            {"relay": {"type": "gpio", "pin": 17, "port": "/dev/ttyUSB0"}},
            "relay.port: relay type 'gpio' has no port",
        ),
        (
            {"relay": {"type": "lcus", "port": "/dev/ttyUSB0", "pin": 17}},
            "relay.pin: only relay type 'gpio' takes a pin",
        ),
        ({"relay": {"type": "gpio", "pin": 54}}, "relay.pin: must be between 0 and 53"),
        (
            {"inputs": [{"type": "gpio", "pin": 27, "role": "passage", "pull": "none"}]},
            "inputs[0].active: required with pull = 'none'",
        ),
        (
            {"inputs": [{"type": "gpio", "pin": 27, "role": "door"}]},
            "inputs[0].role: expected 'passage' | 'exit' | 'tamper' | 'alarm'",
        ),
        (
            {"inputs": [{"type": "gpio", "pin": 27, "role": "passage", "pul": "up"}]},
            "inputs[0].pul: unknown key (did you mean 'pull'?)",
        ),
        (
            {
                "relay": {"type": "gpio", "pin": 17},
                "inputs": [{"type": "gpio", "pin": 17, "role": "passage"}],
            },
            "inputs[0].pin: GPIO17 is already relay.pin",
        ),
        (
            {
                "inputs": [
                    {"type": "gpio", "pin": 27, "role": "passage"},
                    {"type": "gpio", "pin": 27, "role": "exit"},
                ]
            },
            "inputs[1].pin: GPIO27 is already inputs[0].pin",
        ),
        ({"gate": {"passage_window_s": 0}}, "gate.passage_window_s: must be more than 0"),
        (
            {"relay": {"type": "gpio", "pin": 17}, "sound": {"type": "relay"}},
            "relay type 'gpio' has none",
        ),
    ],
)
def test_mistakes_are_one_line_naming_the_key(tables: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(**tables)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("/etc/gate.toml: ")


def test_a_missing_gpiozero_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gpiozero", None)  # import gpiozero -> ImportError
    with pytest.raises(ConfigError) as info:
        build_relay(RelayConfig(type="gpio", pin=17))
    text = str(info.value)
    assert 'relay.type = "gpio" needs gpiozero' in text
    assert "passqr-scanner[gpio]" in text and "lgpio" in text
    assert "\n" not in text
