"""Prometheus metrics from a running kiosk: the local PassQR server, a simulated scanner,
the endpoint on a loopback port, scraped with httpx."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from scanner.config import parse_config, parse_listen
from scanner.errors import ConfigError
from scanner.metrics import Metrics
from scanner.relay import NoRelay, RelayState
from scanner.runtime import Kiosk
from scanner.sources import SimulatedSource, Source, SourceState
from scanner.sources.base import Emit
from scanner.status import GateStatus
from tests.conftest import LocalServer
from tests.support.waiting import eventually

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> dict[str, float]:
    """``name{labels}`` -> value, labels in name order (Prometheus reads them in any order)
    and values as numbers (``1`` or ``1.0``); every line must be a comment or a valid sample."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not exposition format: {line!r}"
        labels = sorted(LABEL.findall(match[2] or ""))
        key = ",".join(f'{k}="{v}"' for k, v in labels)
        out[match[1] + (f"{{{key}}}" if key else "")] = float(match[3])
    return out


class CameraLike(Source):
    """A source that measures its decode rate, as a camera does."""

    kind = "camera"

    def __init__(self) -> None:
        super().__init__("camera:test")
        self.decode_fps = 12.5

    async def run(self, emit: Emit) -> None:
        self.state = SourceState.DEGRADED
        self.detail = "no frames"


async def test_scrape_after_a_few_scans(tmp_path: Path, local_server: LocalServer) -> None:
    codes = local_server.seed()
    config = parse_config(
        {
            "api": {"base_url": local_server.base_url, "timeout_s": 3.0},
            "gate": {"name": "Metrics gate", "repeat_ignore_s": 30.0},
            "relay": {"pulse_ms": 10},
            "journal": {"path": str(tmp_path / "journal.sqlite3")},
        }
    )
    script = [codes["valid"], codes["used"], "PASS-ZZZZZZZZ", "<not a pass>", codes["used"]]
    simulated = SimulatedSource(script, interval_s=0.02, start_delay_s=0.0, name="sim")
    kiosk = Kiosk(config, api_key=local_server.api_key, sources=[simulated, CameraLike()])
    metrics = Metrics(queue_length=lambda: 2)
    decisions: list[object] = []
    kiosk.gate.subscribe(metrics.observe)
    kiosk.gate.subscribe(decisions.append)
    await kiosk.start()
    server = await metrics.serve("127.0.0.1", 0, kiosk)
    try:
        port = server.sockets[0].getsockname()[1]
        await eventually(lambda: len(decisions) == 4 and simulated.finished.is_set())
        await eventually(lambda: kiosk.relay.state is RelayState.OFF)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            response = await http.get("/metrics")
            missing = await http.get("/nothing")
            posted = await http.post("/metrics")
    finally:
        server.close()
        await server.wait_closed()
        await kiosk.stop()

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert missing.status_code == 404
    assert posted.status_code == 405
    text = response.text
    got = samples(text)

    scans = {k: v for k, v in got.items() if k.startswith("passqr_scans_total")}
    assert scans == {
        'passqr_scans_total{decision="accepted",reason="valid"}': 1,
        'passqr_scans_total{decision="rejected",reason="used"}': 1,
        'passqr_scans_total{decision="rejected",reason="not_found"}': 1,
        'passqr_scans_total{decision="rejected",reason="invalid_payload"}': 1,
    }
    assert got["passqr_ignored_repeats_total"] == 1  # the second "used" within the window
    assert "# TYPE passqr_scans_total counter" in text

    # The histogram: cumulative buckets, +Inf equal to the count, a plausible sum.
    name = "passqr_validation_latency_seconds"
    assert f"# TYPE {name} histogram" in text
    buckets = [(k, v) for k, v in got.items() if k.startswith(name + "_bucket")]
    values = [v for _, v in buckets]
    assert values == sorted(values)
    assert buckets[-1] == (name + '_bucket{le="+Inf"}', 4)
    assert got[name + "_count"] == 4
    assert 0 < got[name + "_sum"] < 4 * 3.0
    assert got[name + '_bucket{le="10"}'] == 4

    assert got["passqr_offline_queue_length"] == 2
    assert got["passqr_server_up"] == 1
    assert got['passqr_server_state{state="ok"}'] == 1
    assert got['passqr_source_up{kind="simulated",source="sim"}'] == 0  # script finished
    assert got['passqr_source_state{source="sim",state="stopped"}'] == 1
    assert got['passqr_source_reads_total{source="sim"}'] == 5
    assert got['passqr_source_up{kind="camera",source="camera:test"}'] == 0
    assert got['passqr_camera_decode_fps{source="camera:test"}'] == 12.5
    assert got['passqr_relay_up{relay="none"}'] == 1
    assert got['passqr_relay_on{relay="none"}'] == 0
    assert got['passqr_relay_pulses_total{relay="none"}'] == 1


def test_without_a_camera_there_is_no_fps() -> None:
    metrics = Metrics()
    text = metrics.render()
    assert "camera_decode_fps" not in text
    got = samples(text)
    assert got['passqr_scans_total{decision="accepted",reason="valid"}'] == 0
    assert got["passqr_validation_latency_seconds_count"] == 0
    assert got["passqr_relay_faults_total"] == 0


def test_labels_are_escaped() -> None:
    """A source named by a person (quotes, backslashes, a newline) stays one sample line."""
    odd = SimulatedSource([], name='a"b\\c\nd')
    kiosk = SimpleNamespace(
        gate=SimpleNamespace(status=GateStatus()),
        sources=[odd],
        relay=NoRelay(pulse_ms=10),
        turnstile=SimpleNamespace(metric_families=list),  # no [[inputs]]: no families
    )
    text = Metrics().render(kiosk)  # type: ignore[arg-type]
    assert 'passqr_source_reads_total{source="a\\"b\\\\c\\nd"} 0' in text
    samples(text)  # and every line is still a valid sample


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9108", ("127.0.0.1", 9108)),
        ("[::1]:9108", ("::1", 9108)),
        (":9108", ("0.0.0.0", 9108)),
    ],
)
def test_parse_listen(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", ["9108", "localhost:http", "127.0.0.1:0", "host:70000"])
def test_parse_listen_refuses(value: str) -> None:
    with pytest.raises(ConfigError, match="metrics.listen"):
        parse_listen(value)
