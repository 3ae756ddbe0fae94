"""Reading a small file the configuration names, without trusting what it is.

A config or key path may be a FIFO (which would block the start), a device that never
ends (``/dev/zero``) or a huge file: only a regular file is read, opened without
blocking, and never more than its caller's limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["NotARegularFile", "read_small_file"]


class NotARegularFile(ValueError):
    """The path is a directory, a device, a FIFO or a socket."""


def read_small_file(path: Path, limit: int) -> tuple[bytes, int]:
    """At most ``limit + 1`` bytes of ``path`` (one more tells the caller it is too long),
    and the file's mode.

    Raises:
        OSError: it cannot be opened or read.
        NotARegularFile: it is not a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(str(path))
        return os.read(fd, limit + 1), mode
    finally:
        os.close(fd)
