"""``passqr-scanner demo``: the whole product with no hardware and no account.

Starts the project's own PassQR server in-process on a free loopback port with
a throwaway database, seeds demo passes, and runs the kiosk with a synthetic
camera: generated frames in which the demo script's QR codes appear one after
another (moving, tilted, noisy), read by the same capture thread, frame queue,
decoder and watchdog as a real camera. Codes typed at the keyboard (and Enter)
are validated too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scanner.config import (
    ApiConfig,
    CameraSourceConfig,
    Config,
    GateConfig,
    JournalConfig,
    KeyboardSourceConfig,
    RelayConfig,
)
from scanner.server import ServerThread, create_key, seed_demo

#: The demo camera's frames (width, height, fps): small and slow enough to leave
#: the CPU to the kiosk.
DEMO_CAMERA = (640, 480, 15)


def demo_script(codes: dict[str, str]) -> list[str]:
    """What the demo camera shows, in a loop: every kind of answer a gate sees.

    Each payload is encoded in its QR code exactly as written here (markup, URLs).
    """
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
    """A seeded local server on loopback and a kiosk config pointing at it.

    Args:
        interval_s: seconds between one code appearing in front of the camera and
            the next (each lingers for the smaller of 1.5 s and 60% of that).
        loop: play the script forever; False: once, after which the camera source
            ends (so ``demo --headless`` exits).
        keyboard: add a keyboard source.

    The gate's repeat window is shortened for fast scripts (at most four
    intervals), so the script's deliberate repeats (the same pass as a code and as
    a URL, six intervals apart) are decided, not ignored.
    """
    with tempfile.TemporaryDirectory(prefix="passqr-demo-") as tmp:
        db = Path(tmp) / "server.sqlite3"
        key = create_key(db, name="demo", plan="pro")
        codes = seed_demo(db)
        with ServerThread(db, rate_limit=True) as server:
            device = (
                f"synthetic?interval_s={interval_s:g}&start_delay_s=2"
                f"&loop={'true' if loop else 'false'}"
            )
            sources: list[CameraSourceConfig | KeyboardSourceConfig] = [
                CameraSourceConfig(
                    type="camera",
                    device=device,
                    codes=demo_script(codes),
                    name="demo scanner",
                    width=DEMO_CAMERA[0],
                    height=DEMO_CAMERA[1],
                    fps=DEMO_CAMERA[2],
                ),
            ]
            if keyboard:
                sources.append(KeyboardSourceConfig(type="keyboard"))
            config = Config(
                api=ApiConfig(base_url=server.base_url, timeout_s=3.0),
                gate=GateConfig(
                    name="Demo gate",
                    repeat_ignore_s=min(3.0, 4 * interval_s),
                    result_hold_s=3.0,
                ),
                sources=list(sources),
                relay=RelayConfig(type="none", pulse_ms=1000),
                journal=JournalConfig(path=Path(tmp) / "journal.sqlite3"),
            )
            yield DemoEnvironment(config=config, api_key=key, codes=codes, base_url=server.base_url)
