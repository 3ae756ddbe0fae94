"""``type = "none"``: no board. The pulse is still timed so the screen can show the door."""

from __future__ import annotations

from scanner.relay.base import Relay


class NoRelay(Relay):
    kind = "none"

    def _switch(self, on: bool) -> None:
        """Nothing to drive."""
