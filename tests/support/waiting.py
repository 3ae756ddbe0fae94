"""Waiting on a condition, bounded: the one place tests poll state they cannot await."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    """Return as soon as ``condition()`` holds; fail after ``within_s`` seconds."""
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - device states have no event to await
            await asyncio.sleep(0.005)
