"""A device kind is one module plus one registration line.

The toy kinds below live in this test module and are registered with one call
each; nothing else in ``scanner/`` learns about them, yet the config loader reads
their tables (bounds, "did you mean", the kind's own rules), the builders make
their drivers and the doctor runs their probes. That is the recipe in
``docs/architecture.md``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from scanner.checks import Check, Status
from scanner.config import parse_config
from scanner.doctor import diagnose
from scanner.errors import ConfigError
from scanner.relay import RELAY_KINDS, Relay, RelayConfig, RelayKind, build_relay
from scanner.schema import within
from scanner.sources import SOURCE_KINDS, Emit, Source, SourceKind, SourceState, build_source

# -- a toy relay board: its module would be these lines -------------------------------


class ToyRelay(Relay):
    kind = "toy"

    def __init__(self, *, port: str, channel: int, pulse_ms: int) -> None:
        super().__init__(pulse_ms=pulse_ms)
        self.port = port
        self.channel = channel
        self.switched: list[bool] = []

    def _switch(self, on: bool) -> None:
        self.switched.append(on)


def _build_toy(config: RelayConfig) -> Relay:
    assert config.port is not None
    return ToyRelay(port=config.port, channel=config.channel, pulse_ms=config.pulse_ms)


def _check_toy(config: RelayConfig) -> None:
    if config.baudrate != 19200:
        raise ConfigError("baudrate: toy boards speak at 19200")


async def _probe_toy(config: RelayConfig, click: Relay | None) -> list[Check]:
    if click is None:
        return [Check(name="relay", status=Status.OK, detail=f"toy board at {config.port}")]
    assert isinstance(click, ToyRelay)  # the doctor built this kind's driver
    return [Check(name="relay", status=Status.OK, detail=f"toy channel {click.channel} clicked")]


TOY_RELAY = RelayKind(name="toy", channels=4, build=_build_toy, check=_check_toy, probe=_probe_toy)

# -- a toy source kind: its module would be these lines -------------------------------


@dataclass(frozen=True, kw_only=True)
class ChimeSourceConfig:
    type: Literal["chime"]
    every_s: float = within(1.0, 0.1, 60, unit="seconds")
    name: str | None = None


class ChimeSource(Source):
    kind = "chime"

    def __init__(self, config: ChimeSourceConfig) -> None:
        super().__init__(config.name or "chime")
        self.every_s = config.every_s

    async def run(self, emit: Emit) -> None:
        self.state = SourceState.READY
        await asyncio.Event().wait()


def _build_chime(config: ChimeSourceConfig, headless: bool) -> Source:
    return ChimeSource(config)


async def _probe_chime(config: ChimeSourceConfig, name: str) -> list[Check]:
    return [
        Check(name=name, status=Status.WARN, detail=f"chimes every {config.every_s} s"),
        Check(name=f"{name} volume", status=Status.SKIP, detail="no speaker to ask"),
    ]


CHIME = SourceKind(name="chime", config=ChimeSourceConfig, build=_build_chime, probe=_probe_chime)


# -- the registration line, and what it buys -------------------------------------------


@pytest.fixture
def toy_relay() -> object:
    with RELAY_KINDS.registered(TOY_RELAY) as kind:  # the one line
        yield kind


@pytest.fixture
def chime() -> object:
    with SOURCE_KINDS.registered(CHIME) as kind:  # the one line
        yield kind


@pytest.mark.usefixtures("toy_relay")
def test_a_registered_relay_kind_is_read_and_built_from_its_table() -> None:
    config = parse_config(
        {"relay": {"type": "toy", "port": "/dev/toy0", "channel": 3, "baudrate": 19200}}
    )
    relay = build_relay(config.relay)
    assert isinstance(relay, ToyRelay)
    assert (relay.port, relay.channel) == ("/dev/toy0", 3)


@pytest.mark.usefixtures("toy_relay")
@pytest.mark.parametrize(
    ("table", "says"),
    [
        ({"type": "toy", "channel": 3}, "relay.port: required for relay type 'toy'"),
        (
            {"type": "toy", "port": "p", "channel": 5, "baudrate": 19200},
            "toy boards have channels 1 to 4",
        ),
        ({"type": "toy", "port": "p"}, "relay.baudrate: toy boards speak at 19200"),
        ({"type": "toy", "port": "p", "baudrate": 19200, "on_command": "x"}, "only relay types"),
        ({"type": "toy", "port": "p", "pulse_ms": 1}, "relay.pulse_ms: must be between 10"),
        ({"type": "tou", "port": "p"}, "did you mean 'toy'"),
    ],
)
def test_a_registered_relay_kind_keeps_its_rules(table: dict[str, object], says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_config({"relay": table})


@pytest.mark.usefixtures("toy_relay")
def test_a_buzzer_on_a_registered_board_gets_its_channel_range() -> None:
    relay = {"type": "toy", "port": "p", "channel": 1, "baudrate": 19200}
    assert parse_config({"relay": relay, "sound": {"type": "relay", "channel": 4}})
    with pytest.raises(ConfigError, match="1 to 4"):
        parse_config({"relay": relay, "sound": {"type": "relay", "channel": 5}})


def test_the_registration_is_undone() -> None:
    with RELAY_KINDS.registered(TOY_RELAY):
        assert "toy" in RELAY_KINDS
        with pytest.raises(ValueError, match="registered already"):
            RELAY_KINDS.register(TOY_RELAY)
    assert "toy" not in RELAY_KINDS
    with pytest.raises(ConfigError, match="relay.type: expected 'none'"):
        parse_config({"relay": {"type": "toy", "port": "p"}})


@pytest.mark.usefixtures("chime")
def test_a_registered_source_kind_is_read_and_built_from_its_table() -> None:
    config = parse_config({"sources": [{"type": "chime", "every_s": 2.5, "name": "bell"}]})
    (table,) = config.sources
    assert isinstance(table, ChimeSourceConfig)
    source = build_source(table)
    assert isinstance(source, ChimeSource)
    assert (source.name, source.every_s) == ("bell", 2.5)
    with pytest.raises(ConfigError, match=r"sources\[0\].every_s: must be between 0.1 and 60"):
        parse_config({"sources": [{"type": "chime", "every_s": 0}]})
    with pytest.raises(ConfigError, match="did you mean 'every_s'"):
        parse_config({"sources": [{"type": "chime", "every": 1}]})


@pytest.mark.usefixtures("toy_relay", "chime")
@pytest.mark.parametrize("click", [False, True])
async def test_the_doctor_runs_the_registered_kinds_probes(tmp_path: Path, click: bool) -> None:
    config = tmp_path / "gate.toml"
    config.write_text(
        '[api]\nbase_url = "http://127.0.0.1:9/api/v1"\n\n'
        '[[sources]]\ntype = "simulated"\ncodes = ["A"]\n\n'
        '[[sources]]\ntype = "chime"\nevery_s = 2.5\n\n'
        '[relay]\ntype = "toy"\nport = "/dev/toy0"\nchannel = 3\nbaudrate = 19200\n\n'
        f'[journal]\npath = "{tmp_path / "journal.sqlite3"}"\n'
    )

    checks = await diagnose(
        config, relay_click=click, environ={}, credential_file=tmp_path / "no-key"
    )

    found = {c.name: (c.status, c.detail) for c in checks}
    assert found["source 1 (simulated)"] == (Status.OK, "n/a: scripted codes")
    assert found["source 2 (chime)"] == (Status.WARN, "chimes every 2.5 s")
    assert found["source 2 (chime) volume"] == (Status.SKIP, "no speaker to ask")
    relay = "toy channel 3 clicked" if click else "toy board at /dev/toy0"
    assert found["relay"] == (Status.OK, relay)
    names = [c.name for c in checks]
    assert names.index("source 2 (chime) volume") < names.index("relay")
