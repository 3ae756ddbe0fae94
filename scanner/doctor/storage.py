"""Where the kiosk keeps things: the journal's directory and file, and its logs.

Nothing of the kiosk's is written: the live journal is only read
(:meth:`scanner.journal.Journal.peek`; opening it read-write would settle the running
kiosk's scans in flight), writability is proved with a throw-away journal beside
it, and a missing directory or journal is left for the kiosk to create, so that
the service user owns it rather than whoever ran the doctor.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
import threading
from pathlib import Path

from scanner.config import Config
from scanner.doctor.report import Check, Status
from scanner.errors import ConfigError, ScannerError
from scanner.journal import Journal
from scanner.journald import JOURNAL_SOCKET, journald_available
from scanner.probes import blocking, user, user_name

__all__ = ["check_journal", "check_logs"]

#: The units' StateDirectory=: systemd creates it when the service starts.
STATE_DIRECTORY = "/var/lib/passqr-scanner"


def _remove_quietly(*paths: Path) -> None:
    for path in paths:
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass


def _missing_directory(directory: Path) -> Check:
    """The journal's directory is not there yet: who will create it, and can they?

    Raises:
        NotADirectoryError, PermissionError: nobody can create it.
    """
    if str(directory) == STATE_DIRECTORY:
        return Check(
            name="journal",
            status=Status.WARN,
            detail=f"{directory} does not exist yet",
            fix="the units create it (StateDirectory=passqr-scanner) when the service starts",
        )
    ancestor = next(p for p in directory.parents if p.exists())
    if directory.exists() or not ancestor.is_dir():
        blocker = directory if directory.exists() else ancestor
        raise NotADirectoryError(errno.ENOTDIR, "Not a directory", str(blocker))
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PermissionError(
            errno.EACCES, f"Permission denied: {user()} cannot create {directory}"
        )
    return Check(
        name="journal",
        status=Status.WARN,
        detail=f"{directory} does not exist yet; the kiosk creates it on first run",
        fix=f"create it for the service user: install -d -o passqr -g passqr {directory}",
    )


def _prove_writable(directory: Path) -> None:
    """A scratch file, then a throw-away journal, beside the real one; both removed.

    Raises:
        PermissionError, ConfigError: the directory cannot hold a journal.
    """
    try:
        handle, scratch = tempfile.mkstemp(prefix=".doctor-", dir=directory)
    except PermissionError as err:
        raise PermissionError(
            errno.EACCES, f"Permission denied: {user()} cannot write in {directory}"
        ) from err
    os.close(handle)
    os.unlink(scratch)
    probe = directory / f".doctor-{os.getpid()}-{threading.get_ident()}.sqlite3"
    journal = Journal(probe)
    try:
        journal.open_sync()
    finally:
        journal.close_sync()
        _remove_quietly(*(Path(str(probe) + suffix) for suffix in ("", "-wal", "-shm", "-journal")))


def _existing(path: Path) -> Check:
    """The live journal, read-only: how many scans, and whether the service may write it."""
    if not os.access(path, os.R_OK | os.W_OK):
        raise PermissionError(errno.EACCES, f"Permission denied: {user()} cannot write {path}")
    rows, last = Journal.peek(path)
    detail = f"{path}: {rows} scans" + (f", last at {last}" if last else "")
    file_uid, dir_uid = path.stat().st_uid, path.parent.stat().st_uid
    if file_uid != dir_uid:
        owner, dir_owner = user_name(file_uid), user_name(dir_uid)
        return Check(
            name="journal",
            status=Status.WARN,
            detail=f"{detail}; the file belongs to {owner}, its directory to {dir_owner}",
            fix=f"the service may not write it: chown {dir_owner}: {path}*",
        )
    return Check(name="journal", status=Status.OK, detail=detail)


def _journal_probe(path: Path) -> Check:
    """Prove the directory can hold a journal, and read the live one if there is one.

    Raises:
        ConfigError, OSError, sqlite3.Error: the directory or the journal is unusable.
    """
    directory = path.parent
    if not directory.is_dir():
        return _missing_directory(directory)
    _prove_writable(directory)
    if not path.exists():
        return Check(
            name="journal",
            status=Status.OK,
            detail=f"{directory} is writable; the journal will be created there on first run",
        )
    return _existing(path)


async def check_journal(config: Config) -> Check:
    path = config.journal.path
    try:
        return await blocking(lambda: _journal_probe(path))
    except (ConfigError, OSError, sqlite3.Error, TimeoutError) as err:
        if isinstance(err, ScannerError):
            text = err.message
        elif isinstance(err, OSError) and err.strerror:
            text = err.strerror + (f": {err.filename}" if err.filename else "")
        else:
            text = str(err) or type(err).__name__
        return Check(
            name="journal",
            status=Status.FAIL,
            detail=text,
            fix=f"make {path.parent} a directory the service user can write "
            f"(chown passqr: {path.parent}); under systemd keep journal.path in "
            f"{STATE_DIRECTORY}, which StateDirectory= gives to the service",
        )


def check_logs(config: Config) -> Check:
    if journald_available():
        return Check(
            name="logs",
            status=Status.OK,
            detail="to journald: journalctl -u passqr-scanner (by hand: journalctl -t "
            "passqr-scanner)",
        )
    file = config.journal.path.parent / "passqr-scanner.log"
    return Check(
        name="logs",
        status=Status.WARN,
        detail=f"journald is not running here ({JOURNAL_SOCKET} missing): the kiosk logs to "
        f"{file}, headless mode to standard error",
        fix="run the kiosk under systemd (docs/deploy.md) so its logs are kept and rotated",
    )
