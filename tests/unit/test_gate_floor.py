"""The gate's side of issue 13: offline repeats of an unlimited pass, and staff's let-in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from scanner.errors import NetworkError
from scanner.journal import Journal
from scanner.models import Decision, Reason, Scan, utcnow
from scanner.offline import judge_known
from scanner.pipeline import LET_IN_TEXT, Gate, can_let_in
from scanner.relay import NoRelay
from tests.unit.test_pipeline import ScriptedValidator
from tests.unit.test_promises_core import make_gate, raw

PASSES = [
    {"code": "PASS-UNLI0001", "status": "active", "uses_count": 3, "max_uses": None},
    {"code": "PASS-LIMI0001", "status": "active", "uses_count": 1, "max_uses": 5},
]


async def offline_gate(journal: Journal, relay: NoRelay) -> tuple[Gate, ScriptedValidator]:
    validator = ScriptedValidator()
    for p in PASSES:
        validator.answers[str(p["code"])] = NetworkError("cannot connect: refused")
    await journal.replace_cache(PASSES, datetime.now(UTC))

    async def unreachable(code: str) -> bool:
        return False

    gate = make_gate(journal, relay, validator, policy="allow-known", replay_code=unreachable)
    return gate, validator


async def test_an_unlimited_pass_enters_again_offline(journal: Journal, relay: NoRelay) -> None:
    gate, _ = await offline_gate(journal, relay)
    for _ in range(2):
        task = gate.submit(raw("PASS-UNLI0001"))
        assert task is not None
        decision = await task
        assert decision.accepted and decision.offline, decision.message
    assert relay.pulses == 2


async def test_a_limited_pass_still_gets_one_offline_admission(
    journal: Journal, relay: NoRelay
) -> None:
    gate, _ = await offline_gate(journal, relay)
    decisions = []
    for _ in range(2):
        task = gate.submit(raw("PASS-LIMI0001"))
        assert task is not None
        decisions.append(await task)
    first, second = decisions
    assert first.accepted
    assert not second.accepted and second.reason is Reason.USED


def test_judge_known_counts_unconfirmed_admissions_only_against_a_limit() -> None:
    now = utcnow()
    assert judge_known(dict(PASSES[0]), 4, now).accepted
    assert not judge_known(dict(PASSES[1]), 1, now).accepted


def refusal(reason: Reason, code: str | None = "PASS-AAAA0001") -> Decision:
    scan = Scan(id="s-1", ts=utcnow(), gate="g", source="test", raw=code or "junk", code=code)
    return Decision(scan=scan, accepted=False, reason=reason, message="Possibly admitted")


def test_staff_may_overrule_only_used_refusals() -> None:
    assert can_let_in(refusal(Reason.USED))
    assert not can_let_in(refusal(Reason.USED, code=None))
    for reason in (Reason.EXPIRED, Reason.REVOKED, Reason.NOT_FOUND, Reason.OFFLINE):
        assert not can_let_in(refusal(reason))


async def test_let_in_journals_a_manual_admission_without_asking(
    journal: Journal, relay: NoRelay
) -> None:
    validator = ScriptedValidator()
    gate = make_gate(journal, relay, validator)
    decision = await gate.let_in(refusal(Reason.USED))
    assert decision.accepted and decision.message == LET_IN_TEXT
    assert decision.scan.manual and decision.scan.source == "staff"
    assert validator.calls == []
    assert relay.pulses == 1
    row = await journal.last_admission("PASS-AAAA0001")
    assert row is not None and row["manual"] and "Possibly admitted" in str(row["detail"])
    assert gate.status.accepted_today == 1
    with pytest.raises(ValueError, match="expired"):
        gate.let_in(refusal(Reason.EXPIRED))
