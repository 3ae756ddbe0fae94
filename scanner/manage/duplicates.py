"""The check that no guest appears twice in a guest list, on disk: memory flat in the rows.

Each row's identity is hashed (16 bytes, BLAKE2b) and looked up in, then added to, a
temporary SQLite database: a file made 0600 in a private directory (0700) under the
temporary directory (``$TMPDIR``, else ``/tmp``), both removed as soon as the database
is open, so nothing is left behind however the run ends (``kill -9`` included) and no
other process can open it by its name. New digests wait in a batch of at most
:data:`BATCH` (looked up there too) and go in together, in one transaction. The database
is a file, never memory, and SQLite's page cache is bounded (:data:`CACHE_KIB`): the
check takes the same memory for a hundred rows as for ten million; the disk holds about
28 bytes a row while the file is read (28 MB for a million rows).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
import tempfile
from pathlib import Path
from types import TracebackType

#: Digests held in memory before they are written (a few hundred kilobytes at most).
BATCH = 4096
#: SQLite's page cache for the check, in KiB (a larger one does not make it faster).
CACHE_KIB = 4096
DIGEST_SIZE = 16
"""Bytes of BLAKE2b per identity: two identities sharing one are never met in practice."""


class Duplicates:
    """The identities met so far, in a temporary database; a context manager.

    Raises:
        OSError: the temporary directory or the file cannot be made.
        sqlite3.Error: the database cannot be made there.
    """

    def __init__(self, *, batch: int = BATCH) -> None:
        self._batch = batch
        self._pending: dict[bytes, int] = {}
        directory = Path(tempfile.mkdtemp(prefix="passqr-import-"))  # mode 0700
        self.path = directory / "seen.sqlite3"
        """Where the database was made (gone once it is open: SQLite keeps the open file)."""
        try:
            self._db = _open(self.path)
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    def earlier(self, identity: str, line: int) -> int | None:
        """The line of an earlier row with this identity, or None after noting this one.

        Raises:
            sqlite3.Error: the database failed (the disk is full...).
        """
        digest = hashlib.blake2b(identity.encode(), digest_size=DIGEST_SIZE).digest()
        found = self._pending.get(digest)
        if found is None:
            hit = self._db.execute("SELECT line FROM seen WHERE digest = ?", (digest,)).fetchone()
            found = None if hit is None else int(hit[0])
        if found is not None:
            return found
        self._pending[digest] = line
        if len(self._pending) >= self._batch:
            self._flush()
        return None

    def _flush(self) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT INTO seen (digest, line) VALUES (?, ?)", self._pending.items())
        self._db.execute("COMMIT")
        self._pending.clear()

    def close(self) -> None:
        """Drop the database (its disk space is freed); again: nothing."""
        self._pending.clear()
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def __enter__(self) -> Duplicates:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _open(path: Path) -> sqlite3.Connection:
    """A new database at ``path`` (0600), for this connection alone: no journal, no fsync.

    Without a journal SQLite never needs the file's name again, so the caller may remove it.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    # One reading of the file uses it, but may be finished (closed) on another thread.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        for pragma in (
            "locking_mode = EXCLUSIVE",
            "journal_mode = OFF",
            "synchronous = OFF",
            "temp_store = FILE",
            "mmap_size = 0",
            f"cache_size = -{CACHE_KIB}",
        ):
            db.execute(f"PRAGMA {pragma}")
        db.execute(
            "CREATE TABLE seen (digest BLOB PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID"
        )
    except BaseException:
        db.close()
        raise
    return db
