"""Bulk creation of passes from a CSV guest list, resumable and never twice.

The file is read and checked whole before anything is sent
(:mod:`scanner.manage.guestlist`), so every bad row is reported up front with its
line number; the good rows are then created one at a time within the write budget
(PassQR allows 60 writes a minute: 500 guests take about nine minutes).

Nothing is lost when a run stops half-way (Ctrl+C, ``kill``, a power cut):

* each created pass is appended to the results file (line, code, id, status) and
  flushed and fsync'd before the next row is sent; a rerun skips the lines it lists;
* each row is sent with an ``Idempotency-Key`` derived from the input file's path,
  the line number and the row's content, so a create whose answer was lost (the
  run was killed while waiting for it) is answered on the rerun with the pass it
  already made, not made again. (PassQR does not document idempotency; the
  project's local server honours it.)
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from scanner.budget import Bucket
from scanner.errors import (
    AuthenticationError,
    BadAnswerError,
    NotFoundError,
    PlanError,
    PlanLimitError,
    RateLimitedError,
    RequestRejectedError,
    ServerError,
    TransportError,
)
from scanner.explain import describe
from scanner.manage.guestlist import CsvFileError, Row, RowError
from scanner.models import PassInfo
from scanner.payload import is_pass_code
from scanner.remote import Remote

#: The results file's columns.
RESULT_COLUMNS = ("line", "code", "id", "status", "holder_name", "holder_email")
#: Namespace of the idempotency keys (uuid5): fixed, so a rerun derives the same keys.
KEY_NAMESPACE = uuid.UUID("6f1c1d2e-54a8-4bb8-9d0a-3c6f4a5e2b71")


# -- the results file ---------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Recorded:
    """A pass an earlier run created, as the results file lists it."""

    line: int
    code: str
    id: str
    status: str
    holder_name: str
    holder_email: str


def default_results_path(source: Path) -> Path:
    """``guests.csv`` -> ``guests.results.csv``, beside it."""
    return source.with_name(source.stem + ".results.csv")


class ResultsFile:
    """The durable record of created passes: one line per pass, fsync'd when written.

    A line cut short by a crash (no newline at the end) is ignored on reading and
    dropped before the next line is appended; its row is then sent again, with the
    same idempotency key, and answered with the pass made the first time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stream: TextIO | None = None
        self._writer: Any = None

    def load(self) -> dict[int, Recorded]:
        """Lines already created (line number -> record); nothing if the file is absent.

        Raises:
            CsvFileError: the file exists but cannot be read.
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as err:
            raise CsvFileError(f"{self.path}: cannot read the results file ({err})") from err
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # a line cut short by a crash
        out: dict[int, Recorded] = {}
        for record in csv.DictReader(io.StringIO(text, newline="")):
            try:
                line = int(record.get("line") or "")
            except ValueError:
                continue
            code = record.get("code") or ""
            if not is_pass_code(code) or not record.get("id"):
                continue
            out[line] = Recorded(
                line=line,
                code=code,
                id=record.get("id") or "",
                status=record.get("status") or "",
                holder_name=record.get("holder_name") or "",
                holder_email=record.get("holder_email") or "",
            )
        return out

    def open(self) -> None:
        """Open for appending; a new file gets the header (durably, with its directory entry).

        Raises:
            OSError: the file cannot be created or written.
        """
        if self.path.exists():
            _drop_partial_line(self.path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        stream = self.path.open("a", encoding="utf-8", newline="")
        self._stream = stream
        self._writer = csv.writer(stream, lineterminator="\n")
        if new:
            self._writer.writerow(RESULT_COLUMNS)
        self._sync()
        if new:
            _fsync_dir(self.path.parent)

    def record(self, line: int, info: PassInfo) -> None:
        """Append one created pass; durable when this returns."""
        if self._writer is None:
            raise RuntimeError("results file is not open")
        self._writer.writerow(
            [
                line,
                info.code or "",
                info.id or "",
                info.status or "",
                info.holder_name or "",
                info.holder_email or "",
            ]
        )
        self._sync()

    def _sync(self) -> None:
        assert self._stream is not None
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
            self._writer = None


def _drop_partial_line(path: Path) -> None:
    """Cut a last line that has no newline (a write cut short), durably."""
    with path.open("r+b") as stream:
        data = stream.read()
        if not data or data.endswith(b"\n"):
            return
        stream.truncate(data.rfind(b"\n") + 1)
        stream.flush()
        os.fsync(stream.fileno())


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def idempotency_key(source: Path, template_id: str, row: Row) -> str:
    """The same key for the same row of the same file on every run (uuid5).

    The row's content is part of it: a row edited between runs is a different
    request (and a different pass), never a clash with the first one's key.
    """
    material = json.dumps(
        {"file": str(source.resolve()), "line": row.line, "pass": row.body(template_id)},
        sort_keys=True,
        ensure_ascii=False,
    )
    return str(uuid.uuid5(KEY_NAMESPACE, material))


# -- the run ----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """How a run went; filled in as it goes, so an interrupted run can still say."""

    rows: int = 0
    """Good rows in the file."""
    skipped: int = 0
    """Rows an earlier run had created already."""
    created: list[tuple[int, PassInfo]] = field(default_factory=list)
    failed: list[RowError] = field(default_factory=list)
    stopped: str | None = None
    """Why the run stopped before the end (the server refused the key, is unreachable...)."""
    held_back: int = 0
    """Rows left for a later run because of ``stop_after`` (``--max``)."""
    started: float = field(default_factory=time.monotonic)
    sent_at: list[float] = field(default_factory=list)
    """Monotonic times of the creates sent (for the time-left estimate)."""

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def to_json(self, results: Path, bad_rows: Sequence[RowError]) -> dict[str, Any]:
        return {
            "created": len(self.created),
            "skipped": self.skipped,
            "failed": [{"line": e.line, "error": e.message} for e in [*bad_rows, *self.failed]],
            "stopped": self.stopped,
            "held_back": self.held_back,
            "results": str(results),
            "passes": [
                {"line": line, "code": info.code, "id": info.id, "status": info.status}
                for line, info in self.created
            ],
        }


#: Errors after which no further row can succeed: the run stops (and can be resumed).
_FATAL = (
    AuthenticationError,
    PlanError,
    PlanLimitError,
    TransportError,
    BadAnswerError,
    RateLimitedError,
)


def _same_guest(row: Row, recorded: Recorded) -> bool:
    return (row.holder_name or "") == recorded.holder_name and (
        row.holder_email or ""
    ) == recorded.holder_email


async def import_rows(
    remote: Remote,
    rows: Sequence[Row],
    *,
    template_id: str,
    source: Path,
    results: ResultsFile,
    recorded: Mapping[int, Recorded],
    report: ImportReport,
    on_progress: Callable[[ImportReport, int], None] | None = None,
    on_error: Callable[[RowError], None] | None = None,
    stop_after: int | None = None,
) -> ImportReport:
    """Create a pass for every row the results file does not list yet.

    Args:
        remote: the client and the budget (writes come from its ``WRITE`` bucket).
        rows: the good rows of the file.
        template_id: every pass's template.
        source: the CSV file (part of each idempotency key).
        results: open; each created pass is recorded before the next row is sent.
        recorded: what earlier runs created (:meth:`ResultsFile.load`).
        report: filled in as the run goes.
        on_progress: called with the report and the rows still to send.
        on_error: called for each row that fails.
        stop_after: send at most this many creates (tests: a run that stops half-way).

    Returns:
        ``report``. Errors of single rows are in ``report.failed``; an error no
        later row could survive ends the run and is in ``report.stopped``.
    """
    report.rows = len(rows)
    todo = _still_to_create(rows, recorded, report, on_error)
    left = len(todo)
    if on_progress is not None:
        on_progress(report, left)
    for sent, row in enumerate(todo):
        if stop_after is not None and sent >= stop_after:
            report.held_back = left
            break
        key = idempotency_key(source, template_id, row)
        try:
            info = await remote.call(
                Bucket.WRITE, _creator(remote, report, template_id, row, key), retries=4
            )
        except _FATAL as err:
            report.stopped = f"line {row.line}: {describe(err)}"
            break
        except (RequestRejectedError, NotFoundError, ServerError) as err:
            _failed(report, RowError(row.line, describe(err, "template")), on_error)
        else:
            results.record(row.line, info)
            report.created.append((row.line, info))
        left -= 1
        if on_progress is not None:
            on_progress(report, left)
    return report


def _failed(
    report: ImportReport, error: RowError, on_error: Callable[[RowError], None] | None
) -> None:
    report.failed.append(error)
    if on_error is not None:
        on_error(error)


def _still_to_create(
    rows: Sequence[Row],
    recorded: Mapping[int, Recorded],
    report: ImportReport,
    on_error: Callable[[RowError], None] | None,
) -> list[Row]:
    """The rows no earlier run created; a line the results file gives another guest fails."""
    todo: list[Row] = []
    for row in rows:
        earlier = recorded.get(row.line)
        if earlier is None:
            todo.append(row)
        elif _same_guest(row, earlier):
            report.skipped += 1
        else:
            who = earlier.holder_name or earlier.holder_email or "another guest"
            message = (
                f"the results file lists {earlier.code} for this line, made for {who!r}: "
                "the file has changed since; fix it or use a new --results file"
            )
            _failed(report, RowError(row.line, message), on_error)
    return todo


def _creator(
    remote: Remote, report: ImportReport, template_id: str, row: Row, key: str
) -> Callable[[], Awaitable[PassInfo]]:
    """One row's create, as :meth:`Remote.call` tries it (the same key on every try)."""
    client = remote.client

    async def create() -> PassInfo:
        report.sent_at.append(time.monotonic())  # the budget slot was just taken
        return await client.create_pass(
            template_id=template_id,
            holder_name=row.holder_name,
            holder_email=row.holder_email,
            max_uses=row.max_uses,
            expires_at=row.expires_at,
            data=row.data or None,
            idempotency_key=key,
        )

    return create


def eta_s(
    remaining: int,
    *,
    sent_at: Sequence[float],
    now: float,
    per_min: int,
    window_s: float = 60.0,
    each_s: float = 0.05,
) -> float:
    """About how long ``remaining`` creates take under a sliding-window budget.

    The window lets ``per_min`` requests through in any ``window_s``: whatever is left
    of the current window goes at once, then each further create waits for the one
    ``per_min`` before it to leave the window (500 guests at 60 a minute: about 8 min).
    """
    limit = max(per_min, 1)
    recent: deque[float] = deque((t for t in sent_at if t > now - window_s), maxlen=limit)
    t = now
    for _ in range(remaining):
        if len(recent) == limit:
            t = max(t, recent[0] + window_s)
        t += each_s
        recent.append(t)
    return t - now
