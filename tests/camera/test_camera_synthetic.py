"""The synthetic camera: its script, its options, and frames that decode to the script."""

from __future__ import annotations

import numpy as np
import pytest

from scanner.decode import build_decoder
from scanner.errors import ConfigError
from scanner.sources.camera import SyntheticOptions, is_synthetic, parse_synthetic_device
from scanner.sources.synthetic import SyntheticCapture, SyntheticScript


def test_script_timing_once() -> None:
    script = SyntheticScript(codes=("A", "B"), interval_s=2.0, start_delay_s=1.0, loop=False)
    assert script.linger == 1.2  # 60% of the interval, at most 1.5 s
    assert script.at(0.5) is None
    assert script.at(1.0) == (0, 0, 0.0)
    assert script.at(1.6) == pytest.approx((0, 0, 0.5))
    assert script.at(2.5) is None  # between codes: empty frames
    assert script.at(3.1) == pytest.approx((1, 1, 0.1 / 1.2))
    assert script.at(5.5) is None
    assert script.duration_s == pytest.approx(1.0 + 2.0 + 1.2 + 1.0)


def test_script_timing_looped() -> None:
    script = SyntheticScript(codes=("A", "B"), interval_s=10.0, start_delay_s=0.0)
    assert script.linger == 1.5
    assert script.duration_s is None
    assert script.at(20.5) == pytest.approx((0, 2, 0.5 / 1.5))  # round two, third appearance
    assert script.at(31.0) == pytest.approx((1, 3, 1 / 1.5))
    assert SyntheticScript(codes=(), loop=True).duration_s is None  # an empty room, forever
    assert SyntheticScript(codes=(), loop=False).duration_s == 2.0


def test_device_options() -> None:
    assert is_synthetic("synthetic") and is_synthetic("synthetic?seed=3")
    assert not is_synthetic("synthetics") and not is_synthetic(0)
    assert parse_synthetic_device("synthetic") == SyntheticOptions()
    options = parse_synthetic_device(
        "synthetic?interval_s=0.5&loop=false&seed=7&color=yes&realtime=0&linger_s=0.2"
    )
    assert (options.interval_s, options.loop, options.seed) == (0.5, False, 7)
    assert (options.color, options.realtime, options.linger_s) == (True, False, 0.2)


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("synthetic?speed=2", "option 'speed' is unknown"),
        ("synthetic?loop=maybe", "'maybe' is not true or false"),
        ("synthetic?seed=x", "'x' is not an integer"),
        ("synthetic?interval_s=-1", "must be a number >= 0"),
        ("synthetic?interval_s=nan", "must be a number >= 0"),
    ],
)
def test_bad_device_options(device: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_synthetic_device(device)


def capture(script: SyntheticScript, **kw: object) -> SyntheticCapture:
    cam = SyntheticCapture(script, width=320, height=240, fps=30, realtime=False, **kw)  # type: ignore[arg-type]
    cam.open()
    return cam


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    script = SyntheticScript(codes=("PASS-AAAA0001",), interval_s=1.0, start_delay_s=0.0)
    a, b = capture(script), capture(script)
    other = capture(SyntheticScript(codes=script.codes, interval_s=1.0, start_delay_s=0, seed=1))
    for _ in range(5):
        fa, fb, fo = a.read(), b.read(), other.read()
        assert fa is not None and fb is not None and fo is not None
        assert np.array_equal(fa, fb)
        assert not np.array_equal(fa, fo)


DEMO_PAYLOADS = (
    "PASS-AAAA0001",
    "https://www.passqr.com/p/PASS-SEAS0001",
    "[bold red]not a pass[/]",
    "https://www.passqr.com/scan?code=PASS-SEAS0001",
    "Grüße",
)


def test_each_code_shows_as_is_between_empty_frames() -> None:
    script = SyntheticScript(codes=DEMO_PAYLOADS, interval_s=0.5, start_delay_s=0.2, loop=False)
    cam = capture(script)
    decoder = build_decoder("auto")
    seen: list[str] = []
    shown_frames = decoded_frames = 0
    index = 0
    while (gray := cam.read()) is not None:
        assert gray.shape == (240, 320)
        texts = [c.text for c in decoder.decode_frame(gray, index)]
        shown = script.at(index / 30)
        if shown is None:
            assert texts == []  # an empty room decodes to nothing
        else:
            shown_frames += 1
            decoded_frames += texts == [DEMO_PAYLOADS[shown[0]]]
            if texts and (not seen or seen[-1] != texts[0]):
                seen.extend(texts)
        index += 1
    assert cam.finished
    assert seen == list(DEMO_PAYLOADS)
    assert decoded_frames >= 0.9 * shown_frames
    assert index == pytest.approx(script.duration_s * 30, abs=1)  # type: ignore[operator]


def test_an_unencodable_code_shows_nothing() -> None:
    cam = capture(SyntheticScript(codes=("",), interval_s=1.0, start_delay_s=0.0))
    gray = cam.read()
    assert gray is not None and build_decoder("auto").decode(gray) == []


def test_colour_frames_are_converted_like_a_webcams() -> None:
    script = SyntheticScript(codes=("PASS-AAAA0001",), interval_s=1.0, start_delay_s=0.0)
    cam = capture(script, color=True)
    raw = cam.render_raw(0)
    assert raw.shape == (240, 320, 3)
    gray = cam.read()
    assert gray is not None and gray.shape == (240, 320)
    assert [c.text for c in build_decoder("auto").decode(gray)] == ["PASS-AAAA0001"]


def test_realtime_frames_are_paced_and_stamped() -> None:
    now = [100.0]
    sleeps: list[float] = []

    def sleep(s: float) -> None:
        sleeps.append(round(s, 6))
        now[0] += s

    cam = SyntheticCapture(
        SyntheticScript(codes=("A",)),
        width=64,
        height=64,
        fps=10,
        clock=lambda: now[0],
        sleep=sleep,
    )
    cam.open()
    for _ in range(3):
        cam.read()
    assert sleeps == [0.1, 0.1]  # the first frame is due at once
    assert cam.timestamp() == pytest.approx(100.2)
    with pytest.raises(ValueError, match="at least 64x64"):
        SyntheticCapture(SyntheticScript(codes=()), width=10, height=10)
