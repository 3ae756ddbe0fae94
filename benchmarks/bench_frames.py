"""Camera frames through the chosen decoding pipeline, and the CPU a 30 fps camera costs.

Part 1 - per frame: 640x480, 1280x720 and 1920x1080 BGR frames, with a code and
without (the synthetic camera's cluttered room, and a worst-case fine texture
full of finder-like blobs), each through exactly what the camera's decode thread
does: BGR -> GRAY (``cv2.cvtColor``), then ``decoder.decode_frame(gray, index)``
with the frame index running, so the ``auto`` schedule's rotating extra passes
are included. Prints median / mean / p95 ms and the sustainable fps (1000 / mean).

Part 2 - a 30 fps camera loop: the real CameraSource (capture thread, frame queue,
decode thread, emits on the event loop) for ``--seconds`` on
  (a) an MJPG AVI recorded from the synthetic camera, played at 30 fps by
      OpenCvCapture (JPEG decoding included, like a UVC webcam sending MJPG),
  (b) the same with a decoder that does nothing (what capture alone costs),
  (c) the synthetic camera itself (frame generation included);
process CPU time (``time.process_time``) over wall time = share of one core.

    .venv/bin/python benchmarks/bench_frames.py [--frames 60] [--seconds 10] [--size 1280x720]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from machine import machine as describe  # noqa: E402 - benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scanner.config import CameraSourceConfig  # noqa: E402
from scanner.decode import DecodedCode, Decoder, Gray, build_decoder  # noqa: E402
from scanner.decode.auto import AutoDecoder  # noqa: E402
from scanner.models import RawScan  # noqa: E402
from scanner.sources.camera import CameraSource  # noqa: E402
from scanner.sources.capture import OpenCvCapture, to_gray  # noqa: E402
from scanner.sources.synthetic import SceneRenderer, SyntheticCapture, SyntheticScript  # noqa: E402

SIZES = ((640, 480), (1280, 720), (1920, 1080))
CODES = (
    "https://www.passqr.com/scan?code=PASS-ABCD1234",
    "PASS-EFGH5678",
    "https://www.passqr.com/p/PASS-SEAS0001",
)


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{describe()}, opencv {cv2.__version__}, load average {load:.2f} at start"


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def busy_texture(width: int, height: int, seed: int = 5) -> np.ndarray:
    """A worst case: blocky high-contrast texture (gravel, a patterned shirt)."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 2, size=(height // 6 + 1, width // 6 + 1), dtype=np.uint8) * 200
    big = cv2.resize(blocks, (width, height), interpolation=cv2.INTER_NEAREST)
    noisy = np.clip(big + rng.normal(30, 12, big.shape), 0, 255).astype(np.uint8)
    return cv2.cvtColor(cv2.GaussianBlur(noisy, (3, 3), 0), cv2.COLOR_GRAY2BGR)


def frames_for(width: int, height: int, n: int) -> dict[str, list[np.ndarray]]:
    renderer = SceneRenderer(CODES, width=width, height=height, seed=3, color=True)
    with_code = [renderer.render(i, (i % len(CODES), i, (i % 10) / 10)) for i in range(n)]
    room = [renderer.render(i, None) for i in range(n)]
    busy = busy_texture(width, height)
    return {"code": with_code, "no code (room)": room, "no code (busy)": [busy] * n}


def time_frames(
    decoder: Decoder, frames: list[np.ndarray], expect: bool
) -> tuple[list[float], int]:
    times: list[float] = []
    found = 0
    for index, bgr in enumerate(frames):
        start = time.perf_counter()
        gray = to_gray(bgr)
        codes = decoder.decode_frame(gray, index)
        times.append((time.perf_counter() - start) * 1000)
        found += bool(codes)
    if not expect:
        assert found == 0, "a frame without a code decoded to something"
    return times, found


def part1(n: int) -> None:
    print(
        "\nPart 1: ms per frame, BGR -> gray -> decode_frame "
        f"({n} frames each; median / mean / p95; fps = 1000 / mean)"
    )
    print(
        "| frame | content | auto median | auto mean | auto p95 | auto fps | decoded "
        "| zxing-default median | zxing-default mean |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for width, height in SIZES:
        sets = frames_for(width, height, n)
        for label, frames in sets.items():
            expect = label == "code"
            auto = AutoDecoder()
            time_frames(auto, frames[:5], expect)  # warm up
            t_auto, found = time_frames(auto, frames, expect)
            zxing = build_decoder("zxing")
            t_zx, _ = time_frames(zxing, frames, expect)
            mean = statistics.fmean(t_auto)
            print(
                f"| {width}x{height} | {label} | {statistics.median(t_auto):.2f} | {mean:.2f} "
                f"| {pct(t_auto, 95):.2f} | {1000 / mean:.0f} "
                f"| {f'{found}/{n}' if expect else '-'} "
                f"| {statistics.median(t_zx):.2f} | {statistics.fmean(t_zx):.2f} |"
            )


class NullDecoder(Decoder):
    name = "none"

    def decode(self, gray: Gray) -> list[DecodedCode]:
        return []


def record_video(path: Path, width: int, height: int, seconds: float) -> None:
    script = SyntheticScript(codes=CODES, interval_s=3.0, start_delay_s=0.5, loop=True)
    camera = SyntheticCapture(script, width=width, height=height, fps=30, color=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 30, (width, height))
    try:
        for i in range(int(seconds * 30)):
            writer.write(camera.render_raw(i))
    finally:
        writer.release()


async def camera_loop(source: CameraSource, seconds: float) -> dict[str, float]:
    emitted: list[RawScan] = []
    task = asyncio.create_task(source.run(emitted.append))
    await asyncio.sleep(1.0)  # opened and warmed up
    frames0, decoded0 = source.frames_captured, source.frames_decoded
    dropped0 = source.frames_dropped
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    stats = {
        "cpu_pct": 100 * cpu / wall,
        "captured_fps": (source.frames_captured - frames0) / wall,
        "decoded_fps": (source.frames_decoded - decoded0) / wall,
        "dropped": source.frames_dropped - dropped0,
        "emitted": len(emitted),
        "last_ms": source.last_decode_ms,
    }
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    return stats


def part2(seconds: float, width: int, height: int) -> None:
    print(
        f"\nPart 2: a 30 fps camera loop at {width}x{height} for {seconds:g} s "
        "(CPU = process CPU time / wall time, % of one core)"
    )
    print(
        "| source | decoder | CPU % of one core | captured fps | decoded fps | dropped "
        "| codes emitted |"
    )
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-frames-") as tmp:
        video = Path(tmp) / "camera.avi"
        record_video(video, width, height, seconds + 3)
        config = CameraSourceConfig(
            type="camera", device=str(video), width=width, height=height, fps=30
        )
        runs: list[tuple[str, str, CameraSource]] = [
            (
                "MJPG video @30 fps",
                "auto",
                CameraSource(config, backend=lambda: OpenCvCapture(str(video), fps=30)),
            ),
            (
                "MJPG video @30 fps",
                "none (capture only)",
                CameraSource(
                    config,
                    backend=lambda: OpenCvCapture(str(video), fps=30),
                    decoder=NullDecoder,
                ),
            ),
            (
                "synthetic @30 fps",
                "auto",
                CameraSource(
                    CameraSourceConfig(
                        type="camera",
                        device="synthetic?interval_s=3&start_delay_s=0.5",
                        codes=list(CODES),
                        width=width,
                        height=height,
                        fps=30,
                    )
                ),
            ),
        ]
        for label, decoder, source in runs:
            s = asyncio.run(camera_loop(source, seconds))
            print(
                f"| {label} | {decoder} | {s['cpu_pct']:.1f} | {s['captured_fps']:.1f} "
                f"| {s['decoded_fps']:.1f} | {s['dropped']:.0f} | {s['emitted']:.0f} |"
            )


def small_code_frames(width: int, height: int, module_px: float, n: int) -> list[np.ndarray]:
    """Gray frames of the room with a code of ``module_px`` pixels per module, placed at random."""
    from scanner.sources.synthetic import qr_modules

    renderer = SceneRenderer((), width=width, height=height, seed=4)
    modules = qr_modules(CODES[0])
    side = round(modules.shape[0] * module_px)
    code = cv2.resize(modules, (side, side), interpolation=cv2.INTER_AREA)
    code = cv2.convertScaleAbs(code, alpha=200 / 255, beta=30)
    rng = np.random.default_rng(11)
    out = []
    for i in range(n):
        frame = renderer.render(i, None)
        y, x = int(rng.integers(0, height - side)), int(rng.integers(0, width - side))
        frame[y : y + side, x : x + side] = code
        out.append(cv2.GaussianBlur(frame, (0, 0), 0.6))
    return out


def part3(n: int) -> None:
    print(
        "\nPart 3: does downscaling pay? zxing (camera fast pass) on the full frame vs the "
        f"frame halved (cv2.INTER_AREA, resize included); {n} frames per cell"
    )
    print("| frame | module px | full: decoded | full ms | half: decoded | half ms |")
    print("|---|---|---|---|---|---|")
    zx = AutoDecoder().zxing
    assert zx is not None
    for width, height in SIZES[1:]:
        for module_px in (1.5, 2.0, 2.5, 3.0, 4.0):
            frames = small_code_frames(width, height, module_px, n)
            cells = []
            for half in (False, True):
                ok, times = 0, []
                for gray in frames:
                    start = time.perf_counter()
                    img = (
                        cv2.resize(gray, (width // 2, height // 2), interpolation=cv2.INTER_AREA)
                        if half
                        else gray
                    )
                    ok += bool(zx.read(img, try_invert=False)[0])
                    times.append((time.perf_counter() - start) * 1000)
                cells.append(f"{ok}/{n} | {statistics.median(times):.2f}")
            print(f"| {width}x{height} | {module_px:g} | " + " | ".join(cells) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--size", default="1280x720", help="frame size of part 2")
    parser.add_argument("--skip-loop", action="store_true", help="part 1 only")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    print(f"machine: {machine()}")
    print(
        f"chosen pipeline: auto = {' -> '.join(AutoDecoder().chain)}; per camera frame: "
        "zxing (no inverted search) + crop rescue of failed symbols + one rotating extra "
        "pass (inverted / GlobalHistogram / blurred GlobalHistogram)"
    )
    part1(args.frames)
    part3(max(args.frames // 2, 10))
    if not args.skip_loop:
        part2(args.seconds, width, height)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
