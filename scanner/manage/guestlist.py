"""A guest list as a CSV file, read and checked whole before anything is sent.

Every bad row is reported with its line number; a good row becomes a :class:`Row`,
what ``POST /passes`` will get. Column names are forgiving (``Holder Name`` is
``holder_name``); columns without a meaning of their own go into the pass's data.
The same value checks serve ``passes create`` and ``passes update``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path
from typing import Any

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
    """Read and check a guest list: every good row, every bad row's error.

    Line numbers are the file's own (the header is line 1), as a spreadsheet shows them.

    Raises:
        CsvFileError: the file cannot be read, is not UTF-8, or has no usable header.
    """
    try:
        with path.open(encoding="utf-8-sig", newline="") as stream:
            text = stream.read()
    except UnicodeDecodeError as err:
        raise CsvFileError(f"{path}: not UTF-8 text (save it as 'CSV UTF-8')") from err
    except OSError as err:
        raise CsvFileError(f"{path}: cannot read ({err.strerror or err})") from err
    first = text.split("\n", 1)[0]
    delimiter = ","
    if "," not in first:
        delimiter = ";" if ";" in first else "\t" if "\t" in first else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFileError(f"{path}: the file is empty") from None
    except csv.Error as err:
        raise CsvFileError(f"{path}: line 1: {err}") from err
    names = _column_names(path, header)
    warnings = _column_warnings(names)
    key_name = _key_column(path, names, key)
    rows: list[Row] = []
    errors: list[RowError] = []
    seen = _Seen()
    line = reader.line_num + 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            errors.append(RowError(line, f"not valid CSV ({err})"))
            break
        if len(values) > len(header) and any(v.strip() for v in values[len(header) :]):
            errors.append(
                RowError(line, f"{len(values)} fields, but the header names {len(header)}")
            )
        else:
            mapped = {names[i]: value for i, value in enumerate(values[: len(header)]) if names[i]}
            try:
                row = parse_row(line, mapped, now, key=key_name)
                seen.check(row)
            except ValueError as err:
                errors.append(RowError(line, str(err)))
            else:
                rows.append(row)
        line = reader.line_num + 1
    return CsvContent(rows=rows, errors=errors, warnings=warnings)


class _Seen:
    """The identities met so far (8-byte digests, so a million rows stay small)."""

    def __init__(self) -> None:
        self._lines: dict[bytes, int] = {}

    def check(self, row: Row) -> None:
        """Raises ValueError if an earlier row is the same guest."""
        digest = hashlib.blake2b(row.identity.encode(), digest_size=8).digest()
        earlier = self._lines.setdefault(digest, row.line)
        if earlier != row.line:
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
