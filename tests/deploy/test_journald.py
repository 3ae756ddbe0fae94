"""The journald handler against a datagram socket standing in for journald's: the bytes."""

from __future__ import annotations

import inspect
import logging
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from scanner.journald import (
    JournalHandler,
    encode_field,
    journal_handler,
    journald_available,
    priority,
    stderr_is_journal,
)


def parse(data: bytes) -> dict[str, bytes]:
    """journald's side of the native protocol."""
    fields: dict[str, bytes] = {}
    i = 0
    while i < len(data):
        newline = data.index(b"\n", i)
        line = data[i:newline]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            i = newline + 1
        else:
            key = line
            (size,) = struct.unpack("<Q", data[newline + 1 : newline + 9])
            value = data[newline + 9 : newline + 9 + size]
            assert data[newline + 9 + size : newline + 10 + size] == b"\n"
            i = newline + 10 + size
        fields[key.decode()] = value
    return fields


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[tuple[socket.socket, JournalHandler, logging.Logger]]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "journal.socket"
    sock.bind(str(path))
    sock.settimeout(2)
    handler = JournalHandler(socket_path=str(path))
    logger = logging.getLogger(f"passqr.test.journald.{tmp_path.name}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        yield sock, handler, logger
    finally:
        logger.removeHandler(handler)
        handler.close()
        sock.close()


def test_encoding_plain_and_binary_safe() -> None:
    assert encode_field("MESSAGE", "hello") == b"MESSAGE=hello\n"
    assert encode_field("MESSAGE", "a\nb") == b"MESSAGE\n" + struct.pack("<Q", 3) + b"a\nb\n"
    assert encode_field("MESSAGE", "caf\u00e9") == "MESSAGE=caf\u00e9\n".encode()


@pytest.mark.parametrize(
    ("level", "expected"),
    [(logging.CRITICAL, 2), (logging.ERROR, 3), (logging.WARNING, 4), (logging.INFO, 6), (5, 7)],
)
def test_priorities(level: int, expected: int) -> None:
    assert priority(level) == expected


def test_a_record_with_its_fields(
    journal: tuple[socket.socket, JournalHandler, logging.Logger],
) -> None:
    sock, _, logger = journal
    frame = inspect.currentframe()
    assert frame is not None
    line = frame.f_lineno + 1
    logger.warning("relay %s: %s", "lcus", "fault", extra={"journal_fields": {"gate": "North 1"}})

    fields = parse(sock.recv(65536))

    assert fields["MESSAGE"] == b"relay lcus: fault"
    assert fields["PRIORITY"] == b"4"
    assert fields["SYSLOG_IDENTIFIER"] == b"passqr-scanner"
    assert fields["LOGGER"] == logger.name.encode()
    assert fields["CODE_FILE"] == __file__.encode()
    assert fields["CODE_LINE"] == str(line).encode()
    assert fields["CODE_FUNC"] == b"test_a_record_with_its_fields"
    assert fields["GATE"] == b"North 1"


def test_a_traceback_travels_length_prefixed(
    journal: tuple[socket.socket, JournalHandler, logging.Logger],
) -> None:
    sock, _, logger = journal
    try:
        raise ValueError("bad frame")
    except ValueError:
        logger.exception("decoding failed")

    data = sock.recv(65536)
    fields = parse(data)

    assert b"MESSAGE\n" in data  # the binary form, not MESSAGE=
    message = fields["MESSAGE"].decode()
    assert message.startswith("decoding failed\nTraceback (most recent call last):")
    assert message.endswith("ValueError: bad frame")
    assert fields["PRIORITY"] == b"3"


def test_secrets_are_scrubbed(
    journal: tuple[socket.socket, JournalHandler, logging.Logger],
) -> None:
    sock, _, logger = journal
    key = "pqr_live_" + "k" * 32
    logger.error("rejected key %s", key, extra={"journal_fields": {"detail": key}})

    data = sock.recv(65536)

    assert key.encode() not in data
    assert parse(data)["MESSAGE"] == b"rejected key pqr_***"


def test_a_huge_record_goes_through_a_sealed_memfd(
    journal: tuple[socket.socket, JournalHandler, logging.Logger],
) -> None:
    sock, handler, logger = journal
    big = "x" * 400_000  # more than a datagram may carry

    logger.info("%s", big)

    msg, fds, _, _ = socket.recv_fds(sock, 65536, 1)
    assert msg == b""
    assert len(fds) == 1
    try:
        import fcntl

        seals = fcntl.fcntl(fds[0], fcntl.F_GET_SEALS)
        assert seals & fcntl.F_SEAL_WRITE
        os.lseek(fds[0], 0, os.SEEK_SET)
        data = b""
        while chunk := os.read(fds[0], 1 << 20):
            data += chunk
    finally:
        for fd in fds:
            os.close(fd)
    assert parse(data)["MESSAGE"] == big.encode()
    assert handler.dropped == 0


def test_no_journal_drops_silently(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    handler = JournalHandler(socket_path=str(tmp_path / "nothing-here"))
    logger = logging.getLogger("passqr.test.journald.gone")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.error("into the void")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert handler.dropped == 1
    captured = capsys.readouterr()
    assert captured.err == ""  # never onto the kiosk's screen


def test_availability(tmp_path: Path) -> None:
    sock_path = tmp_path / "journal.socket"
    assert not journald_available({}, str(sock_path))
    assert journald_available({"JOURNAL_STREAM": "8:1234"}, str(sock_path))
    sock_path.touch()
    assert journald_available({}, str(sock_path))


def test_stderr_is_journal_compares_the_stream() -> None:
    st = os.fstat(2)
    assert stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    assert not stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
    assert not stderr_is_journal({"JOURNAL_STREAM": "garbage"})
    assert not stderr_is_journal({})


def test_journal_handler_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    st = os.fstat(2)
    monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    handler = journal_handler(headless=True)
    assert isinstance(handler, JournalHandler)
    handler.close()
    monkeypatch.setenv("JOURNAL_STREAM", "0:0")
    assert journal_handler(headless=True) is None
