"""Bulk creation of passes from a CSV guest list, resumable and never twice.

The file is read and checked before anything is sent (:mod:`scanner.manage.guestlist`),
so every bad row is reported up front with its row number; the good rows are then
created one at a time within the write budget (PassQR allows 60 writes a minute: 500
guests take about nine minutes).

Every row has an identity (:attr:`Row.identity`: the ``--key`` column, else the e-mail
address, else a hash of the row), and everything is keyed by it, never by the line:

* each created pass is appended to the results file (identity, line, code, id...) and
  flushed and fsync'd before the next row is sent; a rerun reconciles row by row:
  created, already there, or *changed* (reported; applied with ``--update`` through
  ``PATCH``), and says which passes no longer have a row, however the file was sorted,
  inserted into or cut since;
* each row is sent with an ``Idempotency-Key`` derived from the template and the row's
  identity, so a create whose answer was lost (the run was killed while waiting for it)
  is answered on the rerun with the pass it already made, not made again, and not
  counted as created. (PassQR does not document idempotency; the project's local
  server honours it.)
"""

from __future__ import annotations

import json
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
from scanner.manage.guestlist import Row, RowError
from scanner.manage.results import (
    RESULT_COLUMNS,
    Recorded,
    ResultsFile,
    default_results_path,
)
from scanner.models import PassInfo
from scanner.remote import Remote

#: Namespace of the idempotency keys (uuid5): fixed, so a rerun derives the same keys.
KEY_NAMESPACE = uuid.UUID("6f1c1d2e-54a8-4bb8-9d0a-3c6f4a5e2b71")

__all__ = [
    "RESULT_COLUMNS",
    "ImportReport",
    "Recorded",
    "ResultsFile",
    "default_results_path",
    "eta_s",
    "idempotency_key",
    "import_rows",
]


def idempotency_key(template_id: str, row: Row) -> str:
    """The same key for the same guest and template on every run (uuid5).

    Derived from the row's identity, not its line: a sorted file sends the same keys.
    A row edited after a create whose answer was lost is refused by the server (the
    key was used for another body), never made twice.
    """
    material = json.dumps({"template": template_id, "identity": row.identity}, sort_keys=True)
    return str(uuid.uuid5(KEY_NAMESPACE, material))


# -- the run ----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """How a run went; filled in as it goes, so an interrupted run can still say."""

    rows: int = 0
    """Good rows in the file."""
    skipped: int = 0
    """Rows an earlier run had created already, unchanged."""
    created: list[tuple[int, PassInfo]] = field(default_factory=list)
    replayed: list[tuple[int, PassInfo]] = field(default_factory=list)
    """Creates answered with a pass an earlier run made but could not record."""
    changed: list[RowError] = field(default_factory=list)
    """Rows that differ from the pass made from them, left as they are (no ``--update``)."""
    updated: list[tuple[int, PassInfo]] = field(default_factory=list)
    gone: list[Recorded] = field(default_factory=list)
    """Passes the results file lists whose guest has no row in the file any more."""
    failed: list[RowError] = field(default_factory=list)
    stopped: str | None = None
    """Why the run stopped before the end (the server refused the key, is unreachable...)."""
    held_back: int = 0
    """Rows left for a later run because of ``stop_after`` (``--max``)."""
    started: float = field(default_factory=time.monotonic)
    sent_at: deque[float] = field(default_factory=lambda: deque(maxlen=10_000))
    """Monotonic times of the latest creates sent (for the time-left estimate)."""

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def to_json(self, results: Path, bad_rows: Sequence[RowError]) -> dict[str, Any]:
        def passes(made: Sequence[tuple[int, PassInfo]]) -> list[dict[str, Any]]:
            return [
                {"line": line, "code": info.code, "id": info.id, "status": info.status}
                for line, info in made
            ]

        return {
            "created": len(self.created),
            "skipped": self.skipped,
            "replayed": len(self.replayed),
            "updated": passes(self.updated),
            "changed": [{"line": e.line, "change": e.message} for e in self.changed],
            "gone": [{"code": r.code, "id": r.id, "key": r.identity} for r in self.gone],
            "failed": [{"line": e.line, "error": e.message} for e in [*bad_rows, *self.failed]],
            "stopped": self.stopped,
            "held_back": self.held_back,
            "results": str(results),
            "passes": passes(self.created),
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


@dataclass(frozen=True)
class _Update:
    row: Row
    recorded: Recorded
    changes: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    """What a run has to send, counted beforehand (for the progress bar)."""

    to_create: int = 0
    to_update: int = 0


async def import_rows(
    remote: Remote,
    rows: Iterable[Row],
    *,
    template_id: str,
    source: Path | None = None,
    results: ResultsFile,
    recorded: Mapping[str, Recorded],
    report: ImportReport,
    on_progress: Callable[[ImportReport, int], None] | None = None,
    on_error: Callable[[RowError], None] | None = None,
    stop_after: int | None = None,
    update: bool = False,
    plan: Plan | None = None,
) -> ImportReport:
    """Create a pass for every guest the results file does not list yet.

    Args:
        remote: the client and the budget (writes come from its ``WRITE`` bucket).
        rows: the good rows of the file; iterated twice unless ``plan`` is given (a
            list, or a :class:`GuestList`'s rows, which reads the file again: nothing
            holds every row).
        template_id: every pass's template (part of each idempotency key).
        source: the CSV file (unused; kept for callers).
        results: open; each created pass is recorded before the next row is sent.
        recorded: what earlier runs created (:meth:`ResultsFile.load`).
        report: filled in as the run goes.
        on_progress: called with the report and the rows still to send.
        on_error: called for each row that fails or has changed.
        stop_after: send at most this many creates (tests: a run that stops half-way).
        update: apply changed rows to their passes (``PATCH``).
        plan: what :func:`reconcile` found, when the caller ran it already.

    Returns:
        ``report``. Errors of single rows are in ``report.failed``; an error no
        later row could survive ends the run and is in ``report.stopped``.
    """
    if plan is None:
        plan = reconcile(rows, recorded, report, on_error, update=update)
    left = plan.to_create + plan.to_update
    if on_progress is not None:
        on_progress(report, left)
    sent = 0
    for row in rows:
        item = _to_send(row, recorded, update=update)
        if item is None:
            continue
        if stop_after is not None and sent >= stop_after:
            report.held_back = left
            break
        sent += 1
        if not await _send_one(remote, report, results, template_id, item, on_error):
            break
        left -= 1
        if on_progress is not None:
            on_progress(report, left)
    return report


def _to_send(row: Row, recorded: Mapping[str, Recorded], *, update: bool) -> Row | _Update | None:
    verdict = _verdict(row, recorded)
    if verdict == "create":
        return row
    if isinstance(verdict, _Update) and update:
        return verdict
    return None


async def _send_one(
    remote: Remote,
    report: ImportReport,
    results: ResultsFile,
    template_id: str,
    item: Row | _Update,
    on_error: Callable[[RowError], None] | None,
) -> bool:
    """Create (or update) one row's pass and record it; False when the run must stop."""
    row = item.row if isinstance(item, _Update) else item
    try:
        if isinstance(item, _Update):
            client = remote.client
            pass_id, changes = item.recorded.id, item.changes
            info = await remote.call(
                Bucket.WRITE, lambda: client.update_pass(pass_id, **changes), retries=4
            )
        else:
            key = idempotency_key(template_id, row)
            info = await remote.call(
                Bucket.WRITE, _creator(remote, report, template_id, row, key), retries=4
            )
    except _FATAL as err:
        report.stopped = f"line {row.line}: {describe(err)}"
        return False
    except (RequestRejectedError, NotFoundError, ServerError) as err:
        _failed(report, RowError(row.line, describe(err, "template")), on_error)
        return True
    results.record(row, info)
    if isinstance(item, _Update):
        report.updated.append((row.line, info))
    elif info.replayed:
        report.replayed.append((row.line, info))
    else:
        report.created.append((row.line, info))
    return True


def _failed(
    report: ImportReport, error: RowError, on_error: Callable[[RowError], None] | None
) -> None:
    report.failed.append(error)
    if on_error is not None:
        on_error(error)


def reconcile(
    rows: Iterable[Row],
    recorded: Mapping[str, Recorded],
    report: ImportReport,
    on_error: Callable[[RowError], None] | None,
    *,
    update: bool = False,
) -> Plan:
    """Each row against what earlier runs made: to create, already there, or changed.

    Changed rows are updates with ``update``, else reported in ``report.changed``; a
    change ``PATCH`` cannot make (max_uses, expires_at) fails the row. The passes whose
    guest has no row any more go to ``report.gone``. Only counts are kept of the rows.
    """
    to_create = to_update = 0
    seen: set[str] = set()  # of the identities the results file lists: not one per row
    for row in rows:
        report.rows += 1
        if row.identity in recorded:
            seen.add(row.identity)
        verdict = _verdict(row, recorded)
        if verdict == "create":
            to_create += 1
        elif verdict == "there":
            report.skipped += 1
        elif isinstance(verdict, RowError):
            _failed(report, verdict, on_error)
        elif update:
            to_update += 1
        else:
            assert isinstance(verdict, _Update)
            fields = ", ".join(verdict.changes)
            code = verdict.recorded.code
            message = f"changed since pass {code} was made ({fields}): --update applies it"
            report.changed.append(RowError(row.line, message))
            if on_error is not None:
                on_error(report.changed[-1])
    report.gone = [r for identity, r in recorded.items() if identity not in seen]
    return Plan(to_create=to_create, to_update=to_update)


def _verdict(row: Row, recorded: Mapping[str, Recorded]) -> str | _Update | RowError:
    """``"create"``, ``"there"``, the update a changed row needs, or why it cannot be."""
    earlier = recorded.get(row.identity)
    if earlier is None:
        return "create"
    changes = {} if earlier.content == row.fingerprint() else _changes(row, earlier)
    fixed_differs = bool(earlier.fixed) and earlier.fixed != row.fixed_fingerprint()
    if not earlier.content or not (changes or fixed_differs):
        return "there"
    if fixed_differs:
        return RowError(
            row.line,
            f"max_uses or expires_at differ from pass {earlier.code}'s, which cannot "
            "be changed: revoke it and remove its line from the results file to remake it",
        )
    return _Update(row, earlier, changes)


def _changes(row: Row, earlier: Recorded) -> dict[str, Any]:
    """What ``PATCH /passes/{id}`` must send to make the pass match the row."""
    fields = {
        "holder_name": row.holder_name,
        "holder_email": row.holder_email,
        "data": dict(row.data),
    }
    return {name: fields[name] for name in earlier.differs(row)}


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

    Create ``n`` is sent at ``t(n) = max(t(n-1), t(n-per_min) + window_s) + each_s``
    (``t(-1)`` is now, the creates before it are the recent ones). That is a longest
    path: from now or from one recent create, through steps of one create (``each_s``)
    and steps of ``per_min`` creates (``window_s + each_s``). Along one path the time is
    linear in the number of long steps, so the longest takes all it can or none:
    O(per_min) per call, whatever the rows left (no walk over them).
    """
    if remaining <= 0:
        return 0.0
    limit = max(per_min, 1)
    last = remaining - 1  # the index of the last create
    long_step = window_s + each_s
    recent = [t for t in sent_at if t > now - window_s][-limit:]

    def longest(start: float, index: int, at_least: int) -> float:
        """From the create at ``index`` (or now at -1): all long steps, or the fewest."""
        most = (last - index) // limit
        if most < at_least:
            return float("-inf")
        return max(
            start + k * long_step + (last - index - k * limit) * each_s for k in {at_least, most}
        )

    # From now: the first step is a single create; long steps go from created ones.
    best = longest(now + each_s, 0, 0)
    for offset, sent in enumerate(reversed(recent), start=1):
        best = max(best, longest(sent, -offset, 1))
    return best - now
