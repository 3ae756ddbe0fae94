"""A HID keyboard-wedge scanner read directly with evdev, for unattended kiosks.

The device is grabbed, so scans never reach the console or a login prompt.
It is found by path (``/dev/input/by-id/...-event-kbd``) or by name; when it
is unplugged the source goes DEGRADED and picks it up again when it returns.
Needs the optional ``evdev`` extra and the service user in the ``input`` group.
The doctor's probe (at the end) looks the device up, never grabs it.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import select
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from scanner.checks import Check, Status
from scanner.probes import blocking, device_failure, resolved
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


# -- the doctor's probe: the device is looked up (and opened by path), never grabbed ----------


def _evdev_label(path: str) -> str:
    """Open the node (as the kiosk would) and name it, when python-evdev is there."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    os.close(fd)
    if importlib.util.find_spec("evdev") is None:
        return ""
    import evdev

    device = evdev.InputDevice(path)
    try:
        return f" ({device.name})"
    finally:
        device.close()


def _evdev_find(wanted: str) -> tuple[str | None, list[str]]:
    """The first input device named like ``wanted``, and every name seen."""
    import evdev

    names: list[str] = []
    for path in evdev.list_devices():
        try:
            device = evdev.InputDevice(path)
        except OSError:
            continue
        label = str(device.name)
        device.close()
        names.append(label)
        if wanted.lower() in label.lower():
            return path, names
    return None, names


async def _check(name: str, wanted: str) -> Check:
    if wanted.startswith("/"):
        try:
            label = await blocking(lambda: _evdev_label(wanted))
        except (OSError, TimeoutError) as err:
            return device_failure(name, wanted, err, "scanner")
        return Check(name=name, status=Status.OK, detail=f"{resolved(wanted)}: found{label}")
    if importlib.util.find_spec("evdev") is None:
        return Check(
            name=name,
            status=Status.FAIL,
            detail="python-evdev is not installed",
            fix="pip install 'passqr-scanner[evdev]' into the kiosk's virtual environment",
        )
    found, names = await blocking(lambda: _evdev_find(wanted))
    if found is not None:
        return Check(name=name, status=Status.OK, detail=f"{wanted!r}: found at {found}")
    seen = ", ".join(names) or "no readable input devices (is the user in group input?)"
    return Check(
        name=name,
        status=Status.FAIL,
        detail=f"no input device named like {wanted!r}; found: {seen}",
        fix="plug the scanner in, or set device to a /dev/input/by-id/...-event-kbd path",
    )


async def _probe(config: EvdevSourceConfig, name: str) -> list[Check]:
    return [await _check(name, config.device)]


KIND = SourceKind(name="evdev", config=EvdevSourceConfig, build=_build, probe=_probe, opens="input")
