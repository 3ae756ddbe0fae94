"""The systemd notification protocol (``sd_notify``), in the standard library.

Under ``Type=notify`` systemd waits for ``READY=1`` before it calls the service
started, and with ``WatchdogSec=`` it kills and restarts a service whose
``WATCHDOG=1`` pings stop. The pings are sent from the loop that does the work
(the UI's event loop), so a hung UI is noticed: a ping from a thread of its own
would keep a frozen kiosk alive.

Every function is a silent no-op when ``$NOTIFY_SOCKET`` is not set (not under
systemd, or in a test), and never raises: a lost notification must not take the
gate down.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable, Mapping

_log = logging.getLogger(__name__)

__all__ = [
    "Watchdog",
    "notify",
    "ready",
    "status",
    "stopping",
    "watchdog",
    "watchdog_interval",
]


def _address(environ: Mapping[str, str]) -> str | bytes | None:
    path = environ.get("NOTIFY_SOCKET", "")
    if not path:
        return None
    if path.startswith("@"):
        # Abstract namespace: a leading NUL byte instead of the "@".
        return b"\0" + path[1:].encode()
    if not path.startswith("/"):
        return None  # vsock:... and other transports are not for a kiosk
    return path


def notify(state: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Send one notification (``"READY=1"``, ``"STATUS=..."``, several lines at once).

    Args:
        state: newline-separated ``KEY=value`` assignments.
        environ: the environment to read ``NOTIFY_SOCKET`` from (default ``os.environ``).

    Returns:
        True when the datagram was sent; False when not under systemd or on failure.
    """
    address = _address(os.environ if environ is None else environ)
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(state.encode("utf-8", errors="replace"))
    except OSError as err:
        _log.debug("sd_notify %r failed: %s", state.split("=", 1)[0], err)
        return False
    return True


def ready() -> bool:
    """The service is up: systemd's ``start`` finishes and ``After=`` units may go."""
    return notify("READY=1")


def watchdog() -> bool:
    """One keep-alive ping; systemd restarts the service when they stop for ``WatchdogSec``."""
    return notify("WATCHDOG=1")


def status(text: str) -> bool:
    """A one-line status for ``systemctl status`` (newlines become spaces)."""
    return notify("STATUS=" + " ".join(text.split()))


def stopping() -> bool:
    """The service is shutting down on purpose (turning the relay OFF, closing the journal)."""
    return notify("STOPPING=1")


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog timeout in seconds, or None when systemd expects no pings from us.

    ``WATCHDOG_USEC`` is the timeout; ``WATCHDOG_PID``, when set, names the one
    process that must ping (a child that inherited the environment must not).
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        value = int(usec)
    except ValueError:
        return None
    if value <= 0:
        return None
    return value / 1_000_000


class Watchdog:
    """READY once, then ``WATCHDOG=1`` at half the timeout while the kiosk is healthy.

    Run it as a task on the loop that does the work (the UI's, or headless mode's)::

        watchdog = Watchdog()
        task = asyncio.create_task(watchdog.run(lambda: kiosk_is_healthy))

    If the loop hangs, or ``healthy()`` stays false (or raises) for ``WatchdogSec``,
    systemd kills the service and ``Restart=always`` brings it back.

    Args:
        send: sends one notification (default :func:`notify`); tests pass their own.
        interval_s: the watchdog timeout; default from :func:`watchdog_interval`.
    """

    def __init__(
        self,
        *,
        send: Callable[[str], bool] | None = None,
        interval_s: float | None = None,
    ) -> None:
        self._send = send or notify
        self.interval_s = interval_s if interval_s is not None else watchdog_interval()
        self.pings = 0
        self.missed = 0

    async def run(self, healthy: Callable[[], bool]) -> None:
        """Send READY, then ping until cancelled. Returns at once without a watchdog."""
        self._send("READY=1")
        if self.interval_s is None:
            return
        period = self.interval_s / 2
        was_healthy = True
        while True:
            await asyncio.sleep(period)
            try:
                ok = bool(healthy())
            except Exception:  # noqa: BLE001 - a broken health check means: not healthy
                _log.exception("watchdog health check failed")
                ok = False
            if ok:
                self._send("WATCHDOG=1")
                self.pings += 1
                if not was_healthy:
                    _log.info("healthy again: watchdog pings resumed")
            else:
                self.missed += 1
                if was_healthy:
                    _log.error(
                        "unhealthy: watchdog pings stopped; systemd restarts the service "
                        "after %.0f s unless it recovers",
                        self.interval_s,
                    )
            was_healthy = ok
