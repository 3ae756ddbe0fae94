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
