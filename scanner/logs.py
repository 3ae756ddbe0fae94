"""Logging set-up: never onto the kiosk screen, never a secret."""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import sys
from pathlib import Path

from scanner.errors import redact
from scanner.journald import journal_handler
from scanner.payload import printable


class RedactingFilter(logging.Filter):
    """Scrubs anything shaped like an API key from every record, whoever logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """A log file (and each rotated one) readable by its owner only, whatever the umask:
    log lines carry holders' names and codes."""

    def _open(self) -> io.TextIOWrapper:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.fchmod(fd, 0o600)
        return io.TextIOWrapper(
            io.FileIO(fd, "a"), encoding=self.encoding, errors=self.errors, write_through=True
        )


_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: A log line is capped: outside text (a server's message, a payload) can be huge.
MAX_MESSAGE = 4000


class SafeFormatter(logging.Formatter):
    """Every handler's formatter: outside text cannot drive a terminal or hide a key.

    Server messages, payloads and names reach log lines; an ESC, OSC or BEL in
    them would rewrite the terminal of whoever reads the log (``journalctl``,
    ``tail``), and a newline would forge a second log line. The message is
    escaped (``\x1b``, ``\n``) and capped; the traceback keeps its newlines but
    not its control characters; the whole line, traceback included, is redacted.
    """

    def format(self, record: logging.LogRecord) -> str:
        saved = record.msg, record.args
        record.msg, record.args = printable(record.getMessage(), MAX_MESSAGE), None
        try:
            text = super().format(record)
        finally:
            record.msg, record.args = saved
        return redact("\n".join(printable(line, len(line)) for line in text.split("\n")))


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
        journal.setFormatter(SafeFormatter())
        journal.addFilter(RedactingFilter())
        root.addHandler(journal)
    elif file is not None:
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            handler = PrivateRotatingFileHandler(
                file, maxBytes=5_000_000, backupCount=3, encoding="utf-8"
            )
        except OSError:
            handler = logging.NullHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
    if journal is None:
        handler.setFormatter(SafeFormatter(_FORMAT))
        handler.addFilter(RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
