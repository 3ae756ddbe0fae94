"""A HID keyboard-wedge scanner read directly with evdev, for unattended kiosks.

The device is grabbed, so scans never reach the console or a login prompt.
It is found by path (``/dev/input/by-id/...-event-kbd``) or by name; when it
is unplugged the source goes DEGRADED and picks it up again when it returns.
Needs the optional ``evdev`` extra and the service user in the ``input`` group.
"""

from __future__ import annotations

import logging
import select
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from scanner.sources.base import Source, SourceState, ThreadedSource
from scanner.sources.evdev_keys import KeyDecoder
from scanner.sources.kind import SourceKind

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class EvdevSourceConfig:
    type: Literal["evdev"]
    device: str
    """``/dev/input/by-id/...-event-kbd``, or part of the device's name."""
    grab: bool = True
    """Take the device for ourselves, so scans never reach the console."""
    name: str | None = None


def _evdev() -> Any:
    try:
        import evdev
    except ImportError as err:  # reported as the source's state, never a crash
        raise OSError(
            "python-evdev is not installed (pip install 'passqr-scanner[evdev]')"
        ) from err
    return evdev


def find_device(evdev: Any, wanted: str) -> Any:
    """Open the device at a path, or the first whose name contains ``wanted``.

    Raises:
        OSError: nothing matches, or it cannot be opened.
    """
    if wanted.startswith("/"):
        return evdev.InputDevice(wanted)
    for path in evdev.list_devices():
        device = evdev.InputDevice(path)
        if wanted.lower() in (device.name or "").lower():
            return device
        device.close()
    raise OSError(f"no input device named like {wanted!r}")


class EvdevSource(ThreadedSource):
    kind = "evdev"

    def __init__(
        self, device: str, *, grab: bool = True, name: str | None = None, evdev_module: Any = None
    ) -> None:
        super().__init__(name or f"evdev:{device}")
        self.device = device
        self.grab = grab
        self._evdev = evdev_module

    def _loop(self, deliver: Callable[[str], None]) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                evdev = self._evdev or _evdev()
                device = find_device(evdev, self.device)
            except OSError as err:
                self._set(SourceState.DEGRADED, f"cannot open: {err}")
                self._backoff(attempt)
                attempt += 1
                continue
            attempt = 0
            try:
                if self.grab:
                    device.grab()
                self._set(SourceState.READY, device.name or "")
                self._read(device, deliver)
            except OSError as err:
                self._set(SourceState.DEGRADED, f"disconnected: {err}")
            finally:
                try:
                    if self.grab:
                        device.ungrab()
                except OSError:
                    pass
                device.close()

    def _read(self, device: Any, deliver: Callable[[str], None]) -> None:
        decoder = KeyDecoder()
        while not self._stop.is_set():
            ready, _, _ = select.select([device.fd], [], [], 0.1)
            if not ready:
                continue
            for event in device.read():
                text = decoder.feed(event.type, event.code, event.value)
                if text:
                    deliver(text)


def _build(config: EvdevSourceConfig, headless: bool) -> Source:
    return EvdevSource(config.device, grab=config.grab, name=config.name)


KIND = SourceKind(name="evdev", config=EvdevSourceConfig, build=_build)
