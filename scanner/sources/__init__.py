"""Scanner inputs: one interface, one module per kind, built from ``[[sources]]``."""

from __future__ import annotations

from scanner.config import (
    CameraSourceConfig,
    EvdevSourceConfig,
    KeyboardSourceConfig,
    SerialSourceConfig,
    SourceConfig,
)
from scanner.sources.base import Emit, Source, SourceState
from scanner.sources.keyboard import KeyboardSource, stdin_if_piped
from scanner.sources.serial import SerialSource
from scanner.sources.simulated import SimulatedSource


def build_source(config: SourceConfig, *, headless: bool = False) -> Source:
    """The source for one ``[[sources]]`` table; nothing is opened until ``run``."""
    if isinstance(config, SerialSourceConfig):
        return SerialSource(
            config.port,
            baudrate=config.baudrate,
            idle_timeout_s=config.idle_timeout_s,
            name=config.name,
        )
    if isinstance(config, CameraSourceConfig):
        # Imported here: OpenCV and the decoders load only on gates with a camera.
        from scanner.sources.camera import CameraSource

        return CameraSource(config)
    if isinstance(config, EvdevSourceConfig):
        from scanner.sources.evdev_source import EvdevSource

        return EvdevSource(config.device, grab=config.grab, name=config.name)
    if isinstance(config, KeyboardSourceConfig):
        return KeyboardSource(
            config.name or "keyboard", stdin=stdin_if_piped() if headless else None
        )
    return SimulatedSource(
        config.codes,
        interval_s=config.interval_s,
        start_delay_s=config.start_delay_s,
        loop=config.loop,
        name=config.name or "simulated",
    )


__all__ = [
    "Emit",
    "KeyboardSource",
    "SerialSource",
    "SimulatedSource",
    "Source",
    "SourceState",
    "build_source",
]
