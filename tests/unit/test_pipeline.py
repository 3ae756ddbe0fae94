"""The gate's decision logic with a scripted validator, a real journal and a no-op relay."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from scanner.config import GateConfig
from scanner.errors import (
    APITimeoutError,
    AuthenticationError,
    BadAnswerError,
    NetworkError,
    PlanError,
    PlanLimitError,
    RateLimitedError,
    ServerError,
)
from scanner.journal import Journal
from scanner.models import (
    Decision,
    PassInfo,
    RawScan,
    Reason,
    Scan,
    TemplateInfo,
    ValidationOutcome,
    ValidationResult,
    utcnow,
)
from scanner.pipeline import Gate
from scanner.relay import NoRelay, RelayState
from scanner.status import ServerState
from tests.support.fakes import FakeClient
from tests.support.waiting import eventually


class ScriptedValidator(FakeClient):
    """The shared fake, answers set by each test; ``gate`` holds validations back."""

    @property
    def gate(self) -> asyncio.Event | None:
        return self.hold

    @gate.setter
    def gate(self, event: asyncio.Event | None) -> None:
        self.hold = event


def valid(holder: str = "Ada", uses: int = 1, max_uses: int | None = 3) -> ValidationResult:
    return ValidationResult(
        outcome=ValidationOutcome.VALID,
        result="valid",
        message="Access granted",
        pass_=PassInfo(
            code="PASS-AAAA0001", holder_name=holder, uses_count=uses, max_uses=max_uses
        ),
        template=TemplateInfo(name="VIP"),
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def validator() -> ScriptedValidator:
    return ScriptedValidator()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def gate(journal: Journal, relay: NoRelay, validator: ScriptedValidator, clock: Clock) -> Gate:
    return Gate(
        config=GateConfig(name="Test gate", repeat_ignore_s=3.0),
        validator=validator,
        journal=journal,
        relay=relay,
        clock=clock,
    )


def raw(text: str, source: str = "test", manual: bool = False) -> RawScan:
    return RawScan(source=source, text=text, at=time.monotonic(), manual=manual)


async def decide(gate: Gate, text: str, **kw: object) -> Decision:
    task = gate.submit(raw(text, **kw))  # type: ignore[arg-type]
    assert task is not None, "scan was ignored"
    return await task


async def test_valid_pass_is_accepted_and_pulses(
    gate: Gate, validator: ScriptedValidator, relay: NoRelay
) -> None:
    validator.answers["PASS-AAAA0001"] = valid()
    seen: list[Decision] = []

    def listener(d: Decision) -> None:
        seen.append(d)
        assert relay.state is RelayState.ON, "the relay moves before the screen hears of it"

    gate.subscribe(listener)
    decision = await decide(gate, "https://www.passqr.com/p/pass-aaaa0001")
    assert decision.accepted and decision.reason is Reason.VALID
    assert (decision.holder, decision.template, decision.uses_left) == ("Ada", "VIP", 2)
    assert seen == [decision]
    assert relay.pulses == 1
    assert validator.calls[0][0] == "PASS-AAAA0001"
    assert validator.calls[0][1] == decision.scan.id
    assert gate.status.accepted_today == 1


@pytest.mark.parametrize(
    ("outcome", "reason", "text"),
    [
        (ValidationOutcome.USED, Reason.USED, "Already used"),
        (ValidationOutcome.EXPIRED, Reason.EXPIRED, "Expired"),
        (ValidationOutcome.REVOKED, Reason.REVOKED, "Pass revoked"),
        (ValidationOutcome.NOT_FOUND, Reason.NOT_FOUND, "Unknown pass"),
    ],
)
async def test_denials_are_rejected_without_the_relay(
    gate: Gate,
    validator: ScriptedValidator,
    relay: NoRelay,
    outcome: ValidationOutcome,
    reason: Reason,
    text: str,
) -> None:
    validator.answers["PASS-AAAA0002"] = ValidationResult(
        outcome=outcome, result=outcome.value, message="server words"
    )
    decision = await decide(gate, "PASS-AAAA0002")
    assert not decision.accepted
    assert decision.reason is reason
    assert decision.message == text
    assert relay.pulses == 0


async def test_unknown_result_is_a_denial_with_the_server_message(
    gate: Gate, validator: ScriptedValidator, relay: NoRelay
) -> None:
    validator.answers["PASS-AAAA0003"] = ValidationResult(
        outcome=ValidationOutcome.UNKNOWN, result="suspended", message="Account suspended"
    )
    decision = await decide(gate, "PASS-AAAA0003")
    assert not decision.accepted and decision.reason is Reason.ERROR
    assert decision.message == "Account suspended"
    assert relay.pulses == 0


@pytest.mark.parametrize(
    ("error", "reason", "server", "offline"),
    [
        (NetworkError("cannot reach"), Reason.OFFLINE, ServerState.UNREACHABLE, True),
        (APITimeoutError("no answer"), Reason.OFFLINE, ServerState.UNREACHABLE, True),
        (
            RateLimitedError("slow down", retry_after=7),
            Reason.RATE_LIMITED,
            ServerState.RATE_LIMITED,
            False,
        ),
        (AuthenticationError("bad key", status=401), Reason.ERROR, ServerState.REJECTED_KEY, False),
        (PlanError("free plan", status=403), Reason.ERROR, ServerState.NO_PLAN, False),
        (ServerError("boom", status=500), Reason.ERROR, ServerState.FAULT, False),
        (BadAnswerError("html"), Reason.ERROR, ServerState.FAULT, False),
    ],
)
async def test_api_failures_reject_with_a_reason_and_a_server_state(
    gate: Gate,
    validator: ScriptedValidator,
    relay: NoRelay,
    error: Exception,
    reason: Reason,
    server: ServerState,
    offline: bool,
) -> None:
    validator.answers["PASS-AAAA0004"] = error
    decision = await decide(gate, "PASS-AAAA0004")
    assert not decision.accepted
    assert decision.reason is reason
    assert decision.offline is offline
    assert gate.status.server is server
    assert relay.pulses == 0


async def test_a_plan_limit_refuses_the_scan_but_never_halts_scanning(
    gate: Gate, validator: ScriptedValidator, relay: NoRelay
) -> None:
    """A 402 (quota spent, feature not in the plan) is about one action; a 403 stops the kiosk."""
    validator.answers["PASS-AAAA0007"] = PlanLimitError(
        "The starter plan allows 3 passes", status=402, code="plan_limit_reached"
    )
    refused = await decide(gate, "PASS-AAAA0007")
    assert not refused.accepted and refused.reason is Reason.ERROR
    assert "The starter plan allows 3 passes" in refused.detail
    assert gate.status.halted == ""
    assert gate.status.server is not ServerState.NO_PLAN
    validator.answers["PASS-AAAA0008"] = valid()
    admitted = await decide(gate, "PASS-AAAA0008")
    assert admitted.accepted and relay.pulses == 1
    validator.answers["PASS-AAAA0009"] = PlanError("free plan", status=403)
    await decide(gate, "PASS-AAAA0009")
    assert gate.status.halted


@pytest.mark.parametrize("junk", ["[bold]x[/]", "PASS-\x1b[2J", "x" * 600, "4006381333931"])
async def test_junk_is_rejected_without_calling_the_api(
    gate: Gate, validator: ScriptedValidator, junk: str
) -> None:
    decision = await decide(gate, junk)
    assert decision.reason is Reason.INVALID_PAYLOAD
    assert decision.message == "Not a pass code"
    assert validator.calls == []


async def test_repeats_within_the_window_are_ignored(
    gate: Gate, validator: ScriptedValidator, clock: Clock
) -> None:
    validator.answers["PASS-AAAA0005"] = valid()
    await decide(gate, "PASS-AAAA0005", source="serial")
    clock.now += 1.0
    assert gate.submit(raw("pass-aaaa0005", source="keyboard")) is None
    clock.now += 2.5  # 2.5 s after the last sighting: still the same physical scan
    assert gate.submit(raw("https://www.passqr.com/p/PASS-AAAA0005")) is None
    clock.now += 3.1
    assert gate.submit(raw("PASS-AAAA0005")) is not None
    assert gate.status.ignored_repeats == 2


async def test_a_code_in_flight_is_not_validated_twice(
    gate: Gate, validator: ScriptedValidator, clock: Clock
) -> None:
    validator.answers["PASS-AAAA0006"] = valid()
    validator.gate = asyncio.Event()
    first = gate.submit(raw("PASS-AAAA0006"))
    assert first is not None
    await asyncio.sleep(0.01)
    clock.now += 10  # long past the window, but the first validation has not answered
    assert gate.submit(raw("PASS-AAAA0006")) is None
    validator.gate.set()
    await first
    assert len(validator.calls) == 1


async def test_manual_entry_bypasses_repeat_suppression(
    gate: Gate, validator: ScriptedValidator
) -> None:
    validator.answers["PASS-AAAA0007"] = valid()
    await decide(gate, "PASS-AAAA0007")
    assert gate.submit(raw("PASS-AAAA0007")) is None
    assert gate.submit(raw("PASS-AAAA0007", manual=True)) is not None


async def test_every_scan_is_journaled_before_validation(
    gate: Gate, validator: ScriptedValidator, journal: Journal
) -> None:
    validator.answers["PASS-AAAA0008"] = valid()
    validator.gate = asyncio.Event()
    task = gate.submit(raw("PASS-AAAA0008"))
    assert task is not None
    await eventually(lambda: bool(validator.calls))
    conn = sqlite3.connect(journal.path)
    try:
        rows = conn.execute("SELECT scan_id, code, decision FROM scans").fetchall()
    finally:
        conn.close()
    assert rows == [(validator.calls[0][1], "PASS-AAAA0008", None)]
    validator.gate.set()
    decision = await task
    recent = await journal.recent()
    assert recent[0]["decision"] == "accepted"
    assert recent[0]["scan_id"] == decision.scan.id


async def test_journal_failure_means_no_admission(
    gate: Gate, validator: ScriptedValidator, journal: Journal, relay: NoRelay
) -> None:
    validator.answers["PASS-AAAA0009"] = valid()
    await journal.close()  # the disk is gone
    decision = await decide(gate, "PASS-AAAA0009")
    assert not decision.accepted
    assert decision.reason is Reason.ERROR
    assert "journal" in decision.detail
    assert validator.calls == []
    assert relay.pulses == 0


async def test_a_broken_listener_does_not_stop_the_gate(
    gate: Gate, validator: ScriptedValidator
) -> None:
    validator.answers["PASS-AAAA0010"] = valid()
    got: list[Decision] = []

    def broken(_: Decision) -> None:
        raise RuntimeError("listener bug")

    gate.subscribe(broken)
    gate.subscribe(got.append)
    decision = await decide(gate, "PASS-AAAA0010")
    assert got == [decision]


async def test_counts_survive_a_restart(
    tmp_path: Path, validator: ScriptedValidator, relay: NoRelay
) -> None:
    validator.answers["PASS-AAAA0011"] = valid()
    for _ in range(2):
        j = Journal(tmp_path / "j.sqlite3")
        await j.open()
        g = Gate(config=GateConfig(repeat_ignore_s=0), validator=validator, journal=j, relay=relay)
        await g.load_counts()
        await decide(g, "PASS-AAAA0011")
        await decide(g, "PASS-NOPE0000")
        await j.close()
    assert (g.status.accepted_today, g.status.rejected_today) == (2, 2)


async def test_a_scan_cut_short_is_closed_as_interrupted(tmp_path: Path) -> None:
    """kill -9 between journaling a scan and deciding it: the row is closed on restart."""
    j = Journal(tmp_path / "j.sqlite3")
    await j.open()
    scan = Scan(
        id="s-1", ts=utcnow(), gate="g", source="t", raw="PASS-AAAA0001", code="PASS-AAAA0001"
    )
    await j.record_scan(scan)
    await j.close()  # the process died here
    again = Journal(tmp_path / "j.sqlite3")
    await again.open()
    (row,) = await again.recent()
    await again.close()
    assert (row["decision"], row["reason"], row["message"]) == ("rejected", "error", "Interrupted")
