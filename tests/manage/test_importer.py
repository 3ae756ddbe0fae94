"""``passes import``: the CSV checks, and a bulk import that survives being stopped.

Against the local server, which honours ``Idempotency-Key`` as the spec asks: the
tests show that every good row ends up as exactly one pass, however the run was cut.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from scanner.api import PassQRClient
from scanner.budget import Budget, BudgetLimits
from scanner.csvsafe import SafeCsvWriter
from scanner.manage import importer
from scanner.manage.guestlist import CsvFileError, Row, open_csv, read_csv
from scanner.manage.importer import ImportReport, ResultsFile
from scanner.manage.output import Out, Progress
from scanner.models import PassInfo
from scanner.remote import Remote
from scanner.server import ServerThread, create_key
from tests.conftest import LocalServer
from tests.manage.conftest import RunCli, all_passes

NOW = datetime(2026, 1, 1, tzinfo=UTC)

GUESTS = """\
holder_name,holder_email,max_uses,expires_at,data.seat,table
Ada Lovelace,ada@example.com,1,2099-12-31,A1,7
Bad Email,not-an-address,1,,,
Bad Uses,uses@example.com,0,,,
,,,,,
Bad Date,date@example.com,1,31/12/2099,,
"Zoë [bold]Müller[/]",zoe@example.com,,2099-01-01T20:00:00Z,B2,
Grace Hopper,,unlimited,,,
"Alan ""Al"" Turing",alan@example.com,3,,C3,9
"""
GOOD_LINES = [2, 7, 8, 9]
BAD_LINES = {3: "e-mail", 4: "max_uses", 5: "empty row", 6: "not a date"}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def fresh_template(local_server: LocalServer) -> str:
    """A template of its own, so a test counts only the passes it made."""

    async def make() -> str:
        async with PassQRClient(local_server.base_url, local_server.api_key) as client:
            created = await client.create_template(name="Import test", type="event")
        assert created.id is not None
        return created.id

    return asyncio.run(make())


def results_lines(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


# -- reading the CSV --------------------------------------------------------------------------


def test_rows_are_checked_and_bad_ones_named_by_line(tmp_path: Path) -> None:
    content = read_csv(write(tmp_path / "guests.csv", GUESTS), now=NOW)
    assert [row.line for row in content.rows] == GOOD_LINES
    assert {e.line: e.message for e in content.errors}.keys() == BAD_LINES.keys()
    for error in content.errors:
        assert BAD_LINES[error.line] in error.message
    ada, zoe, grace, alan = content.rows
    assert ada.body("T") == {
        "template_id": "T",
        "holder_name": "Ada Lovelace",
        "holder_email": "ada@example.com",
        "max_uses": 1,
        "expires_at": datetime(2099, 12, 31, 23, 59, 59)
        .astimezone(UTC)
        .strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": {"seat": "A1", "table": "7"},
    }
    assert zoe.holder_name == "Zoë [bold]Müller[/]"
    assert zoe.max_uses is None
    assert zoe.expires_at == "2099-01-01T20:00:00Z"
    assert zoe.data == {"seat": "B2"}
    assert grace.holder_email is None and grace.max_uses is None and grace.data == {}
    assert alan.holder_name == 'Alan "Al" Turing'


@pytest.mark.parametrize(
    ("cells", "words"),
    [
        ("x,a@b.c,-1,", "max_uses '-1'"),
        ("x,a@b.c,1.5,", "max_uses '1.5'"),
        ("x,a@b.c,two,", "max_uses 'two'"),
        ("x,a@b.c,,2001-01-01", "already past"),
        ("x,a@b.c,,tomorrow", "not a date"),
        ("x,a b@c.d,,", "not an e-mail"),
        ("x,@c.d,,", "not an e-mail"),
        (" , , , ", "empty row"),
        ("x,a@b.c,1,,surplus", "5 fields, but the header names 4"),
        ("\x1b[2Jx,a@b.c,,", "control characters"),
    ],
)
def test_bad_cells(tmp_path: Path, cells: str, words: str) -> None:
    path = write(tmp_path / "g.csv", f"holder_name,holder_email,max_uses,expires_at\n{cells}\n")
    content = read_csv(path, now=NOW)
    assert content.rows == []
    assert len(content.errors) == 1
    assert content.errors[0].line == 2
    assert words in content.errors[0].message


def test_spreadsheet_exports(tmp_path: Path) -> None:
    """A BOM, semicolons, CRLF, header spelling; a quoted line break is still one row."""
    text = (
        "\ufeffHolder Name;Holder-Email;Max Uses;Notes\r\n"
        'Ada;ada@example.com;2;"two\r\nlines"\r\n'
        "Bad;bad;1;\r\n"
    )
    content = read_csv(write(tmp_path / "excel.csv", text), now=NOW)
    assert [(r.line, r.holder_name, r.max_uses, dict(r.data)) for r in content.rows] == [
        (2, "Ada", 2, {"Notes": "two\r\nlines"})
    ]
    assert [(e.line, "e-mail" in e.message) for e in content.errors] == [(3, True)]


def test_a_bad_csv_field_is_one_bad_row(tmp_path: Path) -> None:
    """The rows after a field the reader cannot take are read; rows are numbered as records."""
    huge = "x" * 1_000_000 + "@example.com"
    path = write(
        tmp_path / "g.csv",
        "holder_name,holder_email,notes\n"
        "Ada,ada@example.com,\n"
        f"Huge,{huge},\n"
        'Bad,"quoted"x,\n'
        'Bob,bob@example.com,"two\nlines"\n'
        "Cy,bad-address,\n"
        "Dee,dee@example.com,\n",
    )
    content = read_csv(path, now=NOW)
    assert [(r.line, r.holder_name) for r in content.rows] == [(2, "Ada"), (5, "Bob"), (7, "Dee")]
    assert [e.line for e in content.errors] == [3, 4, 6]
    assert "not valid CSV" in content.errors[0].message
    assert "not valid CSV" in content.errors[1].message


@pytest.mark.parametrize(
    "text",
    ["Ada Lovelace,ada@example.com\nBob,bob@example.com\n", "seat,table\nA1,7\n"],
)
def test_a_file_without_a_header_row_is_refused(tmp_path: Path, text: str) -> None:
    with pytest.raises(CsvFileError, match="no header row"):
        read_csv(write(tmp_path / "g.csv", text))


def test_a_results_file_saved_with_a_bom_is_read(
    tmp_path: Path, local_server: LocalServer, fresh_template: str
) -> None:
    # No e-mail: only the results file's key column tells which rows were made.
    source = write(
        tmp_path / "guests.csv", "holder_name\n" + "".join(f"Guest {n}\n" for n in range(4))
    )
    run_import(local_server, source, fresh_template, stop_after=2)
    results = importer.default_results_path(source)
    results.write_bytes(b"\xef\xbb\xbf" + results.read_bytes().replace(b"\n", b"\r\n"))
    resumed = run_import(local_server, source, fresh_template)
    assert resumed.skipped == 2 and len(resumed.created) == 2
    assert len(all_passes(local_server, fresh_template)) == 4


def test_a_results_file_hard_linked_to_the_guest_list_is_refused(
    tmp_path: Path, cli: RunCli, fresh_template: str
) -> None:
    source = guest_list(tmp_path / "guests.csv", 2)
    before = source.read_bytes()
    link = tmp_path / "other-name.csv"
    os.link(source, link)
    ran = cli("passes", "import", str(source), "--template", fresh_template, "--results", str(link))
    assert ran.status == 2, ran.err
    assert "--results must not be the file being imported" in ran.err
    assert source.read_bytes() == before


def test_a_name_column_is_a_hint_not_a_guess(tmp_path: Path) -> None:
    content = read_csv(write(tmp_path / "g.csv", "name,email\nAda,ada@example.com\n"), now=NOW)
    assert content.rows[0].holder_name is None
    assert content.rows[0].data == {"name": "Ada", "email": "ada@example.com"}
    assert any("did you mean 'holder_name'" in w for w in content.warnings)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty"),
        ("holder_name,Holder Name\n", "appears twice"),
        ("holder_name,template_id\n", "comes from --template"),
        ("data.seat,seat\n", "appears twice"),
    ],
)
def test_unusable_files(tmp_path: Path, text: str, words: str) -> None:
    with pytest.raises(CsvFileError, match=words):
        read_csv(write(tmp_path / "g.csv", text))


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("holder_name\nZo\xeb\n".encode("latin-1"))
    with pytest.raises(CsvFileError, match="not UTF-8"):
        read_csv(path)


# -- importing ------------------------------------------------------------------------------


def test_import_good_and_bad_rows(
    tmp_path: Path, cli: RunCli, local_server: LocalServer, fresh_template: str
) -> None:
    source = write(tmp_path / "guests.csv", GUESTS)
    ran = cli("passes", "import", str(source), "--template", fresh_template)
    assert ran.status == 1  # some rows failed
    assert "Traceback" not in ran.err
    for line in BAD_LINES:
        assert f"guests.csv: line {line}: " in ran.err
    assert "created 4 passes" in ran.err
    assert "4 rows failed (lines 3, 4, 5, 6)" in ran.err

    made = all_passes(local_server, fresh_template)
    assert sorted(p.holder_name or "" for p in made) == sorted(
        ["Ada Lovelace", "Zoë [bold]Müller[/]", "Grace Hopper", 'Alan "Al" Turing']
    )
    zoe = next(p for p in made if p.holder_email == "zoe@example.com")
    assert zoe.data == {"seat": "B2"}
    assert zoe.expires_at == "2099-01-01T20:00:00Z"

    results = results_lines(tmp_path / "guests.results.csv")
    assert [int(r["line"]) for r in results] == GOOD_LINES
    assert {r["code"] for r in results} == {p.code for p in made}
    assert {r["id"] for r in results} == {p.id for p in made}
    assert {r["status"] for r in results} == {"active"}
    # The table of what was created, on stdout.
    assert ran.out.splitlines()[0].split() == ["LINE", "CODE", "HOLDER", "EMAIL", "ID"]
    assert all(r["code"] in ran.out for r in results)

    again = cli("passes", "import", str(source), "--template", fresh_template, "--json")
    summary = again.json()
    assert summary["created"] == 0
    assert summary["skipped"] == 4
    assert [f["line"] for f in summary["failed"]] == [3, 4, 5, 6]
    assert len(all_passes(local_server, fresh_template)) == 4


def test_all_good_rows_exit_0_and_json_summary(
    tmp_path: Path, cli: RunCli, local_server: LocalServer, fresh_template: str
) -> None:
    source = write(tmp_path / "ok.csv", "holder_name,holder_email\nA,a@example.com\nB,\n")
    results = tmp_path / "out" / "r.csv"
    results.parent.mkdir()
    ran = cli(
        "passes",
        "import",
        str(source),
        "--template",
        fresh_template,
        "--results",
        str(results),
        "--json",
    )
    assert ran.status == 0, ran.err
    summary = ran.json()
    assert summary["created"] == 2 and summary["failed"] == [] and summary["stopped"] is None
    assert summary["results"] == str(results)
    assert [p["line"] for p in summary["passes"]] == [2, 3]
    assert {p["code"] for p in summary["passes"]} == {r["code"] for r in results_lines(results)}


def test_dry_run_sends_nothing(
    tmp_path: Path, cli: RunCli, local_server: LocalServer, fresh_template: str
) -> None:
    source = write(tmp_path / "guests.csv", GUESTS)
    ran = cli("passes", "import", str(source), "--template", fresh_template, "--dry-run")
    assert ran.status == 1
    assert "4 good rows (0 already created, 4 to create), 4 bad; nothing sent" in ran.err
    assert all_passes(local_server, fresh_template) == []
    assert not (tmp_path / "guests.results.csv").exists()


def test_unknown_template_imports_nothing(
    tmp_path: Path, cli: RunCli, local_server: LocalServer
) -> None:
    source = write(tmp_path / "g.csv", "holder_name\nAda\n")
    missing = "00000000-0000-4000-8000-000000000000"
    ran = cli("passes", "import", str(source), "--template", missing)
    assert ran.status == 1
    assert f"template {missing} not found" in ran.err
    assert not (tmp_path / "g.results.csv").exists()


def run_import(
    server: LocalServer,
    source: Path,
    template: str,
    *,
    client_wrapper: Any = None,
    stop_after: int | None = None,
    update: bool = False,
    key: str | None = None,
) -> ImportReport:
    """The importer in-process, as the command runs it."""
    content = read_csv(source, key=key)
    results = ResultsFile(importer.default_results_path(source))
    recorded = results.load()
    report = ImportReport()

    async def go() -> None:
        async with PassQRClient(server.base_url, server.api_key) as client:
            used = client_wrapper(client) if client_wrapper else client
            remote = Remote(used, Budget(BudgetLimits(write_per_min=10_000)))
            results.open()
            try:
                await importer.import_rows(
                    remote,
                    content.rows,
                    template_id=template,
                    source=source,
                    results=results,
                    recorded=recorded,
                    report=report,
                    stop_after=stop_after,
                    update=update,
                )
            finally:
                results.close()

    asyncio.run(go())
    return report


def guest_list(path: Path, count: int) -> Path:
    rows = "".join(f"Guest {n},guest{n}@example.com,1,\n" for n in range(count))
    return write(path, "holder_name,holder_email,max_uses,expires_at\n" + rows)


def assert_one_pass_per_row(server: LocalServer, template: str, source: Path, count: int) -> None:
    made = all_passes(server, template)
    assert sorted(p.holder_email or "" for p in made) == sorted(
        f"guest{n}@example.com" for n in range(count)
    )
    results = results_lines(importer.default_results_path(source))
    assert sorted(r["key"] for r in results) == sorted(
        f"email:guest{n}@example.com" for n in range(count)
    )
    assert {r["code"] for r in results} == {p.code for p in made}


def test_a_plan_quota_stops_the_import_with_a_report(tmp_path: Path) -> None:
    """402 plan_limit_reached is not a failed row: every row after it would fail too."""
    db = tmp_path / "quota.sqlite3"
    key = create_key(db, plan="starter", business="small")
    with ServerThread(db, rate_limit=False, pass_quotas={"starter": 2}) as srv:
        server = LocalServer(base_url=srv.base_url, api_key=key, db_path=db)
        template = create_template(server)
        source = guest_list(tmp_path / "guests.csv", 5)
        report = run_import(server, source, template)
    assert len(report.created) == 2 and report.failed == []
    assert report.stopped is not None and "line 4" in report.stopped
    assert "starter plan allows 2 passes" in report.stopped


def create_template(server: LocalServer) -> str:
    async def go() -> str:
        async with PassQRClient(server.base_url, server.api_key) as client:
            template_id = (await client.create_template(name="Quota")).id
            assert template_id is not None
            return template_id

    return asyncio.run(go())


def test_a_run_stopped_half_way_resumes_without_duplicates(
    tmp_path: Path, local_server: LocalServer, fresh_template: str
) -> None:
    source = guest_list(tmp_path / "guests.csv", 12)
    first = run_import(local_server, source, fresh_template, stop_after=5)
    assert len(first.created) == 5 and first.held_back == 7
    assert len(all_passes(local_server, fresh_template)) == 5
    second = run_import(local_server, source, fresh_template)
    assert len(second.created) == 7 and second.skipped == 5
    assert_one_pass_per_row(local_server, fresh_template, source, 12)


class LosesTheAnswer:
    """The real client, except that the ``n``-th create reaches the server and the run
    is then cancelled (Ctrl+C) before its answer is recorded."""

    def __init__(self, client: PassQRClient, n: int) -> None:
        self._client = client
        self.n = n
        self.creates = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def create_pass(self, **fields: Any) -> PassInfo:
        info = await self._client.create_pass(**fields)
        self.creates += 1
        if self.creates == self.n:
            raise asyncio.CancelledError
        return info


def test_a_create_whose_answer_was_lost_is_not_made_twice(
    tmp_path: Path, local_server: LocalServer, fresh_template: str
) -> None:
    source = guest_list(tmp_path / "guests.csv", 6)
    with pytest.raises(asyncio.CancelledError):
        run_import(
            local_server, source, fresh_template, client_wrapper=lambda c: LosesTheAnswer(c, 3)
        )
    # The server made three passes; the results file knows two of them.
    assert len(all_passes(local_server, fresh_template)) == 3
    assert len(results_lines(importer.default_results_path(source))) == 2
    resumed = run_import(local_server, source, fresh_template)
    # The third row's create is answered with the pass made the first time: not "created".
    assert resumed.skipped == 2 and len(resumed.created) == 3 and len(resumed.replayed) == 1
    assert_one_pass_per_row(local_server, fresh_template, source, 6)


def test_a_results_line_cut_short_by_a_crash(
    tmp_path: Path, local_server: LocalServer, fresh_template: str
) -> None:
    source = guest_list(tmp_path / "guests.csv", 4)
    run_import(local_server, source, fresh_template, stop_after=2)
    results = importer.default_results_path(source)
    text = results.read_text()
    # Power lost while the second line was being written: half of it reached the disk.
    results.write_text(text[: text.rindex("\n", 0, len(text) - 1) + 12])
    assert not results.read_text().endswith("\n")
    resumed = run_import(local_server, source, fresh_template)
    # The second pass was made; its line was lost: the server answers with it again.
    assert resumed.skipped == 1 and len(resumed.created) == 2 and len(resumed.replayed) == 1
    assert_one_pass_per_row(local_server, fresh_template, source, 4)


def test_a_changed_file_is_not_silently_resumed(
    tmp_path: Path, local_server: LocalServer, fresh_template: str
) -> None:
    """A guest replaced by another: the new one is created, the one gone is reported."""
    source = guest_list(tmp_path / "guests.csv", 3)
    run_import(local_server, source, fresh_template, stop_after=2)
    text = source.read_text().replace("Guest 1,guest1@", "Someone Else,else@")
    source.write_text(text)
    resumed = run_import(local_server, source, fresh_template)
    assert resumed.skipped == 1
    assert sorted(info.holder_email or "" for _, info in resumed.created) == [
        "else@example.com",
        "guest2@example.com",
    ]
    assert [r.holder_email for r in resumed.gone] == ["guest1@example.com"]
    assert len(all_passes(local_server, fresh_template)) == 4


def shuffled(source: Path, order: Any) -> None:
    header, *rows = source.read_text().splitlines(keepends=True)
    source.write_text(header + "".join(order(rows)))


@pytest.mark.parametrize(
    "order",
    [
        lambda rows: sorted(rows, reverse=True),
        lambda rows: rows[1::2] + rows[0::2],
    ],
    ids=["reversed", "interleaved"],
)
def test_resume_after_the_file_was_sorted(
    tmp_path: Path, local_server: LocalServer, fresh_template: str, order: Any
) -> None:
    source = guest_list(tmp_path / "guests.csv", 20)
    first = run_import(local_server, source, fresh_template, stop_after=10)
    assert len(first.created) == 10
    shuffled(source, order)
    second = run_import(local_server, source, fresh_template)
    assert second.skipped == 10 and len(second.created) == 10 and second.failed == []
    assert_one_pass_per_row(local_server, fresh_template, source, 20)


def test_resume_after_rows_were_inserted_and_deleted(
    tmp_path: Path, local_server: LocalServer, fresh_template: str
) -> None:
    source = guest_list(tmp_path / "guests.csv", 6)
    run_import(local_server, source, fresh_template, stop_after=3)  # guests 0, 1, 2
    header, *rows = source.read_text().splitlines(keepends=True)
    del rows[1]  # guest 1, created
    del rows[3]  # guest 4, not created yet
    rows.insert(0, "New Guest,new@example.com,1,\n")
    source.write_text(header + "".join(rows))
    resumed = run_import(local_server, source, fresh_template)
    assert resumed.skipped == 2 and resumed.failed == []
    assert sorted(info.holder_email or "" for _, info in resumed.created) == [
        "guest3@example.com",
        "guest5@example.com",
        "new@example.com",
    ]
    assert [r.holder_email for r in resumed.gone] == ["guest1@example.com"]
    made = all_passes(local_server, fresh_template)
    emails = [p.holder_email for p in made]
    assert len(emails) == len(set(emails)) == 6  # guest 1's pass stays; nobody has two


def test_a_changed_row_is_reported_and_applied_with_update(
    tmp_path: Path, local_server: LocalServer, fresh_template: str
) -> None:
    source = write(
        tmp_path / "guests.csv",
        "holder_name,holder_email,seat\nAda,ada@example.com,A1\nBob,bob@example.com,B1\n",
    )
    run_import(local_server, source, fresh_template)
    source.write_text(
        "holder_name,holder_email,seat\nBob,bob@example.com,B1\nAda King,ada@example.com,A2\n"
    )
    seen = run_import(local_server, source, fresh_template)
    assert seen.created == [] and seen.skipped == 1 and seen.updated == []
    assert [(c.line, c.message) for c in seen.changed] == [
        (3, seen.changed[0].message)
    ] and "holder_name, data" in seen.changed[0].message
    ada = next(
        p for p in all_passes(local_server, fresh_template) if p.holder_email == "ada@example.com"
    )
    assert ada.holder_name == "Ada"  # reported, not applied

    applied = run_import(local_server, source, fresh_template, update=True)
    assert [line for line, _ in applied.updated] == [3] and applied.created == []
    made = all_passes(local_server, fresh_template)
    assert len(made) == 2
    ada = next(p for p in made if p.holder_email == "ada@example.com")
    assert ada.holder_name == "Ada King" and ada.data == {"seat": "A2"}
    again = run_import(local_server, source, fresh_template)
    assert again.skipped == 2 and again.changed == [] and again.created == []


def test_rows_without_email_are_keyed_by_content_or_by_a_declared_column(
    tmp_path: Path, local_server: LocalServer, fresh_template: str
) -> None:
    source = write(
        tmp_path / "guests.csv",
        "holder_name,member\n" + "".join(f"Guest {n},M{n}\n" for n in range(6)),
    )
    run_import(local_server, source, fresh_template, stop_after=3)
    shuffled(source, lambda rows: sorted(rows, reverse=True))
    resumed = run_import(local_server, source, fresh_template)
    assert resumed.skipped == 3 and len(resumed.created) == 3
    assert len(all_passes(local_server, fresh_template)) == 6

    keyed = write(
        tmp_path / "members.csv",
        "holder_name,member\nAda,X1\nBob,X2\n",
    )
    run_import(local_server, keyed, fresh_template, key="member")
    keyed.write_text("holder_name,member\nBob,X2\nAda Lovelace,X1\n")
    seen = run_import(local_server, keyed, fresh_template, key="member")
    assert seen.skipped == 1 and [c.line for c in seen.changed] == [3]
    assert len(all_passes(local_server, fresh_template)) == 8


def test_the_same_guest_twice_in_a_file_is_a_bad_row(tmp_path: Path) -> None:
    path = write(
        tmp_path / "g.csv",
        "holder_name,holder_email\nAda,ada@example.com\nAda L,ADA@example.com\n",
    )
    content = read_csv(path, now=NOW)
    assert [r.line for r in content.rows] == [2]
    assert [e.line for e in content.errors] == [3]
    assert "same guest as line 2" in content.errors[0].message


def test_key_column_must_exist_and_be_filled(tmp_path: Path) -> None:
    path = write(tmp_path / "g.csv", "holder_name,member\nAda,X1\nBob,\n")
    with pytest.raises(CsvFileError, match="no column 'badge'"):
        read_csv(path, key="badge")
    content = read_csv(path, key="member")
    assert [r.line for r in content.rows] == [2]
    assert "member" in content.errors[0].message and content.errors[0].line == 3


def subprocess_import(
    config: Path, source: Path, template: str, *extra: str
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PASSQR")}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scanner.manage",
            "passes",
            "import",
            str(source),
            "--template",
            template,
            "--config",
            str(config),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def wait_for_lines(path: Path, count: int, within_s: float = 20.0) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if path.exists() and len(results_lines(path)) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{path} never had {count} lines")


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_a_killed_import_resumes(
    tmp_path: Path,
    config: Path,
    local_server: LocalServer,
    fresh_template: str,
    sig: signal.Signals,
) -> None:
    """Five creates a minute: the first five go at once, then the run waits for budget and
    is killed (or Ctrl+C'd); the rerun creates the rest, and no guest has two passes."""
    source = guest_list(tmp_path / "guests.csv", 8)
    results = importer.default_results_path(source)
    proc = subprocess_import(config, source, fresh_template, "--per-min", "5")
    try:
        wait_for_lines(results, 5)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if sig is signal.SIGINT:
        assert proc.returncode == 130
        assert "created 5 passes" in err
        assert "run the same command again to continue" in err
        assert "Traceback" not in err
    assert len(results_lines(results)) == 5
    assert len(all_passes(local_server, fresh_template)) == 5

    rerun = subprocess_import(config, source, fresh_template)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert "created 3 passes" in err and "5 created by an earlier run" in err
    assert_one_pass_per_row(local_server, fresh_template, source, 8)


# -- progress and ETA ----------------------------------------------------------------------


class FakeTerminal:
    """A stream that says it is a terminal."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> int:
        self.text += text
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        raise OSError("not a real terminal")


def test_eta_follows_the_sliding_window() -> None:
    # 500 guests at 60 a minute from a fresh budget: 60 at once, then 60 a minute.
    fresh = importer.eta_s(500, sent_at=[], now=1000.0, per_min=60)
    assert 8 * 60 <= fresh <= 8 * 60 + 30
    assert importer.eta_s(10, sent_at=[], now=0.0, per_min=60) < 1
    # A burst of 60 just went out: the next one waits for the first of them to expire.
    burst = [100.0 + i * 0.01 for i in range(60)]
    assert importer.eta_s(1, sent_at=burst, now=101.0, per_min=60) == pytest.approx(59.05)
    assert importer.eta_s(30, sent_at=burst, now=101.0, per_min=60) == pytest.approx(60.7, 0.01)


def test_progress_on_a_terminal_and_plain_lines_elsewhere() -> None:
    terminal = FakeTerminal()
    out = Out(stdout=FakeTerminal(), stderr=terminal)  # type: ignore[arg-type]
    with out.progress("Importing", 10) as bar:
        bar.update(3, note="1 failed", eta_s=440)
        out.warn("line 4: bad")
    assert "line 4: bad" in terminal.text
    assert "about 7m20s left" in terminal.text and "1 failed" in terminal.text

    clock = iter([0.0, 10.0, 31.0, 32.0]).__next__
    plain = FakeTerminal()
    plain.isatty = lambda: False  # type: ignore[method-assign]
    out = Out(stdout=plain, stderr=plain)  # type: ignore[arg-type]
    progress = Progress(out, "Importing", 10, plain_every_s=30.0, clock=clock)
    with progress:
        progress.update(1, eta_s=20)  # 10 s: too soon
        progress.update(4, eta_s=6, note="1 failed")  # 31 s: a line
        progress.update(5, eta_s=5)  # 32 s: too soon again
    assert plain.text == "passqr-scanner: Importing: 4/10, about 6s left, 1 failed\n"


# -- what the project writes to CSV ------------------------------------------------------------


def test_the_safe_writer_defuses_formulas_and_escapes_control_characters() -> None:
    stream = io.StringIO(newline="")
    writer = SafeCsvWriter(stream, lineterminator="\n")
    writer.write_row(["=1+2", "@SUM(A1)", "+x", "-y", "a\x1b[2Jb", "\u202eevil", 3, -3.5, "ok"])
    assert stream.getvalue() == "'=1+2,'@SUM(A1),'+x,'-y,a\\x1b[2Jb,\\u202eevil,3,-3.5,ok\n"


def test_the_results_file_is_safe_to_open_and_resumes_the_same(
    tmp_path: Path, local_server: LocalServer, fresh_template: str
) -> None:
    source = write(
        tmp_path / "guests.csv",
        'holder_name,holder_email\n"=HYPERLINK(""http://x"",""y"")",eq@example.com\n-Bob,\n',
    )
    first = run_import(local_server, source, fresh_template)
    assert len(first.created) == 2
    text = importer.default_results_path(source).read_text()
    assert "'=HYPERLINK" in text and ",'-Bob," in text
    again = run_import(local_server, source, fresh_template)
    assert again.skipped == 2 and again.changed == [] and again.created == []
    assert len(all_passes(local_server, fresh_template)) == 2


def eta_by_steps(
    remaining: int, *, sent_at: list[float], now: float, per_min: int, each_s: float = 0.05
) -> float:
    """The estimate one create at a time (what the closed form must agree with)."""
    recent = [t for t in sent_at if t > now - 60.0][-per_min:]
    t = now
    for _ in range(remaining):
        if len(recent) >= per_min:
            t = max(t, recent[-per_min] + 60.0)
        t += each_s
        recent.append(t)
    return t - now


@pytest.mark.parametrize("per_min", [1, 7, 60, 2000])
def test_eta_closed_form_agrees_with_the_step_by_step(per_min: int) -> None:
    import random

    rng = random.Random(per_min)
    for _ in range(40):
        now = 1000.0
        sent = sorted(now - rng.uniform(0, 70) for _ in range(rng.randrange(0, 2 * per_min + 2)))
        remaining = rng.randrange(0, 5 * per_min + 3)
        assert importer.eta_s(remaining, sent_at=sent, now=now, per_min=per_min) == pytest.approx(
            eta_by_steps(remaining, sent_at=sent, now=now, per_min=per_min)
        )


def test_eta_does_not_walk_the_rows_left() -> None:
    started = time.perf_counter()
    for _ in range(100):
        importer.eta_s(10_000_000, sent_at=[], now=0.0, per_min=60)
    assert time.perf_counter() - started < 0.5


def test_the_guest_list_is_read_row_by_row(tmp_path: Path) -> None:
    """Nothing holds every row: the iterator yields while the file is still being read."""
    path = guest_list(tmp_path / "guests.csv", 5000)
    guests = open_csv(path)
    seen = iter(guests)
    first = next(seen)
    assert isinstance(first, Row) and first.line == 2
    assert sum(1 for _ in seen) == 4999
    assert sum(1 for _ in guests) == 5000  # and it can be read again


def test_dry_run_counts_and_reports_without_sending(
    tmp_path: Path, cli: RunCli, local_server: LocalServer, fresh_template: str
) -> None:
    source = guest_list(tmp_path / "guests.csv", 6)
    run_import(local_server, source, fresh_template, stop_after=3)
    text = source.read_text().replace("Guest 0,", "Guest Zero,")
    source.write_text(text.replace("Guest 2,guest2@example.com", "Bad,x"))
    ran = cli("passes", "import", str(source), "--template", fresh_template, "--dry-run")
    assert ran.status == 1
    assert "5 good rows (1 already created, 3 to create, 1 changed), 1 bad; nothing sent" in ran.err
    assert "1 passes of the results file have no row" in ran.err
    assert len(all_passes(local_server, fresh_template)) == 3


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_the_results_file_is_private_whatever_the_umask(
    tmp_path: Path, local_server: LocalServer, fresh_template: str, umask: int
) -> None:
    source = guest_list(tmp_path / "guests.csv", 1)
    old = os.umask(umask)
    try:
        run_import(local_server, source, fresh_template)
    finally:
        os.umask(old)
    mode = importer.default_results_path(source).stat().st_mode & 0o777
    assert mode == 0o600


def test_key_and_update_on_the_command_line(
    tmp_path: Path, cli: RunCli, local_server: LocalServer, fresh_template: str
) -> None:
    source = write(tmp_path / "m.csv", "holder_name,Member No\nAda,X1\nBob,X2\n")
    first = cli("passes", "import", str(source), "--template", fresh_template, "--key", "member no")
    assert first.status == 0, first.err
    source.write_text("holder_name,Member No\nBob,X2\nAda King,X1\n")
    seen = cli("passes", "import", str(source), "--template", fresh_template, "--key", "member no")
    assert seen.status == 1
    assert "m.csv: line 3: changed since pass" in seen.err and "(holder_name)" in seen.err
    assert "1 changed rows left as they are (--update applies)" in seen.err
    applied = cli(
        "passes",
        "import",
        str(source),
        "--template",
        fresh_template,
        "--key",
        "member no",
        "--update",
        "--json",
    )
    assert applied.status == 0, applied.err
    summary = applied.json()
    assert summary["created"] == 0 and summary["skipped"] == 1
    assert [u["line"] for u in summary["updated"]] == [3]
    names = sorted(p.holder_name or "" for p in all_passes(local_server, fresh_template))
    assert names == ["Ada King", "Bob"]
