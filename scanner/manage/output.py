"""What the manage commands print: plain tables for people, JSON for scripts, progress
on standard error.

Tables are plain aligned columns (no borders, no colour): they read the same in a
terminal, in ``less`` and through ``grep``. Every value a pass carries goes through
:func:`clean` first, so a holder name cannot move the cursor, clear the screen or
change the terminal's title. Progress bars go to standard error, and only when it is
a terminal; standard output carries the result alone.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, TextIO

from rich.cells import cell_len

from scanner.models import PassInfo, TemplateInfo, ValidationResult
from scanner.payload import printable

#: Widest a table cell gets (the full value is in ``--json``).
CELL_LIMIT = 48


def clean(value: object, limit: int = CELL_LIMIT) -> str:
    """One printable line: control characters escaped, whitespace runs folded, length capped."""
    if value is None:
        return ""
    return printable(" ".join(str(value).split()), limit)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Left-aligned columns two spaces apart, measured in terminal cells (wide characters)."""
    body = [[clean(cell) for cell in row] for row in rows]
    widths = [cell_len(h) for h in headers]
    for row in body:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], cell_len(cell))
    lines = []
    for row in [list(headers), *body]:
        cells = [cell + " " * (widths[i] - cell_len(cell)) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def key_values(pairs: Sequence[tuple[str, object]]) -> str:
    """``Label  value`` lines, labels aligned; for one pass or one template."""
    width = max((len(label) for label, _ in pairs), default=0)
    return "".join(f"{label.ljust(width)}  {clean(value, 400)}\n" for label, value in pairs)


def uses_text(info: PassInfo) -> str:
    used = "?" if info.uses_count is None else str(info.uses_count)
    return f"{used}/{'unlimited' if info.max_uses is None else info.max_uses}"


def data_text(data: object) -> str:
    if not data:
        return ""
    return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


PASS_HEADERS = ("CODE", "HOLDER", "EMAIL", "STATUS", "USES", "EXPIRES", "ID")


def pass_row(info: PassInfo) -> list[str]:
    return [
        info.code or "",
        info.holder_name or "",
        info.holder_email or "",
        info.status or "",
        uses_text(info),
        info.expires_at or "never",
        info.id or "",
    ]


def pass_fields(info: PassInfo) -> list[tuple[str, object]]:
    return [
        ("Code", info.code),
        ("Holder", info.holder_name),
        ("Email", info.holder_email),
        ("Status", info.status),
        ("Uses", uses_text(info)),
        ("Expires", info.expires_at or "never"),
        ("Template", info.template_id),
        ("Data", data_text(info.data)),
        ("Created", info.created_at),
        ("Updated", info.updated_at),
        ("ID", info.id),
    ]


TEMPLATE_HEADERS = ("ID", "NAME", "TYPE", "COLOR", "DESCRIPTION")


def template_row(info: TemplateInfo) -> list[str]:
    return [
        info.id or "",
        info.name or "",
        info.type or "",
        info.color or "",
        info.description or "",
    ]


def template_fields(info: TemplateInfo) -> list[tuple[str, object]]:
    return [
        ("Name", info.name),
        ("Type", info.type),
        ("Description", info.description),
        ("Color", info.color),
        ("Logo", info.logo_url),
        ("Fields", data_text(list(info.fields))),
        ("Settings", data_text(dict(info.settings))),
        ("Created", info.created_at),
        ("ID", info.id),
    ]


def validation_json(result: ValidationResult) -> dict[str, Any]:
    """``{"result", "message", "pass", "template"}``: the shape ``validate --json`` prints."""
    return {
        "result": result.outcome.value,
        "message": result.message,
        "pass": result.pass_.to_json() if result.pass_ is not None else None,
        "template": result.template.to_json() if result.template is not None else None,
    }


def validation_text(result: ValidationResult) -> str:
    head = f"{result.outcome.value.upper()}: {clean(result.message or result.result, 200)}\n"
    pairs: list[tuple[str, object]] = []
    if result.pass_ is not None:
        info = result.pass_
        pairs += [
            ("Code", info.code),
            ("Holder", info.holder_name),
            ("Status", info.status),
            ("Uses", uses_text(info)),
            ("Expires", info.expires_at or "never"),
        ]
    if result.template is not None:
        pairs.append(("Template", result.template.name))
    return head + (key_values(pairs) if pairs else "")


def dumps(value: object) -> str:
    """JSON for scripts: UTF-8 as is, indented, one trailing newline."""
    return json.dumps(value, ensure_ascii=False, indent=2) + "\n"


class Out:
    """Standard output for results, standard error for everything else.

    Args:
        stdout: where results go.
        stderr: where messages and progress go.
        prog: the prefix of every message line.
    """

    def __init__(
        self,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        *,
        prog: str = "passqr-scanner",
    ) -> None:
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        self.prog = prog
        self._progress: Progress | None = None

    @property
    def stderr_is_tty(self) -> bool:
        try:
            return self.stderr.isatty()
        except (AttributeError, ValueError):
            return False

    def say(self, text: str) -> None:
        """Results: written as given (callers end lines themselves)."""
        self.stdout.write(text)
        self.stdout.flush()

    def warn(self, message: str) -> None:
        """One line on standard error, above the progress bar if one is shown."""
        line = f"{self.prog}: {clean(message, 2000)}"
        if self._progress is not None:
            self._progress.log(line)
            return
        self.stderr.write(line + "\n")
        self.stderr.flush()

    def progress(
        self,
        label: str,
        total: int | None,
        *,
        plain_every_s: float | None = None,
    ) -> Progress:
        """A progress display on standard error (see :class:`Progress`)."""
        return Progress(self, label, total, plain_every_s=plain_every_s)


def duration_text(seconds: float) -> str:
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Progress:
    """A bar on standard error when it is a terminal; otherwise a plain line every
    ``plain_every_s`` seconds (None: nothing).

    Use as a context manager; :meth:`update` as work advances.
    """

    def __init__(
        self,
        out: Out,
        label: str,
        total: int | None,
        *,
        plain_every_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out = out
        self.label = label
        self.total = total
        self.plain_every_s = plain_every_s
        self._clock = clock
        self._last_plain = clock()
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> Progress:
        if self.out.stderr_is_tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                ProgressColumn,
                Task,
                TextColumn,
                TimeElapsedColumn,
            )
            from rich.progress import Progress as RichProgress
            from rich.text import Text

            clock = self._clock

            class TimeLeft(ProgressColumn):
                """``about 7m20s left``, counting down between updates (a wait for budget)."""

                def render(self, task: Task) -> Text:
                    deadline = task.fields.get("deadline")
                    if deadline is None:
                        return Text("")
                    return Text(f"about {duration_text(deadline - clock())} left")

            console = Console(file=self.out.stderr, highlight=False)
            self._bar = RichProgress(
                TextColumn("{task.description}", markup=False),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeLeft(),
                TextColumn("{task.fields[note]}", markup=False),
                console=console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, note="", deadline=None)
            self.out._progress = self
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.out._progress = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def update(
        self, done: int, *, total: int | None = None, note: str = "", eta_s: float | None = None
    ) -> None:
        """Progress so far; ``eta_s`` the seconds still needed, counted down on a terminal."""
        if total is not None:
            self.total = total
        now = self._clock()
        if self._bar is not None:
            deadline = None if eta_s is None else now + eta_s
            self._bar.update(
                self._task, completed=done, total=self.total, note=note, deadline=deadline
            )
            return
        if self.plain_every_s is None or now - self._last_plain < self.plain_every_s:
            return
        self._last_plain = now
        parts = [f"{self.label}: {done}" + (f"/{self.total}" if self.total is not None else "")]
        if eta_s is not None:
            parts.append(f"about {duration_text(eta_s)} left")
        if note:
            parts.append(note)
        self.out.warn(", ".join(parts))

    def log(self, line: str) -> None:
        if self._bar is not None:
            from rich.text import Text

            self._bar.console.print(Text(line), soft_wrap=True)
        else:
            self.out.stderr.write(line + "\n")
            self.out.stderr.flush()
