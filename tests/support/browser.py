"""Headless Chromium for tests: a page's DOM once its scripts have run, or a screenshot.

Debian's ``chromium`` package (``apt-get install chromium``). Every run has a fresh
profile in a temporary directory and no background networking (on a closed network the
browser's own look-ups would hang it), runs in a process group of its own, and is killed
with that whole group when it outlives its timeout.

Time in the page is virtual: ``virtual_time_ms`` of it pass as fast as the page allows
(a page polling every 2 s polls four times in 8000 ms, in about a second of real time);
the DOM is dumped, or the screenshot taken, when that budget is spent.

Example:
    html = dump_dom("http://127.0.0.1:8080/hub#key=pqr_live_...", timeout_s=15)
    screenshot("http://127.0.0.1:8080/hub", Path("/tmp/hub.png"), size=(1280, 800))
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

#: Where Debian puts it; else the first ``chromium`` on PATH.
CHROMIUM = Path("/usr/bin/chromium")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-breakpad",
    "--disable-default-apps",
    "--disable-extensions",
    "--mute-audio",
    "--hide-scrollbars",
)


class BrowserError(RuntimeError):
    """Chromium failed, or did not finish in time (it was killed)."""


def find_chromium() -> str | None:
    """The Chromium executable, or None when it is not installed."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return str(CHROMIUM)
    return shutil.which("chromium")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_chromium(arguments: Sequence[str], *, timeout_s: float) -> str:
    """Run headless Chromium with ``arguments`` (after the fixed flags); its standard output.

    Raises:
        BrowserError: Chromium is missing, failed, or outlived ``timeout_s`` (then its
            whole process group is killed).
    """
    binary = find_chromium()
    if binary is None:
        raise BrowserError("chromium is not installed (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        command = [binary, *_FLAGS, f"--user-data-dir={profile}", *arguments]
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.communicate()
            raise BrowserError(f"chromium did not finish within {timeout_s} s") from None
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace")[-2000:]
        raise BrowserError(f"chromium exited with {proc.returncode}:\n{tail}")
    return out.decode("utf-8", "replace")


def dump_dom(url: str, *, timeout_s: float = 20.0, virtual_time_ms: int = 8000) -> str:
    """The serialised DOM of ``url`` after ``virtual_time_ms`` of (virtual) page time."""
    return run_chromium(
        [f"--virtual-time-budget={virtual_time_ms}", "--dump-dom", url], timeout_s=timeout_s
    )


def screenshot(
    url: str,
    path: Path,
    size: tuple[int, int] = (1280, 800),
    *,
    timeout_s: float = 20.0,
    virtual_time_ms: int = 8000,
) -> Path:
    """A PNG of ``url`` in a ``size`` window (width, height), written to ``path``.

    Raises:
        BrowserError: as `run_chromium`, or no PNG was written.
    """
    width, height = size
    run_chromium(
        [
            f"--window-size={width},{height}",
            f"--virtual-time-budget={virtual_time_ms}",
            f"--screenshot={path}",
            url,
        ],
        timeout_s=timeout_s,
    )
    if not path.is_file() or not path.read_bytes().startswith(PNG_SIGNATURE):
        raise BrowserError(f"chromium wrote no PNG to {path}")
    return path
