"""The hub's promises across crashes: `kill -9` of the hub process with admissions queued
loses none and sends none twice; an admission whose upstream answer was never recorded
is sent again under its key and counted once; the budget spent before a restart still
counts after it."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scanner.hub.upstream import margin, reserve
from scanner.server.ratelimit import RateLimits
from tests.support.venue import Venue, venue, wait_until

ROOT = Path(__file__).resolve().parents[2]
PASSES = 12
#: The first hub's validations per window, and what its forwarding may use of them
#: (the margin and the live reserve left): the rest of the 12 admissions stay queued.
SMALL = 5
BACKGROUND = SMALL - margin(SMALL) - reserve(SMALL)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HubProcess:
    """`passqr-scanner hub run` in its own process, in front of the venue's upstream."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    staff_key: str

    def status(self) -> dict[str, Any]:
        answer = httpx.get(
            f"{self.url}/hub/status",
            headers={"Authorization": f"Bearer {self.staff_key}"},
            timeout=10.0,
        )
        assert answer.status_code == 200, answer.text
        payload: dict[str, Any] = answer.json()["upstream"]
        return payload

    def answers(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            self.status()
        except httpx.TransportError:
            return False
        return True


@contextmanager
def hub_process(place: Venue, validate_per_min: int) -> Iterator[HubProcess]:
    """The hub as a process with this validation budget (the upstream's default window);
    SIGKILLed if still running when the block ends."""
    port = _free_port()
    config = place.root / f"hub-{port}.toml"
    config.write_text(
        f'[upstream]\nbase_url = "{place.upstream.base_url}"\n'
        f"validate_per_min = {validate_per_min}\n"
        f'[hub]\nlisten = "127.0.0.1:{port}"\ndb = "{place.config.hub.db}"\n'
    )
    log = place.root / f"hub-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "scanner", "hub", "run", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, "PASSQR_API_KEY": place.upstream_key},
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    hub = HubProcess(proc, f"http://127.0.0.1:{port}", log, place.staff_key)
    try:
        wait_until(hub.answers, within_s=60, step_s=0.1)
        yield hub
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def _admit_all(hub: HubProcess, key: str, passes: list[dict[str, Any]]) -> None:
    with httpx.Client(
        base_url=f"{hub.url}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=10.0
    ) as gate:
        for p in passes:
            answer = gate.post("/validate", json={"code": p["code"]})
            assert answer.status_code == 200, answer.text
            assert answer.json()["data"]["result"] == "valid"


def _outbox(place: Venue) -> list[tuple[str, str, int]]:
    """(pass id, state, attempts) of every admission in the hub's outbox."""
    with closing(sqlite3.connect(place.config.hub.db)) as conn:
        rows = conn.execute("SELECT pass_id, state, attempts FROM hub_outbox ORDER BY id")
        return [(row[0], row[1], row[2]) for row in rows]


def _counted_once_upstream(place: Venue, passes: list[dict[str, Any]]) -> None:
    assert [place.upstream_uses(p["id"]) for p in passes] == [1] * len(passes)
    assert sorted(place.upstream_scans()) == sorted((p["id"], "valid") for p in passes)


def test_kill_9_with_admissions_queued_loses_none_and_sends_none_twice(tmp_path: Path) -> None:
    # The upstream with PassQR's limits (validate 60/min); the first hub may send 5 a minute.
    with venue(tmp_path, limits=RateLimits(), start_hub=False) as place:
        passes = place.seed(PASSES)
        with hub_process(place, validate_per_min=SMALL) as hub:
            wait_until(lambda: hub.status()["synced_since_start"], within_s=30)
            _admit_all(hub, place.gates["north-1"], passes)
            wait_until(lambda: hub.status()["sent"] == BACKGROUND, within_s=30)
            before = hub.status()
            assert before["queue"] == PASSES - BACKGROUND > 0
            assert before["budget"]["validate"]["used"] == BACKGROUND
            hub.proc.send_signal(signal.SIGKILL)
            assert hub.proc.wait(30) == -signal.SIGKILL
        # Restarted within the upstream's window: the budget spent before the crash still
        # counts, so nothing more leaves (without it, three more would go at once).
        with hub_process(place, validate_per_min=SMALL) as hub:
            after = hub.status()
            assert after["budget"]["validate"]["used"] == BACKGROUND
            assert (after["queue"], after["sent"]) == (PASSES - BACKGROUND, BACKGROUND)
        assert len(place.upstream_log.of("POST", "/validate")) == BACKGROUND
        # A bigger budget: the queue drains, each admission once.
        with hub_process(place, validate_per_min=60) as hub:
            wait_until(lambda: hub.status()["queue"] == 0, within_s=60, step_s=0.2)
            final = hub.status()
            assert (final["sent"], final["conflicts"], final["state"]) == (PASSES, 0, "ok")
        validations = place.upstream_log.of("POST", "/validate")
        assert len(validations) == PASSES
        assert {a.status for a in place.upstream_log.arrivals} == {200}
        _counted_once_upstream(place, passes)
        assert [state for _, state, _ in _outbox(place)] == ["sent"] * PASSES


def test_an_admission_sent_but_never_settled_is_sent_again_and_counted_once(
    tmp_path: Path,
) -> None:
    with venue(tmp_path, start_hub=False) as place:
        passes = place.seed(3)
        place.start_hub()
        place.wait_synced()
        gate = place.gate("north-1")
        for p in passes:
            assert gate.post("/validate", json={"code": p["code"]}).json()["data"]["result"] == (
                "valid"
            )
        place.wait_drained()
        place.stop_hub()
        # A crash after the send, before the answer was recorded: the row is still queued.
        with closing(sqlite3.connect(place.config.hub.db)) as conn, conn:
            conn.execute(
                "UPDATE hub_outbox SET state = 'queued', done_at = NULL, upstream_result = NULL"
                " WHERE pass_id = ?",
                (passes[1]["id"],),
            )
        place.start_hub()
        place.wait_drained()
        status = place.status()["upstream"]
        assert (status["sent"], status["conflicts"]) == (3, 0)
        # Sent twice under one Idempotency-Key: PassQR replayed its answer, counted it once.
        assert len(place.upstream_log.of("POST", "/validate")) == 4
        _counted_once_upstream(place, passes)
        assert _outbox(place) == [
            (passes[0]["id"], "sent", 1),
            (passes[1]["id"], "sent", 2),
            (passes[2]["id"], "sent", 1),
        ]
