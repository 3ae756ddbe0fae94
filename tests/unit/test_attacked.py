"""What an adversarial tester broke after issue 11 landed, each kept broken-proof.

A journal path pointing at someone else's file, a second kiosk on one journal, queued
scans sent during a stop, a terminating signal mid-pulse, a server answering gigabytes
or a gzip bomb or absurdly nested JSON, tabs and bidi overrides in CSV cells, a key
echoed without its prefix, a config path that never ends.
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from scanner.answers import MAX_ANSWER_BYTES
from scanner.api import PassQRClient
from scanner.config import GateConfig, load_config
from scanner.csvsafe import csv_field
from scanner.errors import BadAnswerError, ConfigError, redact, register_secret
from scanner.journal import Journal
from scanner.models import RawScan, Reason
from scanner.pipeline import Gate
from scanner.relay import NoRelay
from tests.support.fakes import FakeClient
from tests.support.serial_sim import LcusSim
from tests.support.waiting import eventually
from tests.unit.test_pipeline import valid

ROOT = Path(__file__).resolve().parents[2]


def _exists(path: str) -> bool:
    return os.path.exists(path)


# -- the journal's file --------------------------------------------------------------------


async def test_a_journal_path_at_a_device_is_refused_and_left_alone() -> None:
    before = os.stat("/dev/null")
    with pytest.raises(ConfigError, match="not a regular file"):
        await Journal(Path("/dev/null")).open()
    after = os.stat("/dev/null")
    assert stat.S_IMODE(after.st_mode) == stat.S_IMODE(before.st_mode)
    assert not _exists("/dev/null-journal")


async def test_a_journal_path_at_someone_elses_file_changes_nothing(tmp_path: Path) -> None:
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0:root:/root:/bin/bash\n")
    victim.chmod(0o644)
    with pytest.raises(ConfigError, match="cannot use the journal"):
        await Journal(victim).open()
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert victim.read_text() == "root:x:0:0:root:/root:/bin/bash\n"


async def test_one_journal_one_kiosk(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    first = Journal(path)
    await first.open()
    try:
        with pytest.raises(ConfigError, match="in use by another running kiosk"):
            await Journal(path).open()
        reader = Journal(path)
        reader.open_sync()  # an export reads beside a running kiosk
        reader.close_sync()
    finally:
        await first.close()
    second = Journal(path)
    await second.open()  # free again once the first has stopped
    await second.close()


# -- stopping --------------------------------------------------------------------------------


async def test_a_stop_sends_no_queued_scan(journal: Journal, relay: NoRelay) -> None:
    client = FakeClient({f"PASS-AAAA000{i}": valid() for i in range(4)})
    client.hold = asyncio.Event()
    gate = Gate(
        config=GateConfig(name="g", repeat_ignore_s=0.0),
        validator=client,
        journal=journal,
        relay=relay,
    )
    tasks = [gate.submit(RawScan(source="t", text=f"PASS-AAAA000{i}", at=0.0)) for i in range(4)]
    await eventually(lambda: bool(client.codes))
    draining = asyncio.create_task(gate.drain(grace_s=5))
    await asyncio.sleep(0.05)
    client.hold.set()  # the scan in flight gets its answer
    await draining
    decisions = [t.result() for t in tasks if t is not None]
    assert client.codes == ["PASS-AAAA0000"], "only the scan in flight reached the server"
    assert decisions[0].accepted
    assert [d.message for d in decisions[1:]] == ["Interrupted"] * 3
    assert all(d.reason is Reason.ERROR and not d.accepted for d in decisions[1:])


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGALRM])
def test_every_terminating_signal_leaves_the_relay_off(tmp_path: Path, sig: int) -> None:
    sim = LcusSim(tmp_path / "relay")
    config = tmp_path / "relay.toml"
    config.write_text(f'[relay]\ntype = "lcus"\nport = "{sim.link}"\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "scanner", "relay", "test", "--config", str(config)]
        + ["--pulse-ms", "30000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sim.wait_for(lambda b: b.state[1], timeout=10)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        assert sim.wait_for(lambda b: not b.state[1], timeout=2), f"ON after {sig!r}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        sim.close()
    assert proc.returncode == 0, err
    assert "interrupted" in out


# -- hostile answers ---------------------------------------------------------------------------


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def answer_with(head: bytes, body: bytes) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        try:
            writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body))
            for i in range(0, len(body), 1 << 16):
                writer.write(body[i : i + (1 << 16)])
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    return handle


async def validate_against(handler: Handler) -> BadAnswerError:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = PassQRClient(f"http://127.0.0.1:{port}/api/v1", "pqr_live_" + "k" * 40, timeout_s=10)
    try:
        with pytest.raises(BadAnswerError) as info:
            await client.validate("PASS-AAAA0001", idempotency_key="k1")
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    return info.value


JSON_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"


async def test_a_huge_answer_is_cut_off() -> None:
    body = b'{"data": "' + b"x" * (MAX_ANSWER_BYTES + 1000) + b'"}'
    err = await validate_against(await answer_with(JSON_HEAD, body))
    assert "larger than" in err.message


async def test_a_gzip_bomb_is_cut_off_without_inflating_it() -> None:
    bomb = gzip.compress(b"[" * (64 << 20), compresslevel=9)  # 64 MiB in ~64 KB
    head = JSON_HEAD + b"Content-Encoding: gzip\r\n"
    err = await validate_against(await answer_with(head, bomb))
    assert "larger than" in err.message


async def test_broken_gzip_and_absurd_nesting_are_bad_answers_not_tracebacks() -> None:
    head = JSON_HEAD + b"Content-Encoding: gzip\r\n"
    err = await validate_against(await answer_with(head, b"this is not gzip"))
    assert "cannot be decoded" in err.message
    err = await validate_against(await answer_with(JSON_HEAD, b"[" * 100_000 + b"]" * 100_000))
    assert "without a JSON object" in err.message


# -- outside text ----------------------------------------------------------------------------


def test_csv_cells_escape_tab_newline_and_bidi_overrides() -> None:
    assert csv_field("\t=1+1") == "'\\x09=1+1"
    assert csv_field("\n=1+1") == "\\x0a=1+1"
    assert csv_field("Ada\u202eecalovoL") == "Ada\\u202eecalovoL"
    text = io.StringIO()
    csv.writer(text).writerow([csv_field("a\nb"), csv_field("x\u2028y")])
    assert "\n" not in text.getvalue().rstrip("\r\n") and "\u2028" not in text.getvalue()


def test_a_key_echoed_without_its_prefix_is_redacted() -> None:
    key = "pqr_live_" + "Zq9" * 15
    register_secret(key)
    secret = key.removeprefix("pqr_live_")
    assert secret not in redact(f"Invalid API key {secret!r}")
    assert key not in redact(f"Bearer {key}")


def test_a_config_path_that_never_ends_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "gate.toml"
    os.mkfifo(fifo)
    started = time.monotonic()
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(ConfigError, match="cannot read config"):
            load_config(path)
    assert time.monotonic() - started < 5
    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_config(big)
