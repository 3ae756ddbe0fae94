"""The demo's synthetic camera end to end, and the camera core's import hygiene."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from scanner.config import CameraSourceConfig, KeyboardSourceConfig
from scanner.demo import demo_environment, demo_script
from scanner.headless import run_headless

ROOT = Path(__file__).resolve().parents[2]


async def test_headless_demo_plays_the_script_once_through_the_camera_and_exits() -> None:
    out = io.StringIO()
    with demo_environment(interval_s=0.3, loop=False, keyboard=False) as env:
        (camera,) = env.config.sources
        assert isinstance(camera, CameraSourceConfig)
        assert camera.codes == demo_script(env.codes)
        assert camera.name == "demo scanner"
        status = await run_headless(env.config, api_key=env.api_key, out=out)
    assert status == 0
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(d["decision"], d["reason"]) for d in lines] == [
        ("accepted", "valid"),
        ("rejected", "used"),
        ("accepted", "valid"),
        ("rejected", "expired"),
        ("rejected", "invalid_payload"),
        ("rejected", "revoked"),
        ("rejected", "not_found"),
        ("rejected", "used"),
        ("accepted", "valid"),
    ]
    assert lines[4]["code"] == "[bold red]not a pass[/]"  # the payload, as encoded
    assert {d["source"] for d in lines} == {"demo scanner"}


def test_demo_keeps_a_keyboard_and_loops_by_default() -> None:
    with demo_environment() as env:
        camera, keyboard = env.config.sources
        assert isinstance(camera, CameraSourceConfig) and isinstance(keyboard, KeyboardSourceConfig)
        assert "interval_s=4" in str(camera.device) and "loop=true" in str(camera.device)
        assert env.config.gate.repeat_ignore_s == 3.0


def test_the_camera_core_never_imports_the_ui() -> None:
    code = (
        "import sys\n"
        "import scanner.decode, scanner.decode.cli, scanner.decode.auto, scanner.decode.zbar\n"
        "import scanner.decode.opencv, scanner.sources.camera, scanner.sources.synthetic\n"
        "bad = [m for m in sys.modules if m == 'textual' or m.startswith(('textual.', "
        "'scanner.ui'))]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr


def test_registering_the_decode_command_stays_light() -> None:
    """The main CLI imports ``scanner.decode.cli`` for every command: no numpy, no OpenCV."""
    code = (
        "import sys\n"
        "import scanner.decode.cli\n"
        "heavy = [m for m in ('numpy', 'cv2', 'zxingcpp') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import scanner.decode as d\n"
        "assert d.DECODER_NAMES == tuple(d.BUILDERS)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
