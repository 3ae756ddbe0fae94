"""The decoders on real photos (the shared zxing-cpp samples) and on generated frames."""

from __future__ import annotations

import builtins
import logging
from typing import Any

import cv2
import numpy as np
import pytest

from scanner.decode import DecodedCode, Decoder, DecoderUnavailable, Gray, build_decoder
from scanner.decode.auto import FRAME_CYCLE, AutoDecoder
from scanner.decode.zbar import ZbarDecoder, text_of
from scanner.decode.zxing import Binarizer, ZxingDecoder
from tests.camera.camsupport import Sample, on_noise, qr_image, samples, tilted


def score(decoder: Decoder, items: list[Sample]) -> tuple[int, list[str], list[str]]:
    """(images read exactly, names missed, names misread)."""
    ok = 0
    missed: list[str] = []
    misread: list[str] = []
    for sample in items:
        texts = [c.text for c in decoder.decode(sample.gray())]
        if sample.matches(texts):
            ok += 1
        else:
            (misread if texts else missed).append(sample.name)
    return ok, missed, misread


@pytest.fixture(scope="module")
def orig() -> list[Sample]:
    return samples("zxing-orig-qrcode-", range(1, 8))


# -- the samples ------------------------------------------------------------------------


def test_zxing_reads_161_of_174_camera_like_samples(orig: list[Sample]) -> None:
    assert len(orig) == 174
    ok, missed, misread = score(build_decoder("zxing"), orig)
    assert ok >= 161, missed
    assert misread == []


def test_auto_reads_at_least_162_of_170_more_than_all_libraries_together(
    orig: list[Sample],
) -> None:
    one_to_six = [s for s in orig if not s.name.startswith("zxing-orig-qrcode-7/")]
    assert len(one_to_six) == 170
    decoder = build_decoder("auto")
    ok, missed, misread = score(decoder, one_to_six)
    # The union of zxing-cpp, zbar and OpenCV is 159 on these 170 images.
    assert ok >= 162, missed
    assert misread == []
    assert decoder.errors == 0


def test_auto_camera_schedule_reads_as_much_within_one_cycle(orig: list[Sample]) -> None:
    """A code held for FRAME_CYCLE frames meets every pass of the chain."""
    decoder = build_decoder("auto")
    one_to_six = [s for s in orig if not s.name.startswith("zxing-orig-qrcode-7/")]
    ok = 0
    for sample in one_to_six:
        gray = sample.gray()
        texts = {c.text for i in range(FRAME_CYCLE) for c in decoder.decode_frame(gray, i)}
        ok += sample.expected in texts
    assert ok >= 162


def test_head_set_auto_and_zxing() -> None:
    head = samples("zxing-qrcode-", range(1, 8))
    assert len(head) == 141
    assert score(build_decoder("zxing"), head)[0] >= 129
    assert score(build_decoder("auto"), head)[0] >= 134


@pytest.mark.parametrize(("backend", "least"), [("zbar", 125), ("opencv", 79)])
def test_other_backends_match_the_baseline(orig: list[Sample], backend: str, least: int) -> None:
    decoder = build_decoder(backend)
    ok, _missed, _misread = score(decoder, orig)
    assert ok >= least


def test_opencv_raising_on_kanji_and_hanzi_is_caught_and_counted(orig: list[Sample]) -> None:
    decoder = build_decoder("opencv")
    for name in ("zxing-orig-qrcode-2/31.png", "zxing-orig-qrcode-2/33.png"):
        sample = next(s for s in orig if s.name == name)
        assert decoder.decode(sample.gray()) == []
    assert decoder.errors == 2


def test_zbar_raising_on_structured_append_is_caught_and_counted(orig: list[Sample]) -> None:
    decoder = build_decoder("zbar")
    parts = [s for s in orig if s.name.startswith("zxing-orig-qrcode-7/")]
    assert len(parts) == 4
    for sample in parts:
        assert decoder.decode(sample.gray()) == []
    assert decoder.errors == 4


# -- generated frames -------------------------------------------------------------------

PAYLOAD = "https://www.passqr.com/scan?code=PASS-ABCD1234"


@pytest.mark.parametrize("backend", ["auto", "zxing", "zbar", "opencv"])
def test_a_code_on_noise(backend: str) -> None:
    # OpenCV loses codes in a grainy background: give it a calmer one.
    frame = on_noise(qr_image(PAYLOAD), grain=4 if backend == "opencv" else 18)
    reader = "zxing" if backend == "auto" else backend
    assert build_decoder(backend).decode(frame) == [
        DecodedCode(text=PAYLOAD, format="QRCode", backend=reader)
    ]


@pytest.mark.parametrize("backend", ["auto", "zxing", "zbar"])
def test_a_tilted_code(backend: str) -> None:
    frame = tilted(on_noise(qr_image(PAYLOAD, module_px=5)))
    assert [c.text for c in build_decoder(backend).decode(frame)] == [PAYLOAD]


def test_an_inverted_code_is_found_still_and_within_a_camera_cycle() -> None:
    frame: Gray = cv2.bitwise_not(on_noise(qr_image(PAYLOAD)))  # type: ignore[assignment]
    auto = build_decoder("auto")
    assert [c.text for c in auto.decode(frame)] == [PAYLOAD]
    per_frame = [[c.text for c in auto.decode_frame(frame, i)] for i in range(FRAME_CYCLE)]
    assert [PAYLOAD] in per_frame  # the inverted search runs once per cycle
    fast = ZxingDecoder(try_invert=False)
    assert fast.decode(frame) == []  # so the inversion is what found it


def test_payloads_come_back_exactly() -> None:
    for text in ("[bold red]not a pass[/]", "PASS-AAAA0001\r\n", "Grüße, 東京", "a\x1db"):
        assert [c.text for c in build_decoder("auto").decode(on_noise(qr_image(text)))] == [text]


def test_no_code_no_result_and_views_are_fine() -> None:
    blank = on_noise(np.full((10, 10), 128, np.uint8))
    for name in ("auto", "zxing", "zbar", "opencv"):
        assert build_decoder(name).decode(blank) == []
    # A view with a row stride wider than the image (Picamera2's Y plane).
    frame = on_noise(qr_image(PAYLOAD))
    padded = np.zeros((frame.shape[0] * 3 // 2, frame.shape[1] + 64), np.uint8)
    padded[: frame.shape[0], : frame.shape[1]] = frame
    view = padded[: frame.shape[0], : frame.shape[1]]
    assert not view.flags["C_CONTIGUOUS"]
    assert [c.text for c in build_decoder("auto").decode_frame(view, 1)] == [PAYLOAD]


def test_histogram_binarizer_is_selectable() -> None:
    frame = on_noise(qr_image(PAYLOAD))
    zx = ZxingDecoder(binarizer=Binarizer.GLOBAL_HISTOGRAM)
    assert [c.text for c in zx.decode(frame)] == [PAYLOAD]


def test_a_library_fault_is_swallowed_and_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    zx = ZxingDecoder()

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("library bug")

    monkeypatch.setattr(zx._zx, "read_barcodes", boom)
    assert zx.decode(on_noise(qr_image(PAYLOAD))) == []
    assert zx.errors == 1


def test_zbar_text_decoding() -> None:
    assert text_of("Grüße".encode()) == "Grüße"
    assert text_of(b"\xff\xfeA") == "\xff\xfeA"  # not UTF-8: every byte kept


# -- missing libraries ------------------------------------------------------------------


def _without(monkeypatch: pytest.MonkeyPatch, module: str, error: Exception) -> None:
    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == module or name.startswith(module + "."):
            raise error
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)


def test_missing_libzbar_is_reported_not_raised_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "pyzbar", ImportError("Unable to find zbar shared library"))
    with pytest.raises(DecoderUnavailable) as caught:
        build_decoder("zbar")
    assert caught.value.backend == "zbar"
    assert "apt install libzbar0" in caught.value.reason
    assert "Unable to find zbar shared library" in str(caught.value)


def test_missing_pyzbar_says_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    _without(monkeypatch, "pyzbar", ModuleNotFoundError("No module named 'pyzbar'"))
    with pytest.raises(DecoderUnavailable, match="pip install pyzbar"):
        ZbarDecoder()


def test_auto_skips_a_missing_fallback_with_a_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _without(monkeypatch, "pyzbar", ImportError("Unable to find zbar shared library"))
    with caplog.at_level(logging.INFO, logger="scanner.decode.auto"):
        auto = AutoDecoder(fallbacks=["zbar", "opencv"])
    assert [d.name for d in auto.fallbacks] == ["opencv"]
    assert "skipping zbar" in caplog.text
    assert [c.text for c in auto.decode(on_noise(qr_image(PAYLOAD)))] == [PAYLOAD]


def test_auto_without_zxing_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = on_noise(qr_image(PAYLOAD))  # drawn with zxing-cpp, before it goes missing
    _without(monkeypatch, "zxingcpp", ImportError("no zxingcpp"))
    auto = build_decoder("auto")
    assert isinstance(auto, AutoDecoder)
    assert auto.zxing is None
    assert [d.name for d in auto.fallbacks] == ["zbar", "opencv"]
    assert [c.backend for c in auto.decode_frame(frame, 0)] == ["zbar"]


def test_auto_with_nothing_left_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(name: str) -> Any:
        def build() -> Decoder:
            raise DecoderUnavailable(name, f"{name} missing")

        return build

    with pytest.raises(DecoderUnavailable, match="zxing missing; zbar missing"):
        AutoDecoder(builders={n: missing(n) for n in ("zxing", "zbar", "opencv")})


def test_unknown_decoder_name() -> None:
    with pytest.raises(ValueError, match="unknown decoder 'quirc'"):
        build_decoder("quirc")
