"""A full disk under the server's (or the hub's) database: a clear 503, no traceback,
nothing said valid, and back to work once there is room again."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest

from scanner.server import ServerThread, create_key, seed_demo
from tests.support.disk import small_tmpfs


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_a_503_and_never_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with small_tmpfs(tmp_path / "disk", "3m") as disk:
        db = disk / "server.sqlite3"
        key = create_key(db, name="gate", plan="pro")
        codes = seed_demo(db)
        with ServerThread(db, rate_limit=False) as server:
            api = httpx.Client(
                base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
            )
            filler = _fill(disk)
            caplog.set_level(logging.INFO)
            answers = [api.post("/validate", json={"code": codes["season"]}) for _ in range(40)]
            full = [a for a in answers if a.status_code == 503]
            assert full, [a.status_code for a in answers]  # the WAL filled up within 40 writes
            assert all(a.status_code in (200, 503) for a in answers)
            assert full[0].json()["message"].startswith("The server's disk is full")
            assert full[0].headers["Retry-After"] == "30"
            assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
            assert "disk is full" in caplog.text
            filler.unlink()
            again = api.post("/validate", json={"code": codes["season"]})
            assert again.status_code == 200, again.text
            api.close()
