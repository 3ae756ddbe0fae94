"""The client-side request budget."""

from __future__ import annotations

import asyncio

import pytest

from scanner.budget import Bucket, Budget, BudgetExhausted, BudgetLimits, Priority


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_live_scans_use_the_whole_minute_background_leaves_a_reserve() -> None:
    clock = Clock()
    budget = Budget(BudgetLimits(validate_per_min=10, reserve=3), clock=clock)
    for _ in range(7):
        await budget.acquire(Bucket.VALIDATE, Priority.BACKGROUND, max_wait_s=0)
    with pytest.raises(BudgetExhausted):
        await budget.acquire(Bucket.VALIDATE, Priority.BACKGROUND, max_wait_s=0)
    for _ in range(3):
        await budget.acquire(Bucket.VALIDATE, Priority.LIVE, max_wait_s=0)
    with pytest.raises(BudgetExhausted) as info:
        await budget.acquire(Bucket.VALIDATE, Priority.LIVE, max_wait_s=0)
    assert info.value.wait_s == pytest.approx(60.0)
    assert budget.remaining(Bucket.VALIDATE) == 0
    clock.now += 60.0  # the window slides
    await budget.acquire(Bucket.VALIDATE, Priority.LIVE, max_wait_s=0)


async def test_retry_after_closes_only_its_bucket() -> None:
    clock = Clock()
    budget = Budget(clock=clock)
    budget.retry_after(Bucket.VALIDATE, 5)
    assert budget.throttled
    assert budget.wait_needed(Bucket.VALIDATE) == pytest.approx(5)
    await budget.acquire(Bucket.READ, max_wait_s=0)
    with pytest.raises(BudgetExhausted):
        await budget.acquire(Bucket.VALIDATE, max_wait_s=1)
    clock.now += 5
    assert not budget.throttled
    await budget.acquire(Bucket.VALIDATE, max_wait_s=0)


async def test_a_live_scan_waits_a_little_rather_than_fail() -> None:
    budget = Budget(BudgetLimits(validate_per_min=2, window_s=0.3))
    await budget.acquire(Bucket.VALIDATE)
    await budget.acquire(Bucket.VALIDATE)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await budget.acquire(Bucket.VALIDATE, max_wait_s=1.0)
    assert 0.2 <= loop.time() - started <= 0.9


async def test_background_yields_to_a_waiting_live_scan() -> None:
    clock = Clock()
    budget = Budget(BudgetLimits(validate_per_min=5, reserve=0), clock=clock)
    budget._windows[Bucket.VALIDATE].live_waiting = 1
    assert budget.wait_needed(Bucket.VALIDATE, Priority.BACKGROUND) > 0
    assert budget.wait_needed(Bucket.VALIDATE, Priority.LIVE) == 0
