"""The hub's promises across crashes: `kill -9` of the hub process with admissions queued
loses none and sends none twice; an admission whose upstream answer was never recorded
is sent again under its key and counted once; the budget spent before a restart still
counts after it; a sync that reads a pass while its admission is in flight counts that
admission twice, and the next sync or fresh answer counts it once again."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from scanner.hub.upstream import WINDOW_SLACK_S, margin, reserve
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


def _restart_with_a_fresh_sync(place: Venue, *, validations_spent_for_s: float = 0.0) -> None:
    """Stop the hub; start it again and wait for its first sync. With
    ``validations_spent_for_s``, its validate budget is spent for that long from now."""
    place.stop_hub()
    if validations_spent_for_s:
        up = place.config.upstream
        spent_at = time.time() - (up.window_s + WINDOW_SLACK_S - validations_spent_for_s)
        with closing(sqlite3.connect(place.config.hub.db)) as conn, conn:
            conn.executemany(
                "INSERT INTO hub_budget (kind, at) VALUES ('validate', ?)",
                [(spent_at,)] * up.validate_per_min,
            )
    place.start_hub()
    place.wait_synced()


def _at_the_hub(place: Venue, pass_id: str) -> tuple[str, int]:
    record = place.gate("north-1").get(f"/passes/{pass_id}").json()["data"]
    return record["status"], record["uses_count"]


def _admit(place: Venue, code: str) -> None:
    answer = place.gate("north-1").post("/validate", json={"code": code})
    assert answer.json()["data"]["result"] == "valid", answer.text


def _counted_twice_after_a_crash(
    place: Venue, max_uses: int, *, used_elsewhere: int = 0
) -> dict[str, Any]:
    """A pass admitted once, whose admission the hub's next sync counts twice.

    A crash came after the send, before the answer was recorded: the admission is queued
    again. The restarted hub's sync reads the pass (counted once at PassQR, and
    ``used_elsewhere`` times more by PassQR's other scanners meanwhile) while the
    admission is still queued (the validate budget spent for 10 s): both hold it.
    """
    [season] = place.seed(1, max_uses=max_uses)
    place.start_hub()
    place.wait_synced()
    _admit(place, season["code"])
    place.wait_drained()
    with closing(sqlite3.connect(place.config.hub.db)) as conn, conn:
        conn.execute("UPDATE hub_outbox SET state = 'queued', done_at = NULL")
    elsewhere = place.upstream_api()
    for _ in range(used_elsewhere):
        assert elsewhere.post("/validate", json={"code": season["code"]}).status_code == 200
    _restart_with_a_fresh_sync(place, validations_spent_for_s=10.0)
    assert place.status()["upstream"]["queue"] == 1
    assert _at_the_hub(place, season["id"])[1] == 2 + used_elsewhere  # one counted twice
    place.wait_drained(within_s=60)  # sent again, answered by PassQR's replay
    assert place.upstream_uses(season["id"]) == 1 + used_elsewhere
    return season


def test_the_next_sync_counts_once_an_admission_a_sync_counted_twice(tmp_path: Path) -> None:
    with venue(tmp_path, start_hub=False) as place:
        season = _counted_twice_after_a_crash(place, max_uses=2)
        _restart_with_a_fresh_sync(place)
        assert _at_the_hub(place, season["id"]) == ("active", 1)  # as at PassQR
        _admit(place, season["code"])  # its second use
        place.wait_drained()
        assert place.upstream_uses(season["id"]) == 2
        assert place.status()["upstream"]["conflicts"] == 0


def test_the_next_answer_counts_once_an_admission_a_sync_counted_twice(tmp_path: Path) -> None:
    with venue(tmp_path, start_hub=False) as place:
        season = _counted_twice_after_a_crash(place, max_uses=3)
        _admit(place, season["code"])  # the second use: the hub believes it the last
        place.wait_drained()
        assert _at_the_hub(place, season["id"]) == ("active", 2)  # PassQR's answer: 2 of 3
        _admit(place, season["code"])  # the third
        place.wait_drained()
        assert place.upstream_uses(season["id"]) == 3
        assert place.status()["upstream"]["conflicts"] == 0


def test_a_replayed_answer_never_lowers_the_count(tmp_path: Path) -> None:
    # PassQR's replay is its answer of the first send: one use, not the two it has now.
    with venue(tmp_path, start_hub=False) as place:
        season = _counted_twice_after_a_crash(place, max_uses=3, used_elsewhere=1)
        assert _at_the_hub(place, season["id"]) == ("used", 3)  # one too many, never too few
        _restart_with_a_fresh_sync(place)
        assert _at_the_hub(place, season["id"]) == ("active", 2)
