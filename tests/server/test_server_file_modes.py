"""The local server's database holds API keys and pass holders' names and e-mails: it is
readable by its owner only (0600, its new directory 0700), whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.server.store.facade import Store


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask_022")
def test_a_new_database_is_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "passqr.db"
    store = Store.open(path)
    try:
        store.create_key(name="gate", plan="pro")
        assert mode(path.parent) == 0o700
        assert mode(path) == 0o600
        for suffix in ("-wal", "-shm"):
            side = path.with_name(path.name + suffix)
            assert side.exists(), side
            assert mode(side) == 0o600, side
    finally:
        store.close()


@pytest.mark.usefixtures("umask_022")
def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    store = Store.open(tmp_path / "passqr.db")
    store.close()
    assert mode(tmp_path) == 0o755  # the operator's directory: not ours to change
    assert mode(tmp_path / "passqr.db") == 0o600
