"""Opening a database file and the two kinds of transaction every query runs in.

Every write runs inside `BEGIN IMMEDIATE`, so two servers sharing a database
file (two processes, two connections) still serialise their writes; reads that
must agree with each other (a count and its page) share one `BEGIN`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scanner.server.errors import StoreOpenError

logger = logging.getLogger(__name__)


def prepare_path(path: Path) -> None:
    """Create the database's parent directories (the last one 0700) and the file (0600).

    The database holds API keys and pass holders' names and e-mails: a new file is
    readable by its owner only whatever the umask (SQLite gives its -wal and -shm
    files the database's mode); an existing file or directory keeps its own.

    Raises:
        StoreOpenError: they cannot be created, or `path` is a directory.
    """
    directory = path.parent
    try:
        if not directory.is_dir():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)
    except OSError as err:
        raise StoreOpenError(f"cannot create directory {directory}: {err.strerror or err}") from err
    if path.is_dir():
        raise StoreOpenError(f"cannot open database {path}: it is a directory")
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        return
    except OSError as err:
        raise StoreOpenError(f"cannot create database {path}: {err.strerror or err}") from err
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def connect(path: Path) -> sqlite3.Connection:
    """An autocommit connection usable from any one thread at a time.

    Raises:
        StoreOpenError: SQLite cannot open `path`.
    """
    try:
        return sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=5.0
        )
    except sqlite3.Error as err:
        raise StoreOpenError(f"cannot open database {path}: {err}") from err


@contextmanager
def setting_up(conn: sqlite3.Connection, path: Path) -> Iterator[None]:
    """Close `conn` when its set-up fails, and report that as a one-line `StoreOpenError`."""
    try:
        yield
    except sqlite3.Error as err:
        conn.close()
        raise StoreOpenError(f"cannot open database {path}: {err}") from err
    except StoreOpenError:
        conn.close()
        raise


def set_up_writer(conn: sqlite3.Connection, path: Path) -> None:
    """WAL (so readers never wait for a writer), NORMAL sync, foreign keys enforced."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        logger.warning("SQLite refused WAL mode for %s (using %s)", path, mode)
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction holding the database's write lock from the start."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def snapshot(conn: sqlite3.Connection) -> Iterator[None]:
    """A read transaction, so a count and a page come from the same state."""
    conn.execute("BEGIN")
    try:
        yield
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
