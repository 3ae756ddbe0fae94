"""The results file of an import: which guest got which pass, durable line by line.

Each line names the row by its identity (:attr:`Row.identity`: the ``--key`` value, the
e-mail address or a hash of the row), never by its line number alone, so a rerun finds
the guests it made whatever was sorted, inserted or deleted since. ``content`` and
``fixed`` are hashes of what the pass was made from: a row whose content differs is
*changed*. A later line for the same identity (an update) wins over an earlier one.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from scanner.csvsafe import SafeCsvWriter, csv_field
from scanner.manage.guestlist import CsvFileError, Row
from scanner.models import PassInfo
from scanner.payload import is_pass_code

#: The results file's columns.
RESULT_COLUMNS = (
    "key",
    "line",
    "code",
    "id",
    "status",
    "holder_name",
    "holder_email",
    "content",
    "fixed",
    "data",
)


@dataclass(frozen=True, kw_only=True)
class Recorded:
    """A pass an earlier run created (or updated), as the results file lists it."""

    identity: str
    line: int
    code: str
    id: str
    status: str
    holder_name: str
    holder_email: str
    content: str = ""
    """Hash of the row the pass was made from; empty when unknown (an older results file)."""
    fixed: str = ""
    data: str = ""

    def differs(self, row: Row) -> list[str]:
        """Which of what ``PATCH`` can change differ between the row and this pass.

        Names and addresses are compared as the file holds them (defused, escaped).
        """
        out = []
        for name, value, recorded in (
            ("holder_name", row.holder_name, self.holder_name),
            ("holder_email", row.holder_email, self.holder_email),
        ):
            if csv_field(value or "") != recorded:
                out.append(name)
        if self.data != row.data_fingerprint():
            out.append("data")
        return out


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
        self._writer: SafeCsvWriter | None = None

    def load(self) -> dict[str, Recorded]:
        """Guests already created (identity -> record); nothing if the file is absent.

        Raises:
            CsvFileError: the file exists but cannot be read.
        """
        try:
            text = self.path.read_text(encoding="utf-8-sig")  # a spreadsheet's BOM
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as err:
            raise CsvFileError(f"{self.path}: cannot read the results file ({err})") from err
        if text and not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # a line cut short by a crash
        out: dict[str, Recorded] = {}
        for record in csv.DictReader(io.StringIO(text, newline="")):
            found = _recorded(record)
            if found is not None:
                out[found.identity] = found
        return out

    def open(self) -> None:
        """Open for appending; a new file gets the header (durably, with its directory entry).

        Raises:
            OSError: the file cannot be created or written.
        """
        if self.path.exists():
            _drop_partial_line(self.path)
        new = not self.path.exists() or self.path.stat().st_size == 0
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        if new:
            os.fchmod(fd, 0o600)  # names and addresses: the owner's alone, whatever the umask
        stream = open(fd, "a", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        self._stream = stream
        self._writer = SafeCsvWriter(stream, lineterminator="\n")
        if new:
            self._writer.write_row(RESULT_COLUMNS)
        self._sync()
        if new:
            _fsync_dir(self.path.parent)

    def record(self, row: Row, info: PassInfo) -> None:
        """Append one created (or updated) pass; durable when this returns."""
        if self._writer is None:
            raise RuntimeError("results file is not open")
        self._writer.write_row(
            [
                row.identity,
                row.line,
                info.code or "",
                info.id or "",
                info.status or "",
                info.holder_name or "",
                info.holder_email or "",
                row.fingerprint(),
                row.fixed_fingerprint(),
                row.data_fingerprint(),
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


def _recorded(record: dict[str, str]) -> Recorded | None:
    """One line of the file, or None when it is not a usable record."""
    code = record.get("code") or ""
    if not is_pass_code(code) or not record.get("id"):
        return None
    email = record.get("holder_email") or ""
    # A file from before identities: its lines are known by their e-mail address.
    identity = record.get("key") or (f"email:{email.lower()}" if email else "")
    if not identity:
        return None
    try:
        line = int(record.get("line") or "0")
    except ValueError:
        line = 0
    return Recorded(
        identity=identity,
        line=line,
        code=code,
        id=record.get("id") or "",
        status=record.get("status") or "",
        holder_name=record.get("holder_name") or "",
        holder_email=email,
        content=record.get("content") or "",
        fixed=record.get("fixed") or "",
        data=record.get("data") or "",
    )


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
