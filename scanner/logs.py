"""Logging set-up: never onto the kiosk screen, never a secret."""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path

from scanner.errors import redact
from scanner.journald import journal_handler


class RedactingFilter(logging.Filter):
    """Scrubs anything shaped like an API key from every record, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup_logging(
    *, level: int = logging.INFO, file: Path | None = None, headless: bool = True
) -> None:
    """Logs to journald where there is one, else standard error, or ``file`` for the UI.

    The UI never logs to standard error (it is the kiosk's screen): journald when
    it runs, else ``file``. Headless logs go to journald when standard error is
    already the journal (under systemd), else to standard error.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    journal = journal_handler(headless=headless)
    if journal is not None:
        journal.addFilter(RedactingFilter())
        root.addHandler(journal)
    elif file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            handler = logging.handlers.RotatingFileHandler(
                file, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
            )
        except OSError:
            handler = logging.NullHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
    if journal is None:
        handler.setFormatter(logging.Formatter(_FORMAT))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
