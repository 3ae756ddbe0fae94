"""The third status line: OFFLINE, throttled, pending uploads, last sync, a stopped scanner."""

from __future__ import annotations

from datetime import UTC, datetime

from scanner.status import GateStatus, ServerState
from scanner.ui.widgets import LinkStatus, link_content


def text(status: GateStatus, link: LinkStatus) -> str:
    return link_content(status, link).plain


def test_online_deny_shows_policy_and_uploads() -> None:
    assert text(GateStatus(server=ServerState.OK), LinkStatus()) == (
        "Offline policy deny  |  Uploads 0 pending"
    )


def test_offline_with_pending_uploads_and_last_sync() -> None:
    synced = datetime(2026, 11, 24, 9, 41, tzinfo=UTC)
    line = text(
        GateStatus(server=ServerState.UNREACHABLE),
        LinkStatus(policy="allow-known", pending=3, conflicts=1, last_sync=synced),
    )
    assert line.startswith(" OFFLINE ")
    assert "Uploads 3 pending, 1 disputed" in line
    assert f"Synced {synced.astimezone().strftime('%H:%M')}" in line


def test_never_synced_and_throttled() -> None:
    line = text(GateStatus(server=ServerState.OK), LinkStatus(policy="allow-known", throttled=True))
    assert line.startswith(" THROTTLED ")
    assert "Synced never" in line


def test_halted_scanning_says_why() -> None:
    line = text(
        GateStatus(server=ServerState.REJECTED_KEY, halted="API key rejected: bad"), LinkStatus()
    )
    assert line == " SCANNING STOPPED  API key rejected: see F4"
    assert "bad" not in line  # what the server said is for staff (F4), not the guest screen
