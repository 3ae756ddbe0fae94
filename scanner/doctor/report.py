"""The doctor's report: one :class:`Check` per line, and how it is printed.

Plain text for a person at a Linux console (ASCII, no colours, wrapped, paths and
commands kept whole so they can be copied), or JSON for provisioning tools. Both
are redacted once more on the way out, and their control characters escaped
(``\\x1b``), whatever a check put in them: a server's words reach the details.

:class:`Check` and :class:`Status` live in the core (:mod:`scanner.checks`), where the
device kinds' probes make them too; they are re-exported here.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

from scanner.checks import Check, Status
from scanner.errors import redact
from scanner.payload import printable

__all__ = ["Check", "Status", "format_json", "format_text", "ready", "summary"]


def ready(checks: Sequence[Check]) -> bool:
    """The gate can decide scans: nothing FAILed."""
    return not any(c.status is Status.FAIL for c in checks)


def summary(checks: Sequence[Check]) -> str:
    failed = sum(c.status is Status.FAIL for c in checks)
    warned = sum(c.status is Status.WARN for c in checks)
    head = "READY" if not failed else "NOT READY"
    plural = "" if warned == 1 else "s"
    return f"{head}: {failed} failed, {warned} warning{plural}, {len(checks)} checks"


#: Line breaks and tabs are spaces, as wrapping makes them; other controls are escaped.
_SPACES = str.maketrans(dict.fromkeys("\t\n\v\f\r", " "))


def _shown(text: str) -> str:
    """Redacted, and no control character left to drive the terminal (escaped, not cut)."""
    clean = redact(text).translate(_SPACES)
    return printable(clean, len(clean))


def _wrap(text: str, width: int) -> list[str]:
    # Paths and commands stay whole: a console user copies them.
    return textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)


def format_text(checks: Sequence[Check], config_path: Path, width: int = 100) -> str:
    """The report as plain text for a Linux console: no colours, ASCII, wrapped to ``width``."""
    name_w = max([len(c.name) for c in checks] + [5]) + 2
    indent = " " * (6 + name_w)
    text_w = max(width - len(indent), 30)
    lines = [f"passqr-scanner doctor: {config_path}", ""]
    for check in checks:
        wrapped = _wrap(_shown(check.detail), text_w) or [""]
        lines.append(f"{check.status.value:<6}{check.name:<{name_w}}{wrapped[0]}")
        lines += [indent + rest for rest in wrapped[1:]]
        if check.fix and check.status in (Status.FAIL, Status.WARN):
            fix = _wrap("fix: " + _shown(check.fix), text_w)
            lines += [indent + part for part in fix]
    lines += ["", summary(checks)]
    return "\n".join(lines) + "\n"


def format_json(checks: Sequence[Check], config_path: Path) -> str:
    """The report for machines: ``{"ready", "config", "summary", "checks": [...]}``."""
    doc = {
        "ready": ready(checks),
        "config": str(config_path),
        "summary": summary(checks),
        "checks": [
            {
                "name": c.name,
                "status": c.status.value,
                "detail": _shown(c.detail),
                "fix": _shown(c.fix),
            }
            for c in checks
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
