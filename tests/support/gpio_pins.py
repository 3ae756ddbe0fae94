"""gpiozero's own test double, set up and torn down the same way in every GPIO test.

``MockFactory`` simulates a Pi's header: an output pin keeps its level in ``state`` and the
history of its levels in ``states``; a test presses a contact with ``drive_low()`` on an input
pin, and gpiozero calls the device's callbacks (on the test's thread, which the kiosk code must
hand to the event loop like any other thread).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gpiozero import Device
from gpiozero.exc import BadPinFactory
from gpiozero.pins.mock import MockFactory, MockPin


@contextmanager
def mock_factory(factory: MockFactory | None = None) -> Iterator[MockFactory]:
    """``Device.pin_factory`` is a fresh mock for the block, and what it was after it."""
    previous = Device.pin_factory
    factory = factory or MockFactory()
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous


class BrokenFactory(MockFactory):  # type: ignore[misc]  # gpiozero is untyped
    """A factory that cannot give out any pin (no /dev/gpiochip*, a library that fails)."""

    def pin(self, name: Any) -> MockPin:
        raise BadPinFactory("Unable to load any default pin factory!")


def press(pin: MockPin) -> None:
    """A dry contact to ground on a pulled-up input closes, then opens."""
    pin.drive_low()
    pin.drive_high()


def levels(pin: MockPin) -> list[bool]:
    """The levels the pin went through, oldest first (repeats collapsed by the mock)."""
    return [bool(s.state) for s in pin.states]
