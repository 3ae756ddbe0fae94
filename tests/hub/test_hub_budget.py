"""The hub's budget against an upstream with a short window (4 s), so it runs fast: a
burst of admissions is answered at once, then forwarded inside the upstream's limits,
none of them refused."""

from __future__ import annotations

from pathlib import Path

import httpx

from scanner.server.ratelimit import RateLimits
from tests.support.venue import venue, wait_until

LIMITS = RateLimits(validate=10, read=40, write=10, window=4.0)
PASSES = 30


def most_in_window(moments: list[float], window_s: float) -> int:
    """Most moments in any window (t - window_s, t]: what the upstream's limiter holds."""
    ordered = sorted(moments)
    best, first = 0, 0
    for last, moment in enumerate(ordered):
        while ordered[first] <= moment - window_s:
            first += 1
        best = max(best, last - first + 1)
    return best


def test_most_in_window_counts_a_sliding_window() -> None:
    assert most_in_window([], 4.0) == 0
    assert most_in_window([0.0, 1.0, 3.9, 4.0, 7.95], 4.0) == 3  # (0, 4] and (3.95, 7.95]
    assert most_in_window([0.0, 4.0, 8.0], 4.0) == 1


def _result(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    result: str = answer.json()["data"]["result"]
    return result


def test_a_burst_is_answered_at_once_and_forwarded_inside_the_upstream_limits(
    tmp_path: Path,
) -> None:
    # The hub's budget follows the upstream's limits: validate_per_min = 10, window_s = 4.
    with venue(tmp_path, limits=LIMITS, start_hub=False) as place:
        passes = place.seed(PASSES)  # into PassQR's database: no request, no budget spent
        place.start_hub()
        place.wait_synced()
        gates = [place.gate(name) for name in place.gates]
        answers = [
            _result(gates[i % len(gates)].post("/validate", json={"code": p["code"]}))
            for i, p in enumerate(passes)
        ]
        # Every scan answered at once, valid, before its admission reached PassQR.
        assert answers == ["valid"] * PASSES
        assert place.status()["upstream"]["queue"] > 0
        states: set[str] = set()

        def drained() -> bool:
            upstream = place.status()["upstream"]
            states.add(upstream["state"])
            return bool(upstream["queue"] == 0)

        wait_until(drained, within_s=120, step_s=0.2)
        status = place.status()["upstream"]
        assert (status["sent"], status["conflicts"]) == (PASSES, 0)
        assert "rate_limited" not in states, states
        arrivals = list(place.upstream_log.arrivals)
        assert [a for a in arrivals if a.status != 200] == []  # no 429, nothing refused
        validations = place.upstream_log.of("POST", "/validate")
        assert len(validations) == PASSES  # each admission forwarded once
        assert most_in_window([a.at for a in validations], LIMITS.window) <= LIMITS.validate
        assert [place.upstream_uses(p["id"]) for p in passes] == [1] * PASSES
        assert sorted(place.upstream_scans()) == sorted((p["id"], "valid") for p in passes)
