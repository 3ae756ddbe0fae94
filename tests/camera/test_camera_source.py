"""The camera source end to end: threads, watchdog, retries, throttling, and a real Gate."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import types
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from scanner.config import CameraSourceConfig, GateConfig
from scanner.decode import DecodedCode, Decoder, DecoderUnavailable, Gray, build_decoder
from scanner.errors import ConfigError
from scanner.journal import Journal
from scanner.models import RawScan
from scanner.pipeline import Gate
from scanner.relay import NoRelay
from scanner.sources import SourceState, build_source
from scanner.sources import camera as camera_module
from scanner.sources.camera import CameraSource
from scanner.sources.capture import CaptureBackend, CaptureError, OpenCvCapture
from scanner.sources.synthetic import SyntheticCapture, SyntheticScript
from tests.camera.camsupport import AlwaysValid, Factory, ScriptedCapture, on_noise, qr_image
from tests.support.waiting import eventually

CODE = "PASS-AAAA0001"


def config(device: int | str = "synthetic", **kw: Any) -> CameraSourceConfig:
    kw.setdefault("width", 320)
    kw.setdefault("height", 240)
    return CameraSourceConfig(type="camera", device=device, **kw)


class Collector:
    """Records scans and checks each arrives on the event loop's thread."""

    def __init__(self) -> None:
        self.scans: list[RawScan] = []
        self.loop_thread = threading.get_ident()
        self.off_loop = 0

    def __call__(self, scan: RawScan) -> None:
        if threading.get_ident() != self.loop_thread:
            self.off_loop += 1
        self.scans.append(scan)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.scans]


@asynccontextmanager
async def running(source: CameraSource, emit: Callable[[RawScan], None]) -> AsyncIterator[None]:
    task = asyncio.create_task(source.run(emit))
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        assert source.state is SourceState.STOPPED
        assert not [t for t in threading.enumerate() if t.name.startswith(source.name + "-")]


@pytest.fixture(autouse=True)
def _quick_stop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(camera_module, "STOP_WAIT_S", 0.3)


def code_frame(text: str = CODE) -> Gray:
    return on_noise(qr_image(text, module_px=4), 320, 240)


# -- the synthetic camera through the whole path ----------------------------------------


async def test_synthetic_script_emits_each_code_once_then_the_source_ends() -> None:
    codes = ["PASS-AAAA0001", "[bold red]not a pass[/]", "https://www.passqr.com/p/PASS-SEAS0001"]
    device = "synthetic?interval_s=0.5&start_delay_s=0.1&loop=false&tail_s=0.2"
    source = build_source(config(device, codes=codes, name="demo"))
    assert isinstance(source, CameraSource)
    got = Collector()
    await asyncio.wait_for(source.run(got), 20)
    assert got.texts == codes
    assert got.off_loop == 0
    assert (source.state, source.detail, source.finished) == (
        SourceState.STOPPED,
        "script finished",
        True,
    )
    stats = source.stats
    assert stats.frames_captured > 0
    assert stats.frames_decoded + stats.frames_dropped == stats.frames_captured
    assert stats.last_decode_ms > 0 and stats.decode_errors == 0
    assert source.count == 3


async def test_a_realtime_synthetic_camera_reports_its_decode_rate() -> None:
    source = CameraSource(config("synthetic?start_delay_s=0", codes=[CODE], fps=30))
    got = Collector()
    async with running(source, got):
        await eventually(lambda: set(got.texts) == {CODE} and source.frames_decoded >= 30)
        assert source.state is SourceState.READY and source.detail == ""
        assert 10 <= source.decode_fps <= 40
        assert source.frames_dropped == 0


def test_bad_synthetic_options_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="option 'speed' is unknown"):
        CameraSource(config("synthetic?speed=9"))
    with pytest.raises(ConfigError, match="watchdog_s: must be more than 0"):
        CameraSource(config(watchdog_s=0))


# -- a held code: one validation --------------------------------------------------------


class Lockstep(CaptureBackend):
    """Hands out a synthetic frame only once the previous one was decoded.

    No frame is dropped and the frames' clock runs as fast as the decoder: ten
    seconds of camera in well under a second.
    """

    def __init__(self, inner: SyntheticCapture, source: Callable[[], CameraSource]) -> None:
        self.inner = inner
        self.source = source
        self.description = "lockstep"

    def open(self) -> None:
        self.inner.open()

    def read(self) -> Gray | None:
        deadline = time.monotonic() + 5
        while self.source().frames_decoded < self.inner.frame_index:
            if time.monotonic() > deadline:
                raise AssertionError("the decoder stopped taking frames")
            time.sleep(0.0002)
        return self.inner.read()

    def close(self) -> None:
        self.inner.close()

    @property
    def finished(self) -> bool:
        return self.inner.finished

    def timestamp(self) -> float:
        return self.inner.timestamp()


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[Journal]:
    j = Journal(tmp_path / "journal.sqlite3")
    await j.open()
    yield j
    await j.close()


async def test_a_code_held_for_ten_seconds_is_validated_once(journal: Journal) -> None:
    # One code in view for 10 s of frames, gone for 4 s, then shown again for 10 s.
    script = SyntheticScript(
        codes=(CODE, CODE.lower()), interval_s=14.0, linger_s=10.0, start_delay_s=0.0, loop=False
    )
    synthetic = SyntheticCapture(script, width=320, height=240, fps=30, realtime=False)
    source: CameraSource | None = None
    lockstep = Lockstep(synthetic, lambda: source)  # type: ignore[arg-type,return-value]
    source = CameraSource(config(watchdog_s=10.0), backend=lambda: lockstep)
    relay = NoRelay(pulse_ms=10)
    await relay.start()
    validator = AlwaysValid()
    gate = Gate(
        config=GateConfig(name="Test gate", repeat_ignore_s=3.0),
        validator=validator,
        journal=journal,
        relay=relay,
        clock=synthetic.timestamp,  # the gate's clock is the frames' clock
    )
    try:

        def submit(scan: RawScan) -> None:
            gate.submit(scan)

        await asyncio.wait_for(source.run(submit), 60)
        await gate.drain(5)
    finally:
        await relay.close()
    assert source.frames_dropped == 0
    assert source.frames_decoded == synthetic.frame_index == 30 * 25  # 24 s + 1 s tail
    # The camera emitted the held code twice a second; the gate acted on it once.
    assert 18 <= source.count <= 42
    assert validator.codes == [CODE, CODE]  # once per time it was held up
    assert gate.status.ignored_repeats == source.count - 2
    assert gate.status.accepted_today == 2


# -- faults: the watchdog, dead cameras, missing libraries --------------------------------


def write_video(path: Path, n: int = 8) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30, (320, 240))
    try:
        for _ in range(n):
            writer.write(cv2.cvtColor(code_frame(), cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()
    return path


async def test_a_video_that_ends_trips_the_watchdog_and_is_reopened(tmp_path: Path) -> None:
    video = write_video(tmp_path / "clip.avi")
    factory = Factory(lambda: OpenCvCapture(str(video), fps=100))
    source = CameraSource(config(str(video), watchdog_s=0.3), backend=factory)
    got = Collector()
    details: set[str] = set()
    async with running(source, got):

        def seen_reopens() -> bool:
            details.add(source.detail)
            return source.reopens >= 2

        await eventually(seen_reopens, 10)
        await eventually(lambda: source.state is SourceState.READY, 5)
    assert "no frames for 0.3 s, reopening" in details
    assert len(factory.built) >= 3
    assert source.frames_captured >= 16
    assert got.texts and set(got.texts) == {CODE}


async def test_a_stuck_driver_is_abandoned_and_the_camera_reopened() -> None:
    stuck = ScriptedCapture(code_frame(), stall_after=3)
    healthy = ScriptedCapture(code_frame("PASS-BBBB0002"))
    makers: list[Callable[[], CaptureBackend]] = [lambda: stuck, lambda: healthy]
    factory = Factory(*makers)
    source = CameraSource(config(0, watchdog_s=0.3), backend=factory)
    got = Collector()
    try:
        async with running(source, got):
            await eventually(lambda: stuck.stalled.is_set())
            await eventually(lambda: source.detail == "no frames for 0.3 s, reopening")
            assert source.state.value == "degraded"
            await eventually(lambda: "PASS-BBBB0002" in got.texts)
            assert source.state is SourceState.READY
            assert source.reopens == 1 and stuck.closed == 0  # still inside its read
            stuck.release()
            await eventually(lambda: stuck.closed == 1)
    finally:
        stuck.release()
    assert got.texts[0] == CODE
    assert healthy.opened == 1 and healthy.closed == 1


async def test_a_camera_that_cannot_open_degrades_and_retries() -> None:
    factory = Factory(lambda: OpenCvCapture("/dev/video99"))
    source = CameraSource(config("/dev/video99"), backend=factory, retry_s=(0.02, 0.05))
    async with running(source, Collector()):
        await eventually(lambda: len(factory.built) >= 4)
        assert source.state is SourceState.DEGRADED
        assert source.detail == "cannot open /dev/video99: no such device; retrying in 0.05 s"


async def test_any_driver_error_on_open_is_contained() -> None:
    factory = Factory(lambda: ScriptedCapture(code_frame(), open_error=RuntimeError("boom")))
    source = CameraSource(config(0), backend=factory, retry_s=(0.02,))
    async with running(source, Collector()):
        await eventually(lambda: len(factory.built) >= 2)
        assert source.detail == "cannot open fake camera: boom; retrying in 0.02 s"


class FailingRead(ScriptedCapture):
    def read(self) -> Gray | None:
        if self.reads >= 2:
            raise CaptureError("camera unplugged")
        return super().read()


async def test_a_read_error_reopens_after_a_pause() -> None:
    factory = Factory(lambda: FailingRead(code_frame()), lambda: ScriptedCapture(code_frame()))
    source = CameraSource(config(0), backend=factory, retry_s=(0.2,))
    details: set[str] = set()
    async with running(source, Collector()):

        def second_backend() -> bool:
            details.add(source.detail)
            return len(factory.built) == 2

        await eventually(second_backend)
        await eventually(lambda: source.state is SourceState.READY)
    assert "camera unplugged; retrying in 0.2 s" in details


async def test_a_missing_decoder_backend_degrades_the_source() -> None:
    def missing() -> Decoder:
        raise DecoderUnavailable("zbar", "libzbar cannot be loaded; apt install libzbar0")

    factory = Factory(lambda: ScriptedCapture(code_frame()))
    source = CameraSource(config(0, decoder="zbar"), decoder=missing, backend=factory)
    async with running(source, Collector()):
        await eventually(lambda: source.state is SourceState.DEGRADED)
        assert source.detail == (
            "decoder zbar unavailable: libzbar cannot be loaded; apt install libzbar0"
        )
        assert factory.built == []  # no point opening the camera


async def test_picamera2_missing_degrades(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)
    source = CameraSource(config("picamera2"), retry_s=(0.05,))
    async with running(source, Collector()):
        await eventually(lambda: source.state is SourceState.DEGRADED)
        assert source.detail.startswith("Picamera2 is not installed (apt install python3-picamera2")


async def test_picamera2_frames_reach_the_decoder(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.camera.test_camera_capture import FakePicamera2

    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "picamera2", module)
    source = CameraSource(config("picamera2"))
    got = Collector()
    async with running(source, got):
        await eventually(lambda: got.texts == ["PASS-CSI00001"])


# -- decoding on its own thread ---------------------------------------------------------


class SlowDecoder(Decoder):
    name = "slow"

    def __init__(self, delay_s: float, fail_first: int = 0) -> None:
        super().__init__()
        self.inner = build_decoder("zxing")
        self.delay_s = delay_s
        self.fail_first = fail_first
        self.calls = 0

    def decode(self, gray: Gray) -> list[DecodedCode]:
        self.calls += 1
        if self.calls <= self.fail_first:
            raise RuntimeError("decoder bug")
        time.sleep(self.delay_s)
        return self.inner.decode(gray)


async def test_a_slow_decoder_sees_the_newest_frame_and_drops_are_counted() -> None:
    factory = Factory(lambda: ScriptedCapture(code_frame(), period_s=0.001))
    source = CameraSource(config(0), backend=factory, decoder=lambda: SlowDecoder(0.02))
    got = Collector()
    async with running(source, got):
        await eventually(lambda: source.frames_decoded >= 10)
        stats = source.stats
    assert stats.frames_dropped > 0
    assert stats.frames_captured > stats.frames_decoded
    assert stats.last_decode_ms >= 20
    assert got.texts == [CODE]  # held: throttled to one emission per 0.5 s


async def test_a_decoder_bug_does_not_stop_the_camera() -> None:
    factory = Factory(lambda: ScriptedCapture(code_frame()))
    source = CameraSource(config(0), backend=factory, decoder=lambda: SlowDecoder(0, fail_first=3))
    got = Collector()
    async with running(source, got):
        await eventually(lambda: got.texts == [CODE])


async def test_the_same_text_is_emitted_at_most_twice_a_second() -> None:
    factory = Factory(lambda: ScriptedCapture(code_frame(), period_s=0.01))
    source = CameraSource(config(0), backend=factory, emit_every_s=0.2)
    got = Collector()
    async with running(source, got):
        await asyncio.sleep(0.75)
    assert 3 <= len(got.texts) <= 5
    gaps = np.diff([s.at for s in got.scans])
    assert (gaps >= 0.2).all()
