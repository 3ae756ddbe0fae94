"""The machine line every benchmark prints beside its figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """``2 cores, Intel(R) Xeon(R) Processor, Python 3.11.7``."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"
