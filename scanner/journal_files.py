"""The journal's file on disk: a regular file, one kiosk at a time, private.

Checked before SQLite touches the path, so a wrong ``journal.path`` (a device,
someone else's file) is refused without a side effect on it.
"""

from __future__ import annotations

import fcntl
import os
import stat
from pathlib import Path

from scanner.errors import ConfigError


def refuse_non_file(path: Path) -> None:
    """``journal.path`` must be a regular file (or not exist yet): never a device, a FIFO
    or a directory, which SQLite would write a ``-journal`` beside or block on."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    except OSError as err:
        raise ConfigError(f"journal.path {path}: cannot open the journal ({err})") from err
    if not stat.S_ISREG(mode):
        raise ConfigError(f"journal.path {path}: not a regular file")


def lock_exclusively(path: Path, busy: str | None = None) -> int:
    """An exclusive lock beside the journal for the kiosk's lifetime: a second kiosk on
    the same journal would settle the first one's live scans as interrupted. (The hub
    takes one beside its database the same way; ``busy`` is then its message.)

    Raises:
        ConfigError: another process holds it.
    """
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_CREAT | os.O_RDWR | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        os.close(fd)
        raise ConfigError(
            busy or f"journal.path {path}: in use by another running kiosk (one journal per kiosk)"
        ) from err
    return fd


def make_private(path: Path) -> None:
    """The journal holds names and e-mails: 0600 whatever the umask (SQLite gives its
    -wal and -shm files the database file's mode). Only for a file that is a journal."""
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
