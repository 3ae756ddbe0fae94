"""Scanner inputs: one interface, one module per kind, built from ``[[sources]]``.

A kind's module declares its table (a config dataclass), its rules, its builder and
its doctor probe (:class:`SourceKind`) beside its driver; :data:`SOURCE_KINDS` below makes it known,
one line per kind. Light on import: pyserial, OpenCV, numpy and evdev load when a
source of theirs runs.
"""

from __future__ import annotations

from scanner.registry import Registry
from scanner.sources import camera, evdev_source, keyboard, serial, simulated
from scanner.sources.base import Emit, Source, SourceState
from scanner.sources.keyboard import KeyboardSource, stdin_if_piped
from scanner.sources.kind import AnySourceKind, SourceKind, SourceTable
from scanner.sources.serial import SerialSource
from scanner.sources.simulated import SimulatedSource

#: Every source kind, by ``type``: a new kind is one module and one line here.
SOURCE_KINDS: Registry[AnySourceKind] = Registry("source type")
SOURCE_KINDS.register(serial.KIND)
SOURCE_KINDS.register(keyboard.KIND)
SOURCE_KINDS.register(simulated.KIND)
SOURCE_KINDS.register(camera.KIND)
SOURCE_KINDS.register(evdev_source.KIND)


def build_source(config: SourceTable, *, headless: bool = False) -> Source:
    """The source for one ``[[sources]]`` table; nothing is opened until ``run``.

    Args:
        config: a validated table of a registered kind (its ``type`` says which).
        headless: keyboard sources read standard input instead of the UI.
    """
    return SOURCE_KINDS.lookup(config.type, "sources.type").build(config, headless)


__all__ = [
    "SOURCE_KINDS",
    "Emit",
    "KeyboardSource",
    "SerialSource",
    "SimulatedSource",
    "Source",
    "SourceKind",
    "SourceState",
    "SourceTable",
    "build_source",
    "stdin_if_piped",
]
