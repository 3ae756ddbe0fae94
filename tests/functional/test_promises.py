"""Hostile tests of the promises in README "How a scan is decided" and "When the network or
the server fails", each test attacking one:

- ``test_kill_9_keeps_every_scan_read``: "Nothing scanned is lost". A scan still queued
  behind a slow one is a scan too: it has a journal row, and after a crash it is closed,
  never left undecided.
- ``test_interrupted_after_the_server_counted_is_not_a_flat_not_admitted`` and
  ``test_interrupted_while_queued_is_a_plain_interruption``: "A scan cut short ... is closed
  as Interrupted". Not when the server had already used the pass: then staff must hear that
  the pass may be used up (``replay_state = counted``), learnt by asking again with the
  scan's own Idempotency-Key, which costs no second use.
- ``test_sigterm_during_a_slow_validation_is_clean``: every exit path is clean, the scan in
  flight included, whether its answer is slow or never comes.
- ``test_outage_then_rescan_is_not_a_second_admission``: "Offline, a pass is admitted at
  most once until the server has confirmed that admission", and "no pass is used twice":
  the same person scanning again once the server is back is not let in a second time.
- ``test_slow_drip_answer_is_bounded``: ``api.timeout_s`` bounds a validation; a server
  that trickles its answer cannot hold the gate (one deadline per scan, retry included).
- ``test_relay_fault_on_an_admission_is_in_the_decision``: an admission the door did not
  follow says so in the JSON line and the journal.
- ``test_disk_full_never_admits_without_a_decision_row``: "no admission without a journal
  row", down to the last kilobyte of the journal's disk: below ``journal.min_free_kb`` no
  scan is sent, and admissions resume once the space is back.

Faults come from ``tests/support/fault_proxy.py`` between the kiosk and the project's own
server: ``slow:S`` (forwarded at once, so the server counts the use, and answered S seconds
later), ``hang`` (forwarded, never answered), ``drip:S`` (status and headers at once, the
body one byte every S seconds), ``drop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from scanner.config import ApiConfig, Config, GateConfig, JournalConfig, OfflineConfig
from scanner.models import Decision, RawScan
from scanner.relay import NoRelay
from scanner.runtime import Kiosk
from tests.conftest import LocalServer
from tests.functional.test_crash_replay import export
from tests.functional.test_faults import uses
from tests.functional.test_kiosk_headless import Kiosk as KioskProcess
from tests.functional.test_kiosk_headless import start_kiosk
from tests.support.disk import small_tmpfs
from tests.support.fault_proxy import FaultProxy
from tests.support.serial_sim import LcusSim, ScannerSim
from tests.support.waiting import eventually

Row = dict[str, Any]


# -- the server, its passes, the proxy in front of it ------------------------------------


@pytest.fixture
def proxy(local_server: LocalServer) -> Iterator[FaultProxy]:
    port = int(local_server.base_url.split(":")[2].split("/")[0])
    p = FaultProxy(upstream_port=port).start()
    yield p
    p.stop()


def _api(server: LocalServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.base_url + "/",
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=30,
    )


def fresh_passes(server: LocalServer, n: int) -> list[str]:
    """``n`` new single-use passes on the local server (straight to it, not via the proxy)."""
    with _api(server) as http:
        templates = http.get("templates", params={"limit": 1}).json()["data"]
        if not templates:
            server.seed()
            templates = http.get("templates", params={"limit": 1}).json()["data"]
        codes = []
        for i in range(n):
            answer = http.post(
                "passes",
                json={
                    "template_id": templates[0]["id"],
                    "holder_name": f"Guest {i}",
                    "max_uses": 1,
                },
            )
            answer.raise_for_status()
            codes.append(answer.json()["data"]["code"])
    return codes


def keys_sent(proxy: FaultProxy, scan_id: str) -> list[str]:
    """The fault applied to each validation the proxy saw with this Idempotency-Key."""
    return [s.fault for s in proxy.validations() if s.idempotency_key == scan_id]


def validations_of(proxy: FaultProxy, code: str) -> list[str | None]:
    """The Idempotency-Key of each validation of ``code`` the proxy saw."""
    return [s.idempotency_key for s in proxy.validations() if code.encode() in s.body]


# -- waiting -------------------------------------------------------------------------------


async def settle(condition: Callable[[], bool], within_s: float) -> bool:
    """Like ``eventually``, but a timeout is an answer (False), not a failure."""
    try:
        await eventually(condition, within_s)
    except TimeoutError:
        return False
    return True


def settled(condition: Callable[[], bool], within_s: float = 20.0) -> bool:
    """:func:`settle` for the tests that drive a kiosk process (no event loop of their own)."""
    return asyncio.run(settle(condition, within_s))


def wait_until(
    condition: Callable[[], bool], what: str | Callable[[], str], within_s: float = 20.0
) -> None:
    """Block until ``condition()`` holds; fail saying ``what`` (or what it returns then)."""
    if not settled(condition, within_s):
        raise AssertionError(f"not within {within_s} s: {what() if callable(what) else what}")


# -- the kiosk as a process ------------------------------------------------------------------


def gate_toml(
    tmp_path: Path,
    base_url: str,
    scanner: ScannerSim,
    *,
    timeout_s: float = 3.0,
    relay: LcusSim | None = None,
    journal: Path | None = None,
    journal_extra: str = "",
) -> Path:
    relay_table = (
        f'[relay]\ntype = "lcus"\nport = "{relay.link}"\nchannel = 1\npulse_ms = 100\n'
        if relay is not None
        else ""
    )
    path = tmp_path / "gate.toml"
    path.write_text(f"""
[api]
base_url = "{base_url}"
timeout_s = {timeout_s}

[gate]
name = "Promise gate"
repeat_ignore_s = 1.0
result_hold_s = 0.5

[[sources]]
type = "serial"
port = "{scanner.link}"

{relay_table}
[journal]
path = "{journal or tmp_path / "journal.sqlite3"}"
{journal_extra}
""")
    return path


@pytest.fixture
def launch(local_server: LocalServer) -> Iterator[Callable[[Path], KioskProcess]]:
    """Start the kiosk process on a config and wait until its scanner is open; every
    process started is ended (SIGTERM, then SIGKILL) when the test ends, whatever happened."""
    running: list[KioskProcess] = []

    def start(config: Path) -> KioskProcess:
        kiosk = start_kiosk(config, local_server)
        running.append(kiosk)
        kiosk.wait_stderr("ready", timeout=30)
        return kiosk

    yield start
    for kiosk in running:
        kiosk.finish()


def kill_9(kiosk: KioskProcess) -> None:
    os.kill(kiosk.proc.pid, signal.SIGKILL)
    kiosk.proc.wait(10)
    kiosk.finish()


def stop(kiosk: KioskProcess, within_s: float = 20.0) -> int:
    """SIGTERM; the exit status (the kiosk is killed and the test fails if it hangs)."""
    kiosk.proc.send_signal(signal.SIGTERM)
    try:
        status = kiosk.proc.wait(within_s)
    except subprocess.TimeoutExpired:
        kiosk.finish()
        raise AssertionError(f"the kiosk did not exit within {within_s} s of SIGTERM") from None
    kiosk.finish()
    return status


def stderr_text(kiosk: KioskProcess) -> str:
    """Everything the (finished) kiosk wrote on stderr."""
    while not kiosk.err.empty():
        kiosk.stderr_lines.append(kiosk.err.get_nowait())
    return "".join(kiosk.stderr_lines)


def journal_rows(path: Path) -> list[Row]:
    """The journal as it is on disk now (a running kiosk may be writing it)."""
    if not path.exists():
        return []
    conn = sqlite3.connect(path, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM scans ORDER BY id")]
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def row_of(rows: list[Row], code: str) -> Row:
    found = [r for r in rows if r["code"] == code]
    assert len(found) == 1, f"{code}: {len(found)} journal rows in {rows}"
    return found[0]


# -- the kiosk in-process ------------------------------------------------------------------


class RecordingRelay(NoRelay):
    """No board, but every time the contact closes is counted."""

    def __init__(self, pulse_ms: int) -> None:
        super().__init__(pulse_ms=pulse_ms)
        self.closed_at: list[float] = []

    def _switch(self, on: bool) -> None:
        if on:
            self.closed_at.append(time.monotonic())


@pytest.fixture
async def in_process(
    tmp_path: Path, local_server: LocalServer, proxy: FaultProxy
) -> AsyncIterator[Callable[..., Any]]:
    kiosks: list[Kiosk] = []

    async def build(*, policy: str, timeout_s: float, relay: RecordingRelay) -> Kiosk:
        config = Config(
            api=ApiConfig(base_url=proxy.base_url(), timeout_s=timeout_s, live_wait_s=1.5),
            gate=GateConfig(name="Promise gate", repeat_ignore_s=1.0),
            offline=OfflineConfig(policy=policy, sync_interval_s=3600),  # type: ignore[arg-type]
            journal=JournalConfig(path=tmp_path / "journal.sqlite3"),
        )
        kiosk = Kiosk(config, api_key=local_server.api_key, relay=relay, sources=[])
        kiosks.append(kiosk)
        await kiosk.start()
        await eventually(lambda: bool(proxy.seen), 10)  # the start-up probe went through
        return kiosk

    yield build
    for kiosk in kiosks:
        await kiosk.stop()


def submit(kiosk: Kiosk, code: str) -> asyncio.Task[Decision]:
    task = kiosk.gate.submit(RawScan(source="test", text=code, at=time.monotonic()))
    assert task is not None, f"{code} was ignored as a repeat"
    return task


# -- 1. kill -9 with scans queued -----------------------------------------------------------


def test_kill_9_keeps_every_scan_read(
    tmp_path: Path,
    local_server: LocalServer,
    proxy: FaultProxy,
    launch: Callable[[Path], KioskProcess],
) -> None:
    """Five scans read, the first waiting on a slow server: kill -9 loses none of them."""
    codes = fresh_passes(local_server, 5)
    scanner = ScannerSim(tmp_path / "scanner")
    config = gate_toml(tmp_path, proxy.base_url(), scanner)
    try:
        kiosk = launch(config)
        proxy.set_default("slow:1")  # the server counts at once, its answer takes 1 s
        for code in codes:
            scanner.scan(code, b"\r")
            time.sleep(0.1)
        time.sleep(0.4)  # 0.5 s after the last scan
        kill_9(kiosk)

        proxy.set_default("pass")
        kiosk = launch(config)  # closes what the crash left open
        settled(lambda: all(r["decision"] for r in journal_rows(tmp_path / "journal.sqlite3")))
        assert stop(kiosk) == 0
    finally:
        scanner.close()
    rows = export(config)
    journaled = [(r["code"], r["message"]) for r in rows]
    assert sorted(str(r["code"]) for r in rows) == sorted(codes), (
        f"every scan read must have a journal row; the journal has {journaled}"
    )
    assert all(r["decision"] for r in rows), f"undecided rows: {rows}"


# -- 2. kill -9 while a validation waits -----------------------------------------------------


def test_interrupted_after_the_server_counted_is_not_a_flat_not_admitted(
    tmp_path: Path,
    local_server: LocalServer,
    proxy: FaultProxy,
    launch: Callable[[Path], KioskProcess],
) -> None:
    """The server used the pass, the answer never came, the kiosk died: staff must know."""
    (code,) = fresh_passes(local_server, 1)
    scanner = ScannerSim(tmp_path / "scanner")
    config = gate_toml(tmp_path, proxy.base_url(), scanner, timeout_s=30.0)
    try:
        kiosk = launch(config)
        proxy.set_default("hang")  # forwarded (the server counts), never answered
        scanner.scan(code, b"\r")
        wait_until(lambda: uses(local_server, code) == 1, "the server counted the scan")
        kill_9(kiosk)

        proxy.set_default("pass")
        kiosk = launch(config)
        journal = tmp_path / "journal.sqlite3"
        try:
            wait_until(
                lambda: row_of(journal_rows(journal), code)["replay_state"] == "counted",
                lambda: (
                    f"the row of {code} says counted after the restart; "
                    f"it is {row_of(journal_rows(journal), code)}"
                ),
                within_s=30,
            )
        finally:
            stop(kiosk)
    finally:
        scanner.close()
    row = row_of(export(config), code)
    assert row["replay_state"] == "counted"
    assert row["decision"] == "rejected", "the door did not open"
    assert row["message"] != "Interrupted"
    assert "used" in row["message"].lower(), f"must say the pass may be used: {row['message']!r}"
    assert uses(local_server, code) == 1, "asking again must not use the pass again"
    sent = validations_of(proxy, code)
    assert len(sent) >= 2, "the kiosk asked the server again after the restart"
    assert set(sent) == {row["scan_id"]}, "every try carries the scan's own Idempotency-Key"


def test_interrupted_while_queued_is_a_plain_interruption(
    tmp_path: Path,
    local_server: LocalServer,
    proxy: FaultProxy,
    launch: Callable[[Path], KioskProcess],
) -> None:
    """A scan that never left the kiosk was not admitted and used nothing: "Interrupted"."""
    first, queued = fresh_passes(local_server, 2)
    scanner = ScannerSim(tmp_path / "scanner")
    config = gate_toml(tmp_path, proxy.base_url(), scanner, timeout_s=30.0)
    journal = tmp_path / "journal.sqlite3"
    try:
        kiosk = launch(config)
        proxy.set_default("hang")
        scanner.scan(first, b"\r")
        wait_until(lambda: bool(validations_of(proxy, first)), f"{first} is being validated")
        scanner.scan(queued, b"\r")  # waits behind the first
        wait_until(
            lambda: any(r["code"] == queued for r in journal_rows(journal)),
            f"the queued scan of {queued} has a journal row while {first} is in flight",
            within_s=10,
        )
        kill_9(kiosk)

        proxy.set_default("pass")
        kiosk = launch(config)
        settled(lambda: all(r["decision"] for r in journal_rows(journal)))
        stop(kiosk)
    finally:
        scanner.close()
    row = row_of(export(config), queued)
    assert (row["decision"], row["message"], row["replay_state"]) == (
        "rejected",
        "Interrupted",
        None,
    )
    assert uses(local_server, queued) == 0
    assert validations_of(proxy, queued) == [], "a queued scan is never sent after a crash"


# -- 3. SIGTERM during a slow validation ------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        "slow:3",  # answered within timeout_s
        "hang",  # never answered: the first try and its retry run out of time
    ],
)
def test_sigterm_during_a_slow_validation_is_clean(
    tmp_path: Path,
    local_server: LocalServer,
    proxy: FaultProxy,
    launch: Callable[[Path], KioskProcess],
    fault: str,
) -> None:
    """SIGTERM while a scan waits on the server: exit 0, no traceback, the scan decided."""
    (code,) = fresh_passes(local_server, 1)
    scanner = ScannerSim(tmp_path / "scanner")
    config = gate_toml(tmp_path, proxy.base_url(), scanner, timeout_s=5.0)
    try:
        kiosk = launch(config)
        proxy.set_default(fault)
        scanner.scan(code, b"\r")
        time.sleep(0.5)
        asked = time.monotonic()
        status = stop(kiosk, within_s=30)
        took = time.monotonic() - asked
    finally:
        scanner.close()
    err = stderr_text(kiosk)
    assert status == 0, err
    assert took < 2 * 5.0 + 2, f"SIGTERM took {took:.1f} s (a try and its retry: 10 s)"
    assert "Traceback" not in err, err
    rows = export(config)
    assert [r["code"] for r in rows] == [code]
    assert rows[0]["decision"], f"the scan in flight was left undecided: {rows[0]}"


# -- 4. an outage, then the same pass again -------------------------------------------------


async def test_outage_then_rescan_is_not_a_second_admission(
    tmp_path: Path,
    local_server: LocalServer,
    proxy: FaultProxy,
    in_process: Callable[..., Any],
) -> None:
    (code,) = fresh_passes(local_server, 1)
    relay = RecordingRelay(pulse_ms=50)
    kiosk: Kiosk = await in_process(policy="allow-known", timeout_s=0.5, relay=relay)
    await eventually(lambda: kiosk.catalog.last_sync is not None, 15)
    assert await kiosk.journal.cached_pass(code) is not None, "the offline copy knows the pass"

    proxy.set_default("drop")  # the uplink dies
    offline = await submit(kiosk, code)
    assert offline.accepted and offline.offline, offline
    # The replayer meets the outage too (twice, so it is backing off), when it tries then.
    tried = len(keys_sent(proxy, offline.scan.id))
    await settle(lambda: len(keys_sent(proxy, offline.scan.id)) >= tried + 2, within_s=8)
    proxy.set_default("pass")  # the uplink is back
    await asyncio.sleep(1.5)  # the same person, at the gate again
    again = await submit(kiosk, code)
    assert not again.accepted, f"admitted twice on one single-use pass: {again}"
    assert again.reason.value == "used", again
    journal = tmp_path / "journal.sqlite3"
    try:
        await eventually(lambda: replay_state(journal, offline.scan.id) == "done", 2.0)
    except TimeoutError:
        raise AssertionError(
            "the offline admission was not replayed within 2 s of the live answer: "
            f"{replay_state(journal, offline.scan.id)}"
        ) from None
    assert len(relay.closed_at) == 1, "exactly one admission opened the door"
    assert [d.accepted for d in (offline, again)] == [True, False]
    assert uses(local_server, code) == 1


def replay_state(journal: Path, scan_id: str) -> str | None:
    for row in journal_rows(journal):
        if row["scan_id"] == scan_id:
            state: str | None = row["replay_state"]
            return state
    raise AssertionError(f"no journal row for scan {scan_id}")


# -- 5. an answer that trickles in ------------------------------------------------------------


async def test_slow_drip_answer_is_bounded(
    local_server: LocalServer, proxy: FaultProxy, in_process: Callable[..., Any]
) -> None:
    (code,) = fresh_passes(local_server, 1)
    kiosk: Kiosk = await in_process(policy="deny", timeout_s=1.0, relay=RecordingRelay(50))
    proxy.set_default("drip:0.5")  # each read gets a byte well within timeout_s
    began = time.monotonic()
    try:
        decision = await asyncio.wait_for(submit(kiosk, code), 10)
    except TimeoutError:
        raise AssertionError("no decision within 10 s with api.timeout_s = 1") from None
    took = time.monotonic() - began
    assert not decision.accepted
    assert took < 5.0, f"the decision took {took:.1f} s"
    assert decision.reason.value == "offline", decision


# -- 6. the door does not follow an admission --------------------------------------------------


def test_relay_fault_on_an_admission_is_in_the_decision(
    tmp_path: Path, local_server: LocalServer, launch: Callable[[Path], KioskProcess]
) -> None:
    normal_code, fault_code = fresh_passes(local_server, 2)
    scanner = ScannerSim(tmp_path / "scanner")
    relay = LcusSim(tmp_path / "relay")
    config = gate_toml(tmp_path, local_server.base_url, scanner, relay=relay)
    try:
        kiosk = launch(config)
        assert relay.wait_for(lambda b: len(b.log.events) >= 1), "OFF at start"
        scanner.scan(normal_code, b"\r")
        normal = kiosk.decision(timeout=20)
        assert relay.wait_for(lambda b: len(b.pulses()) == 1), "the first admission's pulse"
        relay.unplug()  # the relay's cable is pulled
        scanner.scan(fault_code, b"\r")
        faulty = kiosk.decision(timeout=20)
        stop(kiosk)
    finally:
        scanner.close()
        relay.close()
    assert (faulty["code"], faulty["decision"]) == (fault_code, "accepted"), faulty
    assert isinstance(faulty.get("relay_fault"), str) and faulty["relay_fault"], faulty
    assert (normal["decision"], normal["code"]) == ("accepted", normal_code), normal
    assert "relay_fault" in normal and normal["relay_fault"] is None, normal
    rows = export(config)
    assert row_of(rows, fault_code).get("relay_fault"), row_of(rows, fault_code)
    assert not row_of(rows, normal_code).get("relay_fault"), row_of(rows, normal_code)


# -- 7. the journal's disk fills up ----------------------------------------------------------


MIN_FREE_KB = 256


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs of the test's own, unmounted afterwards."""
    with small_tmpfs(tmp_path / "disk") as disk:
        yield disk


class Filler:
    """A file that takes all the free space of a disk, and gives it back bit by bit."""

    def __init__(self, disk: Path) -> None:
        self.disk = disk
        self.path = disk / "filler"

    def free_kb(self) -> int:
        st = os.statvfs(self.disk)
        return st.f_bavail * st.f_frsize // 1024

    def fill(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for chunk in (65536, 4096, 512, 1):
                with contextlib.suppress(OSError):  # ENOSPC: on to smaller writes
                    while True:
                        os.write(fd, b"\0" * chunk)
        finally:
            os.close(fd)
        assert self.free_kb() == 0, f"{self.free_kb()} KB still free"

    def release(self, nbytes: int) -> None:
        os.truncate(self.path, max(self.path.stat().st_size - nbytes, 0))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def test_disk_full_never_admits_without_a_decision_row(
    tmp_path: Path,
    local_server: LocalServer,
    small_disk: Path,
    launch: Callable[[Path], KioskProcess],
) -> None:
    """The journal's disk fills up, then gives back 4 KB per scan, then recovers."""
    codes = fresh_passes(local_server, 12)
    starved, recovered = codes[:10], codes[10:]
    scanner = ScannerSim(tmp_path / "scanner")
    relay = LcusSim(tmp_path / "relay")
    config = gate_toml(
        tmp_path,
        local_server.base_url,
        scanner,
        relay=relay,
        journal=small_disk / "journal.sqlite3",
        journal_extra=f"min_free_kb = {MIN_FREE_KB}",
    )
    filler = Filler(small_disk)
    seen: list[tuple[str, int, Row]] = []  # (code, KB free before the scan, JSON line)

    def scan(kiosk: KioskProcess, code: str) -> None:
        free = filler.free_kb()
        scanner.scan(code, b"\r")
        seen.append((code, free, kiosk.decision(timeout=30)))
        admitted = sum(line["decision"] == "accepted" for _, _, line in seen)
        # The ON frame may still be in the pty when the JSON line arrives: wait for the
        # board to have seen every admission's ON (or time out and let the count below
        # fail), then for the contact to be OFF again.
        relay.wait_for(lambda b: len(b.on_events()) >= admitted, timeout=5)
        assert relay.wait_for(lambda b: not b.state[1]), "a pulse ends before the next scan"

    try:
        kiosk = launch(config)
        assert relay.wait_for(lambda b: len(b.log.events) >= 1), "OFF at start"
        filler.fill()
        for code in starved:
            scan(kiosk, code)
            filler.release(4096)
        filler.release(3 * MIN_FREE_KB * 1024)  # the reserve is back
        for code in recovered:
            scan(kiosk, code)
        stop(kiosk)
    finally:
        scanner.close()
        relay.close()
        filler.remove()

    for code, free, line in seen:
        assert line["code"] == code
        if free < MIN_FREE_KB:
            assert (line["decision"], line["reason"]) == ("rejected", "error"), (
                f"{code} with {free} KB free: {line}"
            )
            assert uses(local_server, code) == 0, f"{code} with {free} KB free used the pass"
    assert [line["decision"] for code, _, line in seen if code in recovered] == [
        "accepted",
        "accepted",
    ], f"admissions resume once the reserve is back: {seen[-2:]}"

    rows = export(config)
    admitted_lines = [line["code"] for _, _, line in seen if line["decision"] == "accepted"]
    admitted_rows = [str(r["code"]) for r in rows if r["decision"] == "accepted"]
    assert sorted(admitted_rows) == sorted(admitted_lines), (
        f"JSON lines admitted {admitted_lines}, the journal has {admitted_rows}"
    )
    assert len(relay.on_events()) == len(admitted_rows), "one ON frame per accepted row"
    for code in codes:
        if uses(local_server, code):
            kept = [r for r in rows if r["code"] == code]
            assert any(
                r["decision"] == "accepted" or r["replay_state"] == "counted" for r in kept
            ), f"the server used {code}, the journal does not say so: {kept}"
