"""Sound at the gate: cues per decision, and each real sink on its own terms.

The relay sink drives another channel of a simulated LCUS board on a pty (the
same port as the door); the ALSA sink feeds its WAV to a recorder instead of
``aplay`` (no sound card here); the bell sink rings a counter.
"""

from __future__ import annotations

import asyncio
import io
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.config import (
    ApiConfig,
    Config,
    GateConfig,
    JournalConfig,
    RelayConfig,
    SoundConfig,
    load_config,
)
from scanner.errors import ConfigError
from scanner.models import Decision, RawScan, Reason, Scan, utcnow
from scanner.relay import build_relay
from scanner.runtime import Kiosk
from scanner.sound import PATTERNS, AlsaSink, BellSink, Cue, Sounder, cue_for, tone_wav
from tests.conftest import LocalServer
from tests.support.serial_sim import LcusSim


def decision(**kw: object) -> Decision:
    scan = Scan(id="s", ts=utcnow(), gate="g", source="t", raw="x", code="PASS-AAAA0001")
    fields: dict[str, object] = {"accepted": True, "reason": Reason.VALID, "message": "Welcome"}
    fields.update(kw)
    return Decision(scan=scan, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "cue"),
    [
        ({}, Cue.ACCEPT),
        ({"relay_fault": "port gone"}, Cue.ATTENTION),
        ({"accepted": False, "reason": Reason.USED, "message": "Already used"}, Cue.REJECT),
        (
            {
                "accepted": False,
                "reason": Reason.USED,
                "message": "Possibly admitted on the first try",
            },
            Cue.ATTENTION,
        ),
        (
            {"accepted": False, "reason": Reason.ERROR, "message": "Scanner out of service"},
            Cue.ATTENTION,
        ),
        (
            {"accepted": False, "reason": Reason.OFFLINE, "message": "Server unreachable"},
            Cue.REJECT,
        ),
    ],
)
def test_each_decision_has_its_cue(fields: dict[str, object], cue: Cue) -> None:
    assert cue_for(decision(**fields)) is cue


def test_the_three_cues_are_told_apart_by_ear() -> None:
    beeps = {cue: len(PATTERNS[cue]) for cue in Cue}
    assert len(set(beeps.values())) == 3, "one, two and three beeps"
    for cue in Cue:
        with wave.open(io.BytesIO(tone_wav(cue))) as w:
            length_ms = w.getnframes() * 1000 // w.getframerate()
            assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        assert length_ms == sum(on + off for on, off in PATTERNS[cue])


RECORDER = "import sys, pathlib; pathlib.Path(sys.argv[1]).write_bytes(sys.stdin.buffer.read())"


async def test_the_alsa_sink_plays_a_wav_and_survives_a_missing_player(tmp_path: Path) -> None:
    out = tmp_path / "played.wav"
    sink = AlsaSink(command=[sys.executable, "-c", RECORDER, str(out)])
    await sink.play(Cue.REJECT)
    assert out.read_bytes() == tone_wav(Cue.REJECT)
    assert not sink.fault
    broken = AlsaSink(command=[str(tmp_path / "no-aplay-here")])
    await broken.play(Cue.ACCEPT)  # never raises into the gate
    assert "cannot run" in broken.fault
    failing = AlsaSink(command=[sys.executable, "-c", "import sys; sys.exit('no card')"])
    await failing.play(Cue.ACCEPT)
    assert "exited 1" in failing.fault and "no card" in failing.fault


async def test_the_bell_rings_once_per_beep() -> None:
    rings: list[float] = []
    sink = BellSink(lambda: rings.append(time.monotonic()))
    await sink.play(Cue.ATTENTION)
    assert len(rings) == 3


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.cues: list[Cue] = []

    async def start(self) -> None:
        return None

    async def play(self, cue: Cue) -> None:
        self.cues.append(cue)

    async def close(self) -> None:
        return None


async def test_the_sounder_plays_only_the_configured_cues() -> None:
    sink = Recorder()
    sounder = Sounder(sink, [Cue.REJECT, Cue.ATTENTION])
    sounder.observe(decision())
    await asyncio.sleep(0)
    sounder.observe(decision(accepted=False, reason=Reason.USED, message="Already used"))
    await asyncio.sleep(0.01)
    await sounder.close()
    assert sink.cues == [Cue.REJECT], "accept is silent here"


@pytest.fixture
def board(tmp_path: Path) -> Iterator[LcusSim]:
    sim = LcusSim(tmp_path / "relay")
    yield sim
    sim.close()


def test_a_buzzer_needs_a_second_channel_of_the_door_board(tmp_path: Path) -> None:
    path = tmp_path / "gate.toml"
    path.write_text('[relay]\ntype = "hw667"\nport = "/dev/x"\n[sound]\ntype = "relay"\n')
    with pytest.raises(ConfigError, match="second channel"):
        load_config(path)
    path.write_text(
        '[relay]\ntype = "lcus"\nport = "/dev/x"\n[sound]\ntype = "relay"\nchannel = 1\n'
    )
    with pytest.raises(ConfigError, match="sound.channel"):
        load_config(path)


async def test_a_kiosk_beeps_on_the_boards_other_channel(
    tmp_path: Path, local_server: LocalServer, board: LcusSim
) -> None:
    codes = local_server.seed()
    relay_config = RelayConfig(type="lcus", port=str(board.link), channel=1, pulse_ms=200)
    config = Config(
        api=ApiConfig(base_url=local_server.base_url),
        gate=GateConfig(name="Beep gate", repeat_ignore_s=0.0),
        relay=relay_config,
        sound=SoundConfig(type="relay", channel=2),
        journal=JournalConfig(path=tmp_path / "journal.sqlite3"),
    )
    kiosk = Kiosk(config, api_key=local_server.api_key, relay=build_relay(relay_config), sources=[])
    await kiosk.start()
    try:
        task = kiosk.gate.submit(RawScan(source="t", text=codes["valid"], at=time.monotonic()))
        assert task is not None
        assert (await task).accepted
        assert await board.until(lambda b: len(b.pulses(1)) == 1 and len(b.pulses(2)) == 1)
        task = kiosk.gate.submit(RawScan(source="t", text=codes["used"], at=time.monotonic()))
        assert task is not None
        assert not (await task).accepted
        assert await board.until(lambda b: len(b.pulses(2)) == 3), "reject: two more beeps"
        assert len(board.pulses(1)) == 1, "the door opened once"
    finally:
        await kiosk.stop()
    assert board.state[1] is False and board.state[2] is False, "both contacts OFF after stop"
