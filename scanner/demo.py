"""``passqr-scanner demo``: the whole product with no hardware and no account.

Starts the project's own PassQR server in-process on a free loopback port with
a throwaway database, seeds demo passes, and runs the kiosk with a simulated
scanner that plays accepted and rejected scans by itself. Codes typed at the
keyboard (and Enter) are validated too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scanner.config import (
    ApiConfig,
    Config,
    GateConfig,
    JournalConfig,
    KeyboardSourceConfig,
    RelayConfig,
    SimulatedSourceConfig,
)
from scanner.server import ServerThread, create_key, seed_demo


def demo_script(codes: dict[str, str]) -> list[str]:
    """What the simulated scanner plays, in a loop: every kind of answer a gate sees."""
    return [
        codes["valid"],  # ACCEPTED (its only use)
        codes["used"],  # REJECTED: already used
        f"https://www.passqr.com/p/{codes['season']}",  # a URL on the pass: ACCEPTED
        codes["expired"],  # REJECTED: expired
        "[bold red]not a pass[/]",  # junk with Rich markup
        codes["revoked"],  # REJECTED: revoked
        "PASS-ZZZZ0000",  # REJECTED: unknown pass
        codes["valid"].lower(),  # now used up: REJECTED
        f"https://www.passqr.com/scan?code={codes['season']}",  # ACCEPTED again
    ]


@dataclass(frozen=True)
class DemoEnvironment:
    config: Config
    api_key: str
    codes: dict[str, str]
    base_url: str


@contextmanager
def demo_environment(
    *, interval_s: float = 4.0, loop: bool = True, keyboard: bool = True
) -> Iterator[DemoEnvironment]:
    """A seeded local server on loopback and a kiosk config pointing at it."""
    with tempfile.TemporaryDirectory(prefix="passqr-demo-") as tmp:
        db = Path(tmp) / "server.sqlite3"
        key = create_key(db, name="demo", plan="pro")
        codes = seed_demo(db)
        with ServerThread(db, rate_limit=True) as server:
            sources: list[SimulatedSourceConfig | KeyboardSourceConfig] = [
                SimulatedSourceConfig(
                    type="simulated",
                    codes=demo_script(codes),
                    interval_s=interval_s,
                    start_delay_s=2.0,
                    loop=loop,
                    name="demo scanner",
                ),
            ]
            if keyboard:
                sources.append(KeyboardSourceConfig(type="keyboard"))
            config = Config(
                api=ApiConfig(base_url=server.base_url, timeout_s=3.0),
                gate=GateConfig(name="Demo gate", repeat_ignore_s=3.0, result_hold_s=3.0),
                sources=list(sources),
                relay=RelayConfig(type="none", pulse_ms=1000),
                journal=JournalConfig(path=Path(tmp) / "journal.sqlite3"),
            )
            yield DemoEnvironment(config=config, api_key=key, codes=codes, base_url=server.base_url)
