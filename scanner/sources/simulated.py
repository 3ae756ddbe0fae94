"""A scripted list of codes, for the demo and tests: a scanner without hardware."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from scanner.checks import Check, Status
from scanner.models import RawScan
from scanner.schema import DAY_S, within
from scanner.sources.base import Emit, Source, SourceState
from scanner.sources.kind import SourceKind


@dataclass(frozen=True, kw_only=True)
class SimulatedSourceConfig:
    type: Literal["simulated"]
    codes: list[str]
    interval_s: float = within(2.0, 0, DAY_S, unit="seconds")
    start_delay_s: float = within(1.0, 0, DAY_S, unit="seconds")
    loop: bool = False
    name: str | None = None


class SimulatedSource(Source):
    kind = "simulated"

    def __init__(
        self,
        codes: Sequence[str],
        *,
        interval_s: float = 2.0,
        start_delay_s: float = 1.0,
        loop: bool = False,
        name: str = "simulated",
    ) -> None:
        super().__init__(name)
        self.codes = list(codes)
        self.interval_s = interval_s
        self.start_delay_s = start_delay_s
        self.loop = loop
        self.finished = asyncio.Event()

    async def run(self, emit: Emit) -> None:
        self.state = SourceState.READY
        await asyncio.sleep(self.start_delay_s)
        while True:
            for i, code in enumerate(self.codes):
                if i:
                    await asyncio.sleep(self.interval_s)
                self.count += 1
                emit(RawScan(source=self.name, text=code, at=time.monotonic()))
            if not self.loop or not self.codes:
                break
            await asyncio.sleep(self.interval_s)
        self.state = SourceState.STOPPED
        self.detail = "script finished"
        self.finished.set()


def _build(config: SimulatedSourceConfig, headless: bool) -> Source:
    return SimulatedSource(
        config.codes,
        interval_s=config.interval_s,
        start_delay_s=config.start_delay_s,
        loop=config.loop,
        name=config.name or "simulated",
    )


async def _probe(config: SimulatedSourceConfig, name: str) -> list[Check]:
    return [Check(name=name, status=Status.OK, detail="n/a: scripted codes")]


KIND = SourceKind(name="simulated", config=SimulatedSourceConfig, build=_build, probe=_probe)
