"""Log lines carry outside text: it must not drive a terminal, forge lines or leak a key."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner import logs
from scanner.journald import JournalHandler

KEY = "pqr_live_" + "S" * 40
HOSTILE = "server says \x1b]0;owned\x07\x1b[2J\u009b31m\nFAKE ERROR line"


@pytest.fixture
def log_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(logs, "journal_handler", lambda headless: None)
    path = tmp_path / "logs" / "kiosk.log"
    old = os.umask(0o022)
    try:
        logs.setup_logging(file=path, headless=False)
        yield path
    finally:
        os.umask(old)
        for handler in list(logging.getLogger().handlers):
            handler.close()
            logging.getLogger().removeHandler(handler)


def test_outside_text_is_escaped_and_keys_are_redacted_in_tracebacks(log_file: Path) -> None:
    log = logging.getLogger("scanner.test")
    log.warning("validation failed: %s", HOSTILE)
    try:
        raise RuntimeError(f"boom with {KEY} inside")
    except RuntimeError:
        log.exception("crashed")
    text = log_file.read_text()
    assert "\x1b" not in text and "\x07" not in text and "\u009b" not in text
    assert "\\x1b]0;owned\\x07" in text
    assert "\\x0aFAKE ERROR line" in text, "a newline in a message cannot forge a line"
    assert KEY not in text, "redacted in the traceback too"
    assert "Traceback (most recent call last):\n" in text, "tracebacks keep their lines"


def test_log_files_are_private_whatever_the_umask(log_file: Path) -> None:
    logging.getLogger("scanner.test").warning("Ada Lovelace admitted")
    assert log_file.stat().st_mode & 0o777 == 0o600
    handler = next(
        h for h in logging.getLogger().handlers if isinstance(h, logs.PrivateRotatingFileHandler)
    )
    handler.doRollover()
    logging.getLogger("scanner.test").warning("after rotation")
    for path in log_file.parent.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path.name


def test_the_journald_handler_redacts_the_traceback() -> None:
    handler = JournalHandler(socket_path="/nonexistent")
    handler.setFormatter(logs.SafeFormatter())
    try:
        raise ValueError(KEY)
    except ValueError as err:
        record = logging.LogRecord(
            "scanner.x", logging.ERROR, __file__, 1, HOSTILE, None, (type(err), err, None), "f"
        )
    data = handler.fields(record)
    assert KEY.encode() not in data
    assert b"\x1b" not in data and b"\x07" not in data
