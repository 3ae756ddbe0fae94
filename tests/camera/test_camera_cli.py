"""``passqr-scanner decode``: the JSON-lines contract, errors per file, and the parser hook."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from scanner.decode.cli import add_decode_parser
from tests.camera.camsupport import on_noise, qr_image, samples_dir

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, image: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), image)
    return path


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scanner.decode", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_json_lines_one_per_image_in_order(tmp_path: Path) -> None:
    good = write(tmp_path / "pass.png", on_noise(qr_image("[bold red]not a pass[/]")))
    blank = write(tmp_path / "blank.jpg", on_noise(np.full((8, 8), 128, np.uint8)))
    missing = tmp_path / "missing.png"
    junk = tmp_path / "junk.png"
    junk.write_text("not an image")
    result = run_module("--json", str(good), str(missing), str(blank), str(junk))
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [list(line) for line in lines] == [["file", "codes", "ms"]] * 2
    assert lines[0]["file"] == str(good)
    assert lines[0]["codes"] == [
        {"text": "[bold red]not a pass[/]", "format": "QRCode", "backend": "zxing"}
    ]
    assert isinstance(lines[0]["ms"], float) and lines[0]["ms"] >= 0
    assert lines[1] == {"file": str(blank), "codes": [], "ms": lines[1]["ms"]}
    errors = result.stderr.splitlines()
    assert errors == [
        f"passqr-scanner decode: {missing}: cannot read the image: No such file or directory",
        f"passqr-scanner decode: {junk}: cannot read the image: not an image OpenCV can read",
    ]


def test_json_on_a_sample_with_each_decoder() -> None:
    image = samples_dir() / "zxing-orig-qrcode-1" / "1.png"
    expected = (image.parent / "1.txt").read_text(encoding="utf-8")
    for decoder in ("auto", "zxing", "zbar"):
        result = run_module("--json", "--decoder", decoder, str(image))
        assert result.returncode == 0, result.stderr
        (line,) = result.stdout.splitlines()
        codes = json.loads(line)["codes"]
        assert [c["text"] for c in codes] == [expected]
        assert codes[0]["backend"] == ("zxing" if decoder == "auto" else decoder)


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="passqr-scanner")
    add_decode_parser(main.add_subparsers(dest="command", required=True))
    return main


def test_parser_hook_and_human_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = write(tmp_path / "a.png", on_noise(qr_image("PASS-AAAA0001\r\n")))
    blank = write(tmp_path / "b.png", on_noise(np.full((8, 8), 128, np.uint8)))
    args = parser().parse_args(["decode", str(good), str(blank)])
    assert (args.decoder, args.json) == ("auto", False)
    assert args.func(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{good}: PASS-AAAA0001\\x0d\\x0a (QRCode, zxing) [")
    assert out[1].startswith(f"{blank}: no code found [")


def test_parser_rejects_unknown_decoder(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["decode", "--decoder", "quirc", "x.png"])
    assert "invalid choice: 'quirc'" in capsys.readouterr().err


def test_missing_backend_is_a_clear_error(tmp_path: Path) -> None:
    image = write(tmp_path / "a.png", on_noise(qr_image("X")))
    code = (
        "import builtins, sys\n"
        "real = builtins.__import__\n"
        "def fake(name, *a, **k):\n"
        "    if name.startswith('pyzbar'):\n"
        "        raise ImportError('Unable to find zbar shared library')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = fake\n"
        "from scanner.decode.__main__ import main\n"
        f"sys.exit(main(['--decoder', 'zbar', {str(image)!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 69
    assert "decoder zbar unavailable" in result.stderr
    assert "apt install libzbar0" in result.stderr
    assert "Traceback" not in result.stderr
