"""``run --headless``: no screen, one JSON line per decision on standard output.

For screenless turnstiles and for scripts. Logs go to standard error. The run
ends on SIGTERM/SIGINT, or by itself once every source has ended (standard
input closed, a simulated script played out) and the last scan is decided.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any, TextIO

from scanner import notify
from scanner.config import Config
from scanner.models import Decision
from scanner.runtime import Kiosk
from scanner.signals import stop_on_signals

_log = logging.getLogger(__name__)


async def run_headless(
    config: Config, *, api_key: str, out: TextIO | None = None, kiosk: Kiosk | None = None
) -> int:
    """Run the gate without a UI until a signal or until all sources end.

    Returns:
        the process exit status (0).
    """
    stream = out or sys.stdout
    kiosk = kiosk or Kiosk(config, api_key=api_key, headless=True)

    def emit_line(line: dict[str, Any]) -> None:
        stream.write(json.dumps(line, ensure_ascii=False) + "\n")
        stream.flush()

    def emit(decision: Decision) -> None:
        emit_line(decision.to_json())

    kiosk.gate.subscribe(emit)
    # Issue 16: each passage outcome, exit, tamper and alarm is a line of its own ("event").
    kiosk.turnstile.subscribe(lambda event: emit_line(event.to_json()))
    with stop_on_signals() as stop:
        try:
            await kiosk.start()
            # READY, then WATCHDOG pings from this loop: a hung loop gets restarted.
            watchdog = asyncio.create_task(notify.Watchdog().run(lambda: True))
            done = asyncio.create_task(kiosk.sources_done())
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({done, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not stop.is_set():
                # Every source ended (stdin closed): decide what was read, then stop
                # (a signal meanwhile still stops at once).
                settled = asyncio.create_task(kiosk.gate.settle())
                await asyncio.wait({settled, stopper}, return_when=asyncio.FIRST_COMPLETED)
                settled.cancel()
            notify.stopping()
            for task in (done, stopper, watchdog):
                task.cancel()
            if stop.is_set():
                _log.info("signal received, stopping")
        finally:
            await kiosk.stop()
    return 0
