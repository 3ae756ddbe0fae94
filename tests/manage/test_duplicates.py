"""The check that no guest appears twice in a guest list: on disk, memory flat in the rows.

The digests of the identities met go into a nameless temporary SQLite file, never into
the process's memory: a guest list of millions of rows is checked in the memory of a
few thousand, and nothing is left behind.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from scanner.manage import duplicates
from scanner.manage.duplicates import Duplicates
from scanner.manage.guestlist import CsvFileError, Row, open_csv, read_csv

ROOT = Path(__file__).resolve().parents[2]


def guests(path: Path, count: int, *extra: str) -> Path:
    """``count`` guests known by their e-mail (rows 2 to count + 1), then ``extra`` rows."""
    with path.open("w", encoding="utf-8") as stream:
        stream.write("holder_name,holder_email\n")
        stream.writelines(f"Guest {n},guest{n}@example.com\n" for n in range(count))
        stream.writelines(f"{row}\n" for row in extra)
    return path


def open_files_under(prefix: Path) -> list[tuple[str, int]]:
    """What this process has open under ``prefix``: (where, mode)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
            mode = os.stat(f"/proc/self/fd/{fd}").st_mode
        except OSError:  # the listing's own descriptor, closed since
            continue
        if target.startswith(str(prefix)):
            found.append((target, stat.S_IMODE(mode)))
    return found


@pytest.fixture
def temp_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temporary directory the check uses, empty and watched."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_a_guest_met_again_is_found_in_the_batch_and_on_disk(temp_root: Path) -> None:
    with Duplicates(batch=3) as seen:
        assert [seen.earlier(f"email:{n}", n + 2) for n in range(5)] == [None] * 5
        assert seen.earlier("email:0", 20) == 2  # written to the database already
        assert seen.earlier("email:4", 21) == 6  # still in the batch
        assert seen.earlier("email:5", 22) is None
        assert seen.earlier("email:5", 23) == 22


def test_the_database_is_private_and_nameless_and_nothing_is_left(temp_root: Path) -> None:
    seen = Duplicates()
    assert not seen.path.exists() and not seen.path.parent.exists()
    assert seen.path.parent.parent == temp_root
    assert open_files_under(temp_root) == [(f"{seen.path} (deleted)", 0o600)]
    seen.close()
    seen.close()
    assert open_files_under(temp_root) == []
    assert list(temp_root.iterdir()) == []


def test_a_reading_stopped_half_way_leaves_nothing(temp_root: Path, tmp_path: Path) -> None:
    rows = iter(open_csv(guests(tmp_path / "g.csv", 10)))
    assert isinstance(next(rows), Row)
    assert len(open_files_under(temp_root)) == 1
    del rows  # the generator is closed: so is its check
    assert open_files_under(temp_root) == []
    assert list(temp_root.iterdir()) == []


def test_a_guest_twice_far_apart_is_a_bad_row_naming_the_first(
    temp_root: Path, tmp_path: Path
) -> None:
    """Two batches apart: the first is found in the database, not in memory."""
    path = guests(tmp_path / "g.csv", 3 * duplicates.BATCH, "Ada again,GUEST0@example.com")
    content = read_csv(path)
    assert len(content.rows) == 3 * duplicates.BATCH
    assert [str(e) for e in content.errors] == [
        f"line {3 * duplicates.BATCH + 2}: the same guest as line 2 (e-mail 'GUEST0@example.com')"
    ]
    assert list(temp_root.iterdir()) == []


def test_a_check_that_cannot_make_its_database_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(CsvFileError, match="cannot check for guests listed twice"):
        read_csv(guests(tmp_path / "g.csv", 2))


#: The first reading of ``passes import`` (each row read, checked and reconciled, as
#: ``--dry-run`` does) in a fresh process; prints how much its resident memory grew
#: between row ``after`` and the end. SQLite's page cache is made small, so that it is
#: full by then: whatever grows after that grows with the rows.
MEMORY = """
import json, os, sys
from pathlib import Path
from scanner.manage import duplicates
from scanner.manage.guestlist import RowError, open_csv
from scanner.manage.importer import ImportReport, reconcile

assert hasattr(duplicates, "CACHE_KIB")
duplicates.CACHE_KIB = 256
path, after = Path(sys.argv[1]), int(sys.argv[2])

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

read = {"rows": 0, "errors": []}

def good_rows():
    for item in open_csv(path):
        read["rows"] += 1
        if read["rows"] == after:
            read["grew"] = -resident()
        if isinstance(item, RowError):
            read["errors"].append(str(item))
        else:
            yield item

plan = reconcile(good_rows(), {}, ImportReport(), None)
read["grew"] += resident()
read["to_create"] = plan.to_create
print(json.dumps(read))
"""


def test_the_memory_of_the_check_does_not_grow_with_the_rows(tmp_path: Path) -> None:
    """200,000 more rows read, checked and reconciled: not a byte more.

    The earlier check (an 8-byte digest and a row number per row in a flat table) grew
    3.7 MB over these rows, a set of the identities far more; this one nothing.
    """
    rows, after = 220_000, 20_000
    path = tmp_path / "g.csv"
    with path.open("w", encoding="utf-8") as stream:
        stream.write("holder_email\n")
        stream.writelines(f"guest{n}@example.com\n" for n in range(rows))
        stream.write("GUEST1@example.com\n")
    ran = subprocess.run(
        [sys.executable, "-c", MEMORY, str(path), str(after)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    read = json.loads(ran.stdout)
    assert read["rows"] == rows + 1 and read["to_create"] == rows
    assert read["errors"] == [
        f"line {rows + 2}: the same guest as line 3 (e-mail 'GUEST1@example.com')"
    ]
    grew = read["grew"]
    assert grew < 1_000_000, f"grew {grew / 1e6:.1f} MB over {rows - after} rows"
