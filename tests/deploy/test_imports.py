"""The deployment modules stay in the core: none of them pulls in Textual or the UI."""

from __future__ import annotations

import subprocess
import sys

MODULES = ("scanner.notify", "scanner.journald", "scanner.metrics", "scanner.doctor")


def test_no_textual_in_the_deployment_modules() -> None:
    code = (
        "import importlib, sys\n"
        f"for name in {MODULES!r}:\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith(('textual.', "
        "'scanner.ui')))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == ""


def test_notify_and_journald_need_only_the_standard_library() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import scanner.notify, scanner.journald\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "stdlib = set(sys.stdlib_module_names)\n"
        "print(','.join(sorted(n for n in new if n not in stdlib and n != 'scanner')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert proc.stdout.strip() == ""


#: Validating a config must not load a device library or the running kiosk.
HEAVY = (
    "serial",
    "cv2",
    "numpy",
    "evdev",
    "scanner.metrics",
    "scanner.pipeline",
    "scanner.runtime",
    "gpiozero",
    "scanner.turnstile",
)


def test_validating_a_config_stays_light() -> None:
    """Every relay type and every source kind, a synthetic camera among them, and a GPIO
    contact: the kinds' tables are read without pyserial, OpenCV, numpy, gpiozero or the
    kiosk's own modules."""
    code = (
        "import sys\n"
        "from scanner.config import parse_config\n"
        "from scanner.relay import RELAY_KINDS\n"
        "sources = [\n"
        "    {'type': 'camera', 'device': 'synthetic?seed=3&loop=false', 'codes': ['A']},\n"
        "    {'type': 'serial', 'port': '/dev/ttyUSB9'},\n"
        "    {'type': 'evdev', 'device': 'scanner'},\n"
        "    {'type': 'keyboard'},\n"
        "    {'type': 'simulated', 'codes': ['A']},\n"
        "]\n"
        "inputs = [{'type': 'gpio', 'pin': 27, 'role': 'passage'}]\n"
        "for kind in RELAY_KINDS:\n"
        "    relay = {'type': kind.name}\n"
        "    relay |= {'pin': 17} if kind.takes_pin else {'port': '/dev/ttyUSB0'}\n"
        "    if kind.takes_commands:\n"
        "        relay |= {'on_command': 'A0 01 01 A2', 'off_command': 'A0 01 00 A1'}\n"
        "    parse_config({'relay': relay, 'sources': sources, 'inputs': inputs,\n"
        "                  'metrics': {'listen': ':9108'}})\n"
        "print(len(list(RELAY_KINDS)))\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    kinds, loaded = proc.stdout.splitlines()
    assert int(kinds) >= 8
    assert loaded == ""
