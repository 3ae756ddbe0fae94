"""A guest list as a CSV file, read and checked whole before anything is sent.

Every bad row is reported with its line number; a good row becomes a :class:`Row`,
what ``POST /passes`` will get. Column names are forgiving (``Holder Name`` is
``holder_name``); columns without a meaning of their own go into the pass's data.
The same value checks serve ``passes create`` and ``passes update``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

from scanner.manage.duplicates import Duplicates

#: The columns with a meaning of their own; every other column goes into ``data``.
PASS_COLUMNS = ("holder_name", "holder_email", "max_uses", "expires_at")


MAX_NAME = 200
MAX_EMAIL = 254
MAX_USES = 1_000_000_000
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_UNLIMITED = {"", "unlimited", "none", "null", "-"}


class CsvFileError(Exception):
    """The file as a whole cannot be imported (unreadable, not UTF-8, no usable header)."""


@dataclass(frozen=True, kw_only=True)
class Row:
    """One guest, checked: what ``POST /passes`` will get."""

    line: int
    holder_name: str | None = None
    holder_email: str | None = None
    max_uses: int | None = None
    expires_at: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    key: str | None = None
    """The declared key column's value (``--key``), when there is one."""

    @property
    def identity(self) -> str:
        """Who the row is, whatever its place in the file: what resuming is keyed by.

        The ``--key`` column's value when one is declared, else the e-mail address
        (case aside), else a hash of the row's content (a changed row is then a new guest).
        """
        if self.key is not None:
            return "key:" + self.key
        if self.holder_email:
            return "email:" + self.holder_email.lower()
        return "row:" + self.fingerprint()

    def fingerprint(self) -> str:
        """A hash of what the pass is made of (the template aside)."""
        return _digest(self.body(""))

    def data_fingerprint(self) -> str:
        """A hash of the pass's data alone."""
        return _digest(dict(self.data))

    def fixed_fingerprint(self) -> str:
        """A hash of what ``PATCH /passes`` cannot change afterwards."""
        return _digest({"max_uses": self.max_uses, "expires_at": self.expires_at})

    def body(self, template_id: str) -> dict[str, Any]:
        """The request body (absent values left out, as the client sends it)."""
        body: dict[str, Any] = {"template_id": template_id}
        for key in PASS_COLUMNS:
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        if self.data:
            body["data"] = dict(self.data)
        return body


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, kw_only=True)
class CsvContent:
    rows: list[Row]
    errors: list[RowError]
    warnings: list[str]


def _key(header: str) -> str:
    return "_".join(header.strip().lower().replace("-", " ").split())


def parse_expiry(text: str, now: datetime | None = None) -> str:
    """An ISO 8601 date or date-time as PassQR's UTC timestamp (``...Z``).

    A date alone means the end of that day; a time without a zone is local time.

    Raises:
        ValueError: not a date, or already past.
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime.combine(day, dtime(23, 59, 59)).astimezone()
        else:
            moment = datetime.fromisoformat(text.replace("z", "Z").replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.astimezone()
    except ValueError:
        raise ValueError(
            f"expires_at {text!r} is not a date (2025-12-31) or date-time (2025-12-31T23:00:00Z)"
        ) from None
    if moment <= (now or datetime.now(UTC)):
        raise ValueError(f"expires_at {text!r} is already past")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _has_control(text: str) -> bool:
    return any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in text)


def name_value(text: str) -> str | None:
    """A holder name: trimmed, empty is none.

    Raises:
        ValueError: too long, or with control characters.
    """
    name = text.strip() or None
    if name is not None:
        if len(name) > MAX_NAME:
            raise ValueError(f"holder_name is longer than {MAX_NAME} characters")
        if _has_control(name):
            raise ValueError("holder_name contains control characters")
    return name


def email_value(text: str) -> str | None:
    """An e-mail address: trimmed, empty is none.

    Raises:
        ValueError: not an address.
    """
    email = text.strip() or None
    if email is not None and (len(email) > MAX_EMAIL or not _EMAIL_RE.match(email)):
        raise ValueError(f"holder_email {email!r} is not an e-mail address")
    return email


def uses_value(text: str) -> int | None:
    """``max_uses``: a whole number from 1; empty (or ``unlimited``) is unlimited.

    Raises:
        ValueError: anything else.
    """
    raw = text.strip()
    if raw.lower() in _UNLIMITED:
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_USES:
        raise ValueError(
            f"max_uses {raw!r} is not a whole number from 1 to {MAX_USES} "
            "(leave it empty for unlimited)"
        )
    return int(raw)


def parse_row(
    line: int, values: Mapping[str, str], now: datetime | None = None, *, key: str | None = None
) -> Row:
    """Check one row's values (keyed by the header's own spelling, already mapped).

    Args:
        key: the declared key column's name as mapped (``--key``), if any.

    Raises:
        ValueError: the first thing wrong with the row.
    """
    if not any(v.strip() for v in values.values()):
        raise ValueError("empty row")
    key_value = None
    if key is not None:
        key_value = values.get(key, "").strip()
        if not key_value:
            raise ValueError(f"no value in the key column {key!r}")
    raw_expiry = values.get("expires_at", "").strip()
    data = {k[5:] if k.startswith("data.") else k: v for k, v in values.items()}
    return Row(
        line=line,
        holder_name=name_value(values.get("holder_name", "")),
        holder_email=email_value(values.get("holder_email", "")),
        max_uses=uses_value(values.get("max_uses", "")),
        expires_at=parse_expiry(raw_expiry, now) if raw_expiry else None,
        data={k: v for k, v in data.items() if k not in PASS_COLUMNS and v != ""},
        key=key_value,
    )


def read_csv(path: Path, *, key: str | None = None, now: datetime | None = None) -> CsvContent:
    """Read and check a whole guest list: every good row, every bad row's error.

    For a big file, iterate :func:`open_csv` instead: one row at a time.

    Raises:
        CsvFileError: the file cannot be read, is not UTF-8, or has no usable header.
    """
    guests = open_csv(path, key=key, now=now)
    rows: list[Row] = []
    errors: list[RowError] = []
    for item in guests:
        (rows if isinstance(item, Row) else errors).append(item)  # type: ignore[arg-type]
    return CsvContent(rows=rows, errors=errors, warnings=guests.warnings)


@dataclass(frozen=True, kw_only=True)
class GuestList:
    """A guest list whose header was checked; iterating reads it row by row, afresh.

    Rows are numbered as a spreadsheet numbers them: by record, the header being row 1
    (a field with a line break in it does not shift the rows after it). A field the
    CSV reader cannot take (a quote in the wrong place, a field over 128 KiB) makes
    its row a bad one; reading goes on with the next line.
    """

    path: Path
    delimiter: str
    names: list[str]
    key_name: str | None
    warnings: list[str]
    now: datetime | None = None

    def __iter__(self) -> Iterator[Row | RowError]:
        """Each row, checked, or its error (a guest met before names the line it was on).

        Raises:
            CsvFileError: the file cannot be read any more, or is not UTF-8 further on;
                the check for guests listed twice cannot use its temporary database.
        """
        width = len(self.names)
        with _duplicates(self.path) as seen:
            for line, values in _records(self.path, self.delimiter, skip_header=True):
                if isinstance(values, csv.Error):
                    yield RowError(line, f"not valid CSV ({values})")
                elif len(values) > width and any(v.strip() for v in values[width:]):
                    yield RowError(line, f"{len(values)} fields, but the header names {width}")
                else:
                    names = self.names
                    mapped = {names[i]: v for i, v in enumerate(values[:width]) if names[i]}
                    try:
                        row = parse_row(line, mapped, self.now, key=self.key_name)
                        _check_once(seen, row, self.path)
                    except ValueError as err:
                        yield RowError(line, str(err))
                    else:
                        yield row


def open_csv(path: Path, *, key: str | None = None, now: datetime | None = None) -> GuestList:
    """Check a guest list's header (the rows are read when it is iterated).

    Raises:
        CsvFileError: the file cannot be read, is not UTF-8, is empty, or its first
            row is not a header (it names none of the known columns).
    """
    first = _first_line(path)
    delimiter = ","
    if "," not in first:
        delimiter = ";" if ";" in first else "\t" if "\t" in first else ","
    header = next((v for _, v in _records(path, delimiter, skip_header=False)), None)
    if header is None or header == []:
        raise CsvFileError(f"{path}: the file is empty")
    if isinstance(header, csv.Error):
        raise CsvFileError(f"{path}: line 1: {header}")
    names = _column_names(path, header)
    key_name = _key_column(path, names, key)
    if key_name is None and not any(_known(name) for name in names):
        raise CsvFileError(
            f"{path}: no header row: line 1 names none of the columns "
            f"({', '.join(PASS_COLUMNS)}, data.KEY); add one"
        )
    return GuestList(
        path=path,
        delimiter=delimiter,
        names=names,
        key_name=key_name,
        warnings=_column_warnings(names),
        now=now,
    )


def _known(name: str) -> bool:
    return name in PASS_COLUMNS or name.startswith("data.") or _key(name) in ("name", "email")


def _first_line(path: Path) -> str:
    """The file's first line (to tell its delimiter).

    Raises:
        CsvFileError: unreadable, or not UTF-8.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            return stream.readline(1 << 20)
    except UnicodeDecodeError as err:
        raise CsvFileError(f"{path}: not UTF-8 text (save it as 'CSV UTF-8')") from err
    except OSError as err:
        raise CsvFileError(f"{path}: cannot read ({err.strerror or err})") from err


def _records(
    path: Path, delimiter: str, *, skip_header: bool
) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """The file's records, numbered from 1 (the header); a CSV error in place of a record.

    Raises:
        CsvFileError: unreadable, or not UTF-8 further on.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            lines = iter(stream)
            number = 0
            while True:
                # After an error, a fresh reader goes on from the line after the bad one.
                reader = csv.reader(lines, delimiter=delimiter, strict=True)
                try:
                    for values in reader:
                        number += 1
                        if number > 1 or not skip_header:
                            yield number, values
                    return
                except csv.Error as err:
                    number += 1
                    yield number, err
    except UnicodeDecodeError as err:
        raise CsvFileError(f"{path}: not UTF-8 text (save it as 'CSV UTF-8')") from err
    except OSError as err:
        raise CsvFileError(f"{path}: cannot read ({err.strerror or err})") from err


@contextmanager
def _duplicates(path: Path) -> Iterator[Duplicates]:
    """The check that no guest appears twice, for one reading of the file.

    Raises:
        CsvFileError: its temporary database cannot be made.
    """
    try:
        seen = Duplicates()
    except (OSError, sqlite3.Error) as err:
        raise CsvFileError(f"{path}: cannot check for guests listed twice ({err})") from err
    with seen:
        yield seen


def _check_once(seen: Duplicates, row: Row, path: Path) -> None:
    """Note the row's guest.

    Raises:
        ValueError: an earlier row is the same guest.
        CsvFileError: the check's temporary database failed (the disk is full...).
    """
    try:
        earlier = seen.earlier(row.identity, row.line)
    except (OSError, sqlite3.Error) as err:
        raise CsvFileError(f"{path}: cannot check for guests listed twice ({err})") from err
    if earlier is not None:
        raise ValueError(f"the same guest as line {earlier} ({_shown_identity(row)})")


def _shown_identity(row: Row) -> str:
    if row.key is not None:
        return f"key {row.key!r}"
    if row.holder_email:
        return f"e-mail {row.holder_email!r}"
    return "every field the same"


def _key_column(path: Path, names: Sequence[str], key: str | None) -> str | None:
    """The mapped name of the ``--key`` column.

    Raises:
        CsvFileError: the header has no such column.
    """
    if key is None:
        return None
    wanted = _key(key.removeprefix("data."))
    for name in names:
        if name and _key(name.removeprefix("data.")) == wanted:
            return name
    raise CsvFileError(f"{path}: line 1: no column {key!r} (the --key column)")


def _column_names(path: Path, header: Sequence[str]) -> list[str]:
    """Known columns in their canonical spelling, ``data.`` columns and others as written."""
    names: list[str] = []
    data_keys: set[str] = set()
    for raw in header:
        key = _key(raw)
        if key in PASS_COLUMNS:
            name = key
            if name in names:
                raise CsvFileError(f"{path}: line 1: column {raw.strip()!r} appears twice")
        else:
            name = raw.strip()
            if not name:
                names.append("")
                continue
            if key in ("template_id",):
                raise CsvFileError(
                    f"{path}: line 1: column {raw.strip()!r}: the template comes from --template"
                )
            data_key = name[5:] if name.startswith("data.") else name
            if not data_key or data_key in data_keys:
                raise CsvFileError(f"{path}: line 1: data column {name!r} appears twice or empty")
            data_keys.add(data_key)
        names.append(name)
    if not any(names):
        raise CsvFileError(f"{path}: line 1: no column names")
    return names


def _column_warnings(names: list[str]) -> list[str]:
    out = []
    for name, meant in (("name", "holder_name"), ("email", "holder_email")):
        if meant not in names and any(_key(n) == name for n in names):
            out.append(f"column {name!r} goes into the pass's data; did you mean {meant!r}?")
    return out
