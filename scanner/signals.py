"""Turning SIGTERM, SIGINT and the other terminating signals into an event, so every exit
path runs the same cleanup (the relay's final OFF above all)."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator

#: Every signal whose default action would end the process without the relay's final OFF.
#: (SIGKILL cannot be caught: only a board's own timer closes the door after it.)
STOP_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGALRM,
)


@contextlib.contextmanager
def stop_on_signals(
    signals: tuple[signal.Signals, ...] = STOP_SIGNALS,
) -> Iterator[asyncio.Event]:
    """An event set by any of ``signals`` while the block runs (handlers removed after)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
