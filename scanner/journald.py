"""Logging straight into journald, in the standard library.

On the kiosk, standard error is the screen (tty1), so logs cannot go there;
journald keeps them with a priority and the code location, and
``journalctl -u passqr-scanner`` shows them. This speaks journald's native
protocol: one datagram per record on ``/run/systemd/journal/socket``, each
field ``KEY=value\\n``, or for a value with a newline (a traceback)
``KEY\\n`` + its length as 64-bit little-endian + the bytes + ``\\n``. A record
too big for a datagram goes in a sealed memfd passed over the socket, as
``sd_journal_send()`` does.

Secrets are scrubbed here too (:func:`scanner.errors.redact`), whatever
filters the caller set up. A journal that is gone or full drops records
silently (counted in :attr:`JournalHandler.dropped`): logging must never
write onto the kiosk's screen or stop the gate.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import struct
import sys
from collections.abc import Mapping

from scanner.errors import redact

JOURNAL_SOCKET = "/run/systemd/journal/socket"
IDENTIFIER = "passqr-scanner"

__all__ = [
    "IDENTIFIER",
    "JOURNAL_SOCKET",
    "JournalHandler",
    "encode_field",
    "journal_handler",
    "journald_available",
    "priority",
    "stderr_is_journal",
]


def journald_available(
    environ: Mapping[str, str] | None = None, socket_path: str = JOURNAL_SOCKET
) -> bool:
    """Whether journald can take our logs: started by systemd with output to the journal
    (``$JOURNAL_STREAM``), or its native socket exists."""
    env = os.environ if environ is None else environ
    return bool(env.get("JOURNAL_STREAM")) or os.path.exists(socket_path)


def stderr_is_journal(environ: Mapping[str, str] | None = None) -> bool:
    """Whether standard error itself goes to journald (``StandardError=journal``).

    systemd sets ``$JOURNAL_STREAM`` to ``device:inode`` of that stream; comparing
    it with our fd 2 tells it from an inherited variable (a shell started by a service).
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(x) for x in value.split(":"))
        st = os.fstat(2)
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def priority(levelno: int) -> int:
    """syslog priority of a logging level: 2 crit, 3 err, 4 warning, 6 info, 7 debug."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def encode_field(name: str, value: str | bytes) -> bytes:
    """One field in the native protocol; binary-safe for values with newlines."""
    key = name.encode("ascii")
    data = value.encode("utf-8", errors="replace") if isinstance(value, str) else value
    if b"\n" in data:
        return key + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return key + b"=" + data + b"\n"


def _field_name(name: str) -> str | None:
    """A journal field name from an ``extra`` key: uppercase, ``[A-Z0-9_]``, no leading ``_``."""
    clean = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in name.upper())
    clean = clean.lstrip("_")
    if not clean or clean[0].isdigit() or len(clean) > 64:
        return None
    return clean


class JournalHandler(logging.Handler):
    """A :class:`logging.Handler` that writes records to journald natively.

    Fields: ``MESSAGE`` (formatted, with the traceback), ``PRIORITY``,
    ``SYSLOG_IDENTIFIER``, ``LOGGER``, ``CODE_FILE``, ``CODE_LINE``, ``CODE_FUNC``,
    ``THREAD_NAME``, and any ``extra={"journal_fields": {"NAME": "value"}}``.

    Args:
        identifier: ``SYSLOG_IDENTIFIER`` (``journalctl -t passqr-scanner``).
        socket_path: journald's native socket (tests bind their own).
        level: the handler's threshold.
    """

    def __init__(
        self,
        identifier: str = IDENTIFIER,
        *,
        socket_path: str = JOURNAL_SOCKET,
        level: int = logging.NOTSET,
    ) -> None:
        super().__init__(level)
        self.identifier = identifier
        self.socket_path = socket_path
        self.dropped = 0
        self._sock: socket.socket | None = None

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            # A stalled journald must not stall the gate for long.
            sock.settimeout(1.0)
            self._sock = sock
        return self._sock

    def fields(self, record: logging.LogRecord) -> bytes:
        """The datagram for one record."""
        message = redact(self.format(record))
        parts = [
            encode_field("MESSAGE", message),
            encode_field("PRIORITY", str(priority(record.levelno))),
            encode_field("SYSLOG_IDENTIFIER", self.identifier),
            encode_field("LOGGER", record.name),
            encode_field("CODE_FILE", record.pathname),
            encode_field("CODE_LINE", str(record.lineno)),
            encode_field("CODE_FUNC", record.funcName),
        ]
        if record.threadName:
            parts.append(encode_field("THREAD_NAME", record.threadName))
        extra = getattr(record, "journal_fields", None)
        if isinstance(extra, Mapping):
            for key, value in extra.items():
                name = _field_name(str(key))
                if name is not None:
                    parts.append(encode_field(name, redact(str(value))))
        return b"".join(parts)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = self.fields(record)
        except Exception:  # noqa: BLE001 - a bad format string must not reach the screen
            self.dropped += 1
            return
        try:
            self._send(data)
        except OSError:
            self.dropped += 1

    def _send(self, data: bytes) -> None:
        sock = self._socket()
        try:
            sock.sendto(data, self.socket_path)
        except OSError as err:
            if err.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                raise
            self._send_memfd(sock, data)

    def _send_memfd(self, sock: socket.socket, data: bytes) -> None:
        """A record too big for one datagram: a sealed memfd, as journald expects."""
        fd = os.memfd_create("passqr-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            os.write(fd, data)
            seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            sock.sendmsg(
                [],
                [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("i", fd))],
                0,
                self.socket_path,
            )
        finally:
            os.close(fd)

    def close(self) -> None:
        self.acquire()
        try:
            if self._sock is not None:
                self._sock.close()
                self._sock = None
        finally:
            self.release()
        super().close()


def journal_handler(*, headless: bool) -> JournalHandler | None:
    """The handler to log through, when logs should go to journald; else None.

    - The UI: whenever journald is there (standard error is the screen).
    - Headless: only when standard error already goes to the journal (a systemd
      unit with ``StandardError=journal``); in a terminal or a script, standard
      error stays where the user sees it.
    """
    if sys.platform != "linux":
        return None
    if headless:
        return JournalHandler() if stderr_is_journal() else None
    return JournalHandler() if journald_available() else None
