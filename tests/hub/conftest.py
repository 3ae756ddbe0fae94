"""Fixtures of the hub's tests."""

from __future__ import annotations

import os

import pytest

from tests.support.browser import find_chromium


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium; skipped where it is missing, unless CI is set (CI must run these)."""
    found = find_chromium()
    if found is None:
        reason = "Chromium is not installed (Debian: apt-get install chromium)"
        if "CI" in os.environ:
            pytest.fail(f"{reason}; CI must run the browser tests")
        pytest.skip(reason)
    return found
