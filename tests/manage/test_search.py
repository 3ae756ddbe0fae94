"""The pass search behind the staff screen: matching, and paging PassQR within the budget."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from scanner.api import PassQRClient
from scanner.budget import Bucket, Budget
from scanner.journal import Journal
from scanner.models import PassInfo, Scan
from scanner.search import PassFinder, Query, fold
from tests.conftest import LocalServer

ZOE = PassInfo(code="PASS-ZOE00001", holder_name="Zoë Müller", holder_email="zoe@Example.com")


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("zoe", True),
        ("MULLER zoë", True),
        ("example.com", True),
        ("zoe smith", False),
        ("pass-zoe00001", True),
        ("https://www.passqr.com/p/PASS-ZOE00001", True),
        ("PASS-ZOE00002", False),
        ("zoe00001", True),
    ],
)
def test_query(text: str, found: bool) -> None:
    assert Query.parse(text).matches(ZOE) is found


def test_fold() -> None:
    assert fold("Ærø Straße ZOË") == "ærø strasse zoe"


async def test_search_pages_passqr_within_the_read_budget(
    tmp_path: Path, local_server: LocalServer
) -> None:
    async with PassQRClient(local_server.base_url, local_server.api_key) as client:
        template = await client.create_template(name="Many")
        assert template.id is not None
        for n in range(130):
            await client.create_pass(template_id=template.id, holder_name=f"Guest {n:03d}")
        await client.create_pass(template_id=template.id, holder_name="Needle Person")
        journal = Journal(tmp_path / "journal.sqlite3")
        await journal.open()
        try:
            budget = Budget()
            seen: list[tuple[int, int]] = []
            finder = PassFinder(journal, client, budget)
            result = await finder.search("needle", progress=lambda n, t: seen.append((n, t)))
            assert result.source == "PassQR API"
            assert [p.holder_name for p in result.passes] == ["Needle Person"]
            assert result.examined == 131
            assert seen == [(100, 131), (131, 131)]
            assert budget.remaining(Bucket.READ) == 120 - 2

            everyone = await finder.search("guest")
            assert everyone.matched == 130
            assert len(everyone.passes) == 130
            assert everyone.passes[0].holder_name == "Guest 000"  # name order

            fresh = await finder.fresh(result.passes[0])
            assert fresh.id == result.passes[0].id
        finally:
            await journal.close()


async def test_search_prefers_the_offline_copy(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    await journal.open()
    try:
        synced = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
        await journal.replace_cache([ZOE.to_json()], synced)
        finder = PassFinder(journal, None, Budget(), last_sync=lambda: synced)  # type: ignore[arg-type]
        result = await finder.search("müller")
        assert result.source == "offline copy"
        assert result.synced == synced
        assert [p.code for p in result.passes] == ["PASS-ZOE00001"]
        assert result.passes[0].holder_email == "zoe@Example.com"

        await journal.record_scan(
            Scan(
                id="s1",
                ts=synced,
                gate="North",
                source="staff",
                raw="PASS-ZOE00001",
                code="PASS-ZOE00001",
                manual=True,
            )
        )
        rows = await journal.history("PASS-ZOE00001")
        assert [(r["source"], r["manual"]) for r in rows] == [("staff", 1)]
    finally:
        await journal.close()
