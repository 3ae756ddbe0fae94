"""Decoders on the shared zxing-cpp sample photos: how many read exactly, how fast.

For every folder of ``../shared/qr-samples`` (the camera-like ``zxing-orig-qrcode-*``
set and the cropped ``zxing-qrcode-*`` set) and every backend (zxing, zbar, opencv,
and the ``auto`` chain the camera uses), prints images decoded to exactly the
expected text / total, misreads, and median and p95 milliseconds per image
(each image timed as the median of ``--repeat`` calls; the file read is not timed).
A ``qrcode-7`` image counts when it yields a non-empty chunk of the merged text.

    .venv/bin/python benchmarks/bench_decode.py [--repeat 3] [--samples DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from machine import machine  # noqa: E402 - benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scanner.decode import Decoder, build_decoder  # noqa: E402
from scanner.decode.auto import AutoDecoder  # noqa: E402

SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class Item:
    folder: str
    name: str
    gray: np.ndarray
    expected: str
    part: bool

    def matches(self, texts: list[str]) -> bool:
        if self.part:
            return any(t and t in self.expected for t in texts)
        return self.expected in texts


def load(root: Path, prefix: str) -> list[Item]:
    items: list[Item] = []
    for i in range(1, 8):
        folder = root / f"{prefix}{i}"
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in SUFFIXES:
                continue
            txt = folder / f"{path.stem}.txt"
            part = not txt.exists()
            if part:
                txt = folder / f"{path.stem.split('-')[0]}.txt"
            gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            items.append(Item(folder.name, path.name, gray, txt.read_bytes().decode(), part))
    return items


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class Score:
    ok: int = 0
    wrong: int = 0
    n: int = 0

    def cell(self) -> str:
        return f"{self.ok}/{self.n}" + (f" ({self.wrong}✗)" if self.wrong else "")


def run(decoder: Decoder, items: list[Item], repeat: int) -> tuple[dict[str, Score], list[float]]:
    scores: dict[str, Score] = {}
    times: list[float] = []
    for item in items:
        calls = []
        texts: list[str] = []
        for _ in range(repeat):
            start = time.perf_counter()
            texts = [c.text for c in decoder.decode(item.gray)]
            calls.append((time.perf_counter() - start) * 1000)
        times.append(statistics.median(calls))
        for key in (item.folder, "ALL"):
            score = scores.setdefault(key, Score())
            score.n += 1
            if item.matches(texts):
                score.ok += 1
            elif texts:
                score.wrong += 1
    return scores, times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--samples", type=Path, default=ROOT.parent / "shared" / "qr-samples")
    args = parser.parse_args()
    if not args.samples.is_dir():
        print(f"no samples at {args.samples}", file=sys.stderr)
        return 1
    print(f"machine: {machine()}")
    print(f"opencv {cv2.__version__}, numpy {np.__version__}")
    auto = AutoDecoder()
    print(f"chosen pipeline (auto): {' -> '.join(auto.chain)} (each only if nothing found yet)")
    backends: list[tuple[str, Decoder]] = [
        ("zxing", build_decoder("zxing")),
        ("zbar", build_decoder("zbar")),
        ("opencv", build_decoder("opencv")),
        ("auto", auto),
        ("auto+zbar+opencv", AutoDecoder(fallbacks=["zbar", "opencv"])),
    ]
    for prefix, label in (
        ("zxing-orig-qrcode-", "camera-like set (zxing-orig-qrcode-*)"),
        ("zxing-qrcode-", "cropped set (zxing-qrcode-*)"),
    ):
        items = load(args.samples, prefix)
        folders = sorted({i.folder for i in items})
        results = {name: run(decoder, items, args.repeat) for name, decoder in backends}
        print(f"\n{label}: {len(items)} images; cells: exact / total (misreads)")
        header = ["folder", "n", *[name for name, _ in backends]]
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join("---" for _ in header) + "|")
        for key in [*folders, "ALL"]:
            n = results["zxing"][0][key].n
            cells = [results[name][0][key].cell() for name, _ in backends]
            label = key if key == "ALL" else f"qrcode-{key.removeprefix(prefix)}"
            print(f"| {label} | {n} | " + " | ".join(cells) + " |")
        one_to_six = Score()
        for key in folders:
            if not key.endswith("-7"):
                score = results["auto"][0][key]
                one_to_six.ok += score.ok
                one_to_six.n += score.n
        print(f"| auto on folders 1-6 | {one_to_six.n} | {one_to_six.ok}/{one_to_six.n} |")
        for stat, q in (("median ms", 50), ("p95 ms", 95)):
            cells = [f"{pct(results[name][1], q):.2f}" for name, _ in backends]
            print(f"| {stat} | | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
