"""``type = "none"``: no board. The pulse is still timed so the screen can show the door."""

from __future__ import annotations

from scanner.checks import Check, Status
from scanner.relay.base import Relay
from scanner.relay.kind import RelayConfig, RelayKind


class NoRelay(Relay):
    kind = "none"

    def _switch(self, on: bool) -> None:
        """Nothing to drive."""


def _build(config: RelayConfig) -> NoRelay:
    return NoRelay(pulse_ms=config.pulse_ms)


async def _probe(config: RelayConfig, click: Relay | None) -> list[Check]:
    return [Check(name="relay", status=Status.OK, detail="relay.type = none: no door relay")]


KIND = RelayKind(name="none", build=_build, needs_port=False, probe=_probe)
