"""``passes import``: a CSV guest list into passes, within the write budget; resumable."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scanner.budget import Bucket
from scanner.errors import NotFoundError
from scanner.manage import output

if TYPE_CHECKING:
    from scanner.manage.guestlist import GuestList, Row, RowError
    from scanner.manage.importer import ImportReport, Plan, Recorded, ResultsFile
from scanner.manage.session import EXIT_FAILED, EXIT_OK, Session, UsageError, emit_json


async def passes_import(s: Session, args: argparse.Namespace) -> int:
    """Create passes from a CSV guest list, within the write budget; resumable.

    The file is read twice, row by row, never held whole: once to check it and count
    what is to be done (every bad or changed row said up front), once to send.
    """
    from scanner.manage import guestlist, importer

    source = Path(args.file)
    results_path = Path(args.results) if args.results else importer.default_results_path(source)
    report = importer.ImportReport()
    try:
        guests, recorded = await asyncio.to_thread(_read_import, source, results_path, args.key)
        for warning in guests.warnings:
            s.out.warn(f"{source.name}: {warning}")
        errors, plan = await asyncio.to_thread(_check, s, args, guests, recorded, report)
    except guestlist.CsvFileError as err:
        s.out.warn(str(err))
        return EXIT_FAILED
    if args.dry_run:
        return _dry_run(s, args, report, plan, errors, results_path)
    results = importer.ResultsFile(results_path)
    if not await _ready(s, args.template, results):
        return EXIT_FAILED
    await _send(s, args, guests, recorded, results, report, plan, errors)
    if report.stopped:
        s.out.warn(f"stopped at {report.stopped}")
    failed = bool(errors or report.failed or report.stopped or report.changed)
    return EXIT_FAILED if failed else EXIT_OK


def _check(
    s: Session,
    args: argparse.Namespace,
    guests: GuestList,
    recorded: Mapping[str, Recorded],
    report: ImportReport,
) -> tuple[list[RowError], Plan]:
    """The first reading: bad rows said and kept, good ones reconciled and counted.

    Raises:
        CsvFileError: the file cannot be read further on.
    """
    from scanner.manage.guestlist import RowError
    from scanner.manage.importer import reconcile

    errors: list[RowError] = []

    def say(error: RowError) -> None:
        s.out.warn(f"{guests.path.name}: {error}")

    def good_rows() -> Iterator[Row]:
        for item in guests:
            if isinstance(item, RowError):
                errors.append(item)
                say(item)
            else:
                yield item

    plan = reconcile(good_rows(), recorded, report, say, update=args.update)
    return errors, plan


def _dry_run(
    s: Session,
    args: argparse.Namespace,
    report: ImportReport,
    plan: Plan,
    errors: Sequence[RowError],
    results_path: Path,
) -> int:
    """``--dry-run``: what a run would do, nothing sent."""
    more = "".join(
        f", {n} {what}"
        for n, what in (
            (plan.to_update, "to update"),
            (len(report.changed), "changed"),
            (len(report.failed), "that cannot be updated"),
        )
        if n
    )
    s.out.warn(
        f"{report.rows} good rows ({report.skipped} already created, "
        f"{plan.to_create} to create{more}), {len(errors)} bad; nothing sent"
    )
    _say_gone(s, report)
    if args.json:
        emit_json(s.out, report.to_json(results_path, errors))
    return EXIT_FAILED if errors or report.changed or report.failed else EXIT_OK


def _say_gone(s: Session, report: ImportReport) -> None:
    if report.gone:
        codes = ", ".join(r.code for r in report.gone[:10]) + (
            ", ..." if len(report.gone) > 10 else ""
        )
        s.out.warn(
            f"{len(report.gone)} passes of the results file have no row in the file any more "
            f"({codes}): left as they are (revoke them with 'passes revoke' if need be)"
        )


async def _ready(s: Session, template_id: str, results: ResultsFile) -> bool:
    """The template exists and the results file can be written: said when not."""
    client = s.client
    try:
        await s.remote.call(Bucket.READ, lambda: client.get_template(template_id))
    except NotFoundError:
        s.out.warn(f"template {template_id} not found: nothing imported")
        return False
    try:
        results.open()
    except OSError as err:
        s.out.warn(f"{results.path}: cannot write the results file ({err.strerror or err})")
        return False
    return True


async def _send(
    s: Session,
    args: argparse.Namespace,
    guests: GuestList,
    recorded: Mapping[str, Recorded],
    results: ResultsFile,
    report: ImportReport,
    plan: Plan,
    errors: Sequence[RowError],
) -> None:
    """Create the rows with a progress bar; the summary is said however the run ends."""
    from scanner.manage import importer
    from scanner.manage.guestlist import Row

    per_min = s.budget.limits.write_per_min
    bar = s.out.progress("Importing", None, plain_every_s=30.0)

    def progress(report: ImportReport, left: int) -> None:
        done = len(report.created) + len(report.replayed) + len(report.updated)
        done += len(report.failed)
        eta = importer.eta_s(left, sent_at=report.sent_at, now=time.monotonic(), per_min=per_min)
        failed = f"{len(report.failed)} failed" if report.failed else ""
        bar.update(done, total=done + left, note=failed, eta_s=eta)

    def row_failed(error: RowError) -> None:
        s.out.warn(f"{guests.path.name}: {error}")

    interrupted = False
    try:
        with bar:
            await importer.import_rows(
                s.remote,
                (item for item in guests if isinstance(item, Row)),
                template_id=args.template,
                results=results,
                recorded=recorded,
                report=report,
                on_progress=progress,
                on_error=row_failed,
                stop_after=args.max,
                update=args.update,
                plan=plan,
            )
    except asyncio.CancelledError:
        interrupted = True
        raise
    finally:
        results.close()
        _import_summary(s, args, report, errors, results.path, interrupted=interrupted)


def _read_import(source: Path, results_path: Path, key: str | None) -> tuple[Any, Any]:
    """The guest list (its header checked) and what earlier runs created (blocking reads).

    Raises:
        UsageError: the results file would overwrite the input.
        CsvFileError: either file cannot be read.
    """
    from scanner.manage import guestlist, importer

    if os.path.realpath(results_path) == os.path.realpath(source) or _same_file(
        results_path, source
    ):
        raise UsageError("--results must not be the file being imported")
    return guestlist.open_csv(source, key=key), importer.ResultsFile(results_path).load()


def _same_file(a: Path, b: Path) -> bool:
    """The same file under two names (a hard link)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _import_summary(
    s: Session,
    args: argparse.Namespace,
    report: Any,
    bad_rows: Sequence[Any],
    results_path: Path,
    *,
    interrupted: bool,
) -> None:
    created = len(report.created)
    minutes = report.elapsed_s / 60
    # A rate over a few seconds says nothing (60 at once, then the budget): from a minute on.
    rate = f", {created / minutes:.0f}/min" if created and minutes >= 1 else ""
    parts = [f"created {created} passes in {output.duration_text(report.elapsed_s)}{rate}"]
    if report.skipped:
        parts.append(f"{report.skipped} created by an earlier run")
    if report.replayed:
        parts.append(f"{len(report.replayed)} made by an earlier run that could not record them")
    if report.updated:
        parts.append(f"{len(report.updated)} updated")
    if report.changed:
        parts.append(f"{len(report.changed)} changed rows left as they are (--update applies)")
    failed = [*bad_rows, *report.failed]
    if failed:
        lines = ", ".join(str(e.line) for e in failed[:20]) + (", ..." if len(failed) > 20 else "")
        parts.append(f"{len(failed)} rows failed (lines {lines})")
    if report.held_back:
        parts.append(f"{report.held_back} left for the next run (--max)")
    s.out.warn("; ".join(parts) + f"; results in {results_path}")
    _say_gone(s, report)
    if interrupted or report.stopped or report.held_back:
        s.out.warn("run the same command again to continue: rows already created are skipped")
    if interrupted:
        return
    if args.json:
        emit_json(s.out, report.to_json(results_path, bad_rows))
    elif report.created:
        s.out.say(
            output.table(
                ("LINE", "CODE", "HOLDER", "EMAIL", "ID"),
                [
                    [str(line), p.code or "", p.holder_name or "", p.holder_email or "", p.id or ""]
                    for line, p in report.created
                ],
            )
        )
