"""The venue hub under load: gates at once, and the upstream budget kept.

    10 gates (one hub gate key and one connection each)
        --> hub (`passqr-scanner hub run`, a process, its defaults)
        --> upstream PassQR (`passqr-scanner server run`, a process, rate limits ON:
            validate 60/min, read 120/min, 60 s window)

The passes are written into the upstream's database before it starts (no write budget
spent). Once the hub's first sync is done, the gates post validations in rounds: every
pass is scanned at two gates at the same moment (a barrier starts each round), then
once more at a third. Single-use passes (max_uses 1) must be admitted exactly once, the
two-use ones exactly twice; every scan must be answered 200 at once (the hub never
turns a live scan away because of the upstream budget). Then the queue drains inside
the budget, and the upstream's own database must show each pass used as often as the
hub admitted it, with at most 60 validations in any 60 s window (its scan log, second
resolution) and no 429 in its access log. For comparison, the same rounds are then
sent to the upstream directly (a fresh copy of its database, rate limits off).

Prints the latencies (p50/p95/p99/max), the checks and one PASS/FAIL line; exits 1 on
any failed check. The default run takes about 5 minutes, most of it the drain (240
admissions at about 51 a minute, the hub's background share).

    .venv/bin/python benchmarks/bench_hub.py [--passes 200] [--multi 20] [--gates 10]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from machine import machine  # noqa: E402 - benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scanner.server.store import DEFAULT_BUSINESS, Store  # noqa: E402

PY = sys.executable
#: The upstream's validation limit and window (the local server's defaults, PassQR's).
UPSTREAM_VALIDATE_PER_MIN = 60
UPSTREAM_WINDOW_S = 60
_ACCESS = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ uvicorn\.access: \S+ - "
    r'"(\w+) (\S+) HTTP/[\d.]+" (\d{3})'
)


@dataclass(frozen=True)
class Pass:
    id: str
    code: str
    max_uses: int


@dataclass
class Scan:
    gate: int
    code: str
    status: int
    result: str
    latency_ms: float


@dataclass
class Run:
    """What the gates saw."""

    scans: list[Scan] = field(default_factory=list)
    elapsed_s: float = 0.0
    errors: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def latency_line(run: Run) -> str:
    ms = [s.latency_ms for s in run.scans]
    return f"p50 {pct(ms, 50):.2f}  p95 {pct(ms, 95):.2f}  p99 {pct(ms, 99):.2f}  max {max(ms):.2f}"


# -- the upstream's passes, before it starts -------------------------------------------


def seed_upstream(db: Path, singles: int, multis: int) -> tuple[str, list[Pass]]:
    """The venue's key, a template and its passes, written straight into the database."""
    template = {
        "name": "Bench venue",
        "type": "event",
        "description": None,
        "color": None,
        "logo_url": None,
        "fields": [],
        "settings": {},
        "max_uses": None,
    }
    store = Store.open(db)
    try:
        key = store.create_key(name="venue", plan="pro")

        def seed(s: Store) -> tuple[int, Any]:
            template_id = s.create_template(template, DEFAULT_BUSINESS)["id"]
            made = []
            for i in range(singles + multis):
                uses = 1 if i < singles else 2
                record = s.create_pass(
                    business=DEFAULT_BUSINESS,
                    template_id=template_id,
                    holder_name=f"Guest {i}",
                    holder_email=None,
                    expires_at=None,
                    data={},
                    max_uses=uses,
                )
                made.append([record["id"], record["code"], uses])
            return 200, made

        answer = store.execute(seed, None)
    finally:
        store.close()
    return key, [Pass(*row) for row in json.loads(answer.body)]


def add_keys(db: Path, count: int) -> list[str]:
    store = Store.open(db)
    try:
        return [store.create_key(name=f"direct-{i}", plan="pro") for i in range(count)]
    finally:
        store.close()


# -- processes ---------------------------------------------------------------------------


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [PY, "-m", "scanner", *args],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


def wait_ready(url: str, key: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: exited with {proc.returncode}\n{log.read_text()}")
        try:
            if httpx.get(url, headers={"Authorization": f"Bearer {key}"}, timeout=5).is_success:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url}: not ready within 60 s")


def base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    return {**env, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def gate_key(config: Path, name: str, role: str = "gate") -> str:
    """A key from `passqr-scanner hub gate-key` (what a venue runs)."""
    made = subprocess.run(
        [PY, "-m", "scanner", "hub", "gate-key", "--config", str(config), "--name", name]
        + ["--role", role],
        cwd=ROOT,
        env=base_env(),
        check=True,
        capture_output=True,
        text=True,
    )
    return made.stdout.strip()


def write_hub_config(path: Path, upstream: str, port: int) -> None:
    path.write_text(f"""[upstream]
base_url = "{upstream}"

[hub]
listen = "127.0.0.1:{port}"
db = "{path.parent / "hub.sqlite3"}"
""")


# -- the gates ---------------------------------------------------------------------------


def plan_rounds(passes: list[Pass], gates: int, seed: int = 15) -> list[list[str | None]]:
    """Rounds of one code (or none) per gate: every pass at two gates in one round, then
    once more at another gate in a later round."""
    rng = random.Random(seed)
    order = [p.code for p in passes]
    rng.shuffle(order)
    rounds: list[list[str | None]] = []
    pairs = gates // 2
    for start_at in range(0, len(order), pairs):
        chosen = order[start_at : start_at + pairs]
        seats = list(range(gates))
        rng.shuffle(seats)
        row: list[str | None] = [None] * gates
        for i, code in enumerate(chosen):
            row[seats[2 * i]] = row[seats[2 * i + 1]] = code
        rounds.append(row)
    rng.shuffle(order)
    for start_at in range(0, len(order), gates):
        chosen = order[start_at : start_at + gates]
        rounds.append([*chosen, *([None] * (gates - len(chosen)))])
    return rounds


def gate_thread(
    base: str, key: str, gate: int, rounds: list[list[str | None]], barrier: Any, run: Run
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30.0) as client:
        try:
            client.get("/templates", params={"limit": "1"})  # the connection, before the clock
            for row in rounds:
                barrier.wait(120)
                code = row[gate]
                if code is None:
                    continue
                scan_key = {"Idempotency-Key": str(uuid.uuid4())}
                started = time.perf_counter()
                answer = client.post("/validate", json={"code": code}, headers=scan_key)
                took = (time.perf_counter() - started) * 1000
                result = answer.json().get("data", {}).get("result", "?")
                run.scans.append(Scan(gate, code, answer.status_code, str(result), took))
        except (httpx.HTTPError, threading.BrokenBarrierError, ValueError) as err:
            run.errors.append(f"gate {gate}: {type(err).__name__}: {err}")
            barrier.abort()


def run_gates(base: str, keys: list[str], rounds: list[list[str | None]]) -> Run:
    run = Run()
    barrier = threading.Barrier(len(keys))
    threads = [
        threading.Thread(target=gate_thread, args=(base, key, g, rounds, barrier, run))
        for g, key in enumerate(keys)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run.elapsed_s = time.monotonic() - started
    return run


# -- checks -----------------------------------------------------------------------------


def window_max(moments: list[float], window_s: float) -> int:
    """Most moments in any window [t, t + window_s]."""
    ordered = sorted(moments)
    best, first = 0, 0
    for last, moment in enumerate(ordered):
        while ordered[first] < moment - window_s:
            first += 1
        best = max(best, last - first + 1)
    return best


def upstream_figures(db: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        uses = dict(conn.execute("SELECT id, uses_count FROM passes").fetchall())
        results = Counter(r for (r,) in conn.execute("SELECT result FROM scans"))
        stamps = [
            datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
            for (at,) in conn.execute("SELECT at FROM scans")
        ]
    conn.close()
    # Second resolution: a window [t, t + 59 s] of stamps spans at most 60 s of arrivals.
    return {"uses": uses, "results": results, "window_max": window_max(stamps, 59)}


def hub_admissions(db: Path) -> tuple[Counter[str], Counter[str]]:
    """Admissions per pass in the hub's outbox, and the outbox's rows per state."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT pass_id, state FROM hub_outbox").fetchall()
    conn.close()
    return Counter(p for p, _ in rows), Counter(s for _, s in rows)


def access_figures(log: Path) -> tuple[int, int]:
    """(429 answers, most validations in any 60 s window) from an access log."""
    refused, validations = 0, []
    for line in log.read_text(errors="replace").splitlines():
        found = _ACCESS.match(line)
        if found is None:
            continue
        when, method, path, status = found.groups()
        refused += status == "429"
        if method == "POST" and path == "/api/v1/validate":
            moment = datetime.strptime(when, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            validations.append(moment)
    return refused, window_max(validations, UPSTREAM_WINDOW_S - 0.001)


def admissions_at_gates(run: Run, passes: list[Pass]) -> tuple[Counter[str], list[str]]:
    """Valid answers per pass id; passes admitted other than exactly max_uses times."""
    by_code = {p.code: p for p in passes}
    valid = Counter(by_code[s.code].id for s in run.scans if s.result == "valid")
    wrong = [p.code for p in passes if valid[p.id] != p.max_uses]
    return valid, wrong


# -- the run ------------------------------------------------------------------------------


@dataclass
class Venue:
    tmp: Path
    upstream_db: Path
    upstream_key: str
    passes: list[Pass]
    up_log: Path
    hub_log: Path
    hub_db: Path
    hub_url: str = ""
    status_key: str = ""
    drain_s: float = 0.0
    states: set[str] = field(default_factory=set)

    def status(self) -> dict[str, Any]:
        url = self.hub_url.removesuffix("/api/v1") + "/hub/status"
        answer = httpx.get(url, headers={"Authorization": f"Bearer {self.status_key}"}, timeout=30)
        answer.raise_for_status()
        payload: dict[str, Any] = answer.json()
        self.states.add(payload["upstream"]["state"])
        return payload

    def wait(self, what: str, ready: Any, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while not ready(self.status()["upstream"]):
            if time.monotonic() > deadline:
                raise SystemExit(f"{what}: not within {within_s:.0f} s\n{self.hub_log.read_text()}")
            time.sleep(1.0)


def hub_phase(venue: Venue, gates: int) -> Run:
    env = base_env()
    up_port, hub_port = free_port(), free_port()
    upstream = start(
        ["server", "run", "--db", str(venue.upstream_db), "--port", str(up_port)]
        + ["--access-log"],
        venue.up_log,
        env,
    )
    hub: subprocess.Popen[bytes] | None = None
    try:
        up_url = f"http://127.0.0.1:{up_port}/api/v1"
        wait_ready(up_url + "/templates?limit=1", venue.upstream_key, upstream, venue.up_log)
        config = venue.tmp / "hub.toml"
        write_hub_config(config, up_url, hub_port)
        keys = [gate_key(config, f"gate-{g + 1}") for g in range(gates)]
        venue.status_key = gate_key(config, "office", "staff")
        hub = start(
            ["hub", "run", "--config", str(config)],
            venue.hub_log,
            {**env, "PASSQR_API_KEY": venue.upstream_key},
        )
        venue.hub_url = f"http://127.0.0.1:{hub_port}/api/v1"
        wait_ready(venue.hub_url + "/templates?limit=1", keys[0], hub, venue.hub_log)
        venue.wait("the hub's first sync", lambda up: up["synced_since_start"], 120)
        started = time.monotonic()
        run = run_gates(venue.hub_url, keys, plan_rounds(venue.passes, gates))
        admissions = sum(s.result == "valid" for s in run.scans)
        # 51 per 62 s (the hub's background share), a burst first; a generous deadline.
        venue.wait("the drain", lambda up: up["queue"] == 0, 120 + admissions * 62 / 40)
        venue.drain_s = time.monotonic() - started
        venue.states.add(venue.status()["upstream"]["state"])
        return run
    finally:
        if hub is not None:
            stop(hub)
        stop(upstream)


def direct_phase(venue: Venue, copy: Path, gates: int) -> Run:
    """The same rounds against the upstream itself, rate limits off (fresh database)."""
    keys = add_keys(copy, gates)
    port = free_port()
    log = venue.tmp / "direct.log"
    server = start(
        ["server", "run", "--db", str(copy), "--port", str(port), "--no-rate-limit"],
        log,
        base_env(),
    )
    try:
        url = f"http://127.0.0.1:{port}/api/v1"
        wait_ready(url + "/templates?limit=1", keys[0], server, log)
        return run_gates(url, keys, plan_rounds(venue.passes, gates))
    finally:
        stop(server)


def evaluate(venue: Venue, run: Run) -> tuple[dict[str, bool], dict[str, Any]]:
    """The checks (name -> held) and the figures behind them."""
    valid, wrong = admissions_at_gates(run, venue.passes)
    admissions = sum(valid.values())
    not_200 = sum(s.status != 200 for s in run.scans)
    up = upstream_figures(venue.upstream_db)
    hub_per_pass, outbox = hub_admissions(venue.hub_db)
    mismatched = [
        p.code for p in venue.passes if not up["uses"][p.id] == hub_per_pass[p.id] == valid[p.id]
    ]
    refused, access_max = access_figures(venue.up_log)
    limit = UPSTREAM_VALIDATE_PER_MIN
    checks = {
        "every scan answered 200 at once": not run.errors and not not_200,
        "each pass admitted exactly max_uses times across gates": not wrong,
        "upstream uses_count == the hub's admissions, every pass": not mismatched,
        "upstream scan log: one valid row per admission, nothing else": (
            up["results"] == Counter({"valid": admissions})
        ),
        f"upstream <= {limit} validations in any 60 s window": (
            up["window_max"] <= limit and access_max <= limit
        ),
        "upstream never answered 429": refused == 0 and "rate_limited" not in venue.states,
        "outbox: all sent, no conflict": outbox == Counter({"sent": admissions}),
    }
    problems = run.errors[:5] + [f"admitted other than max_uses times: {c}" for c in wrong[:5]]
    problems += [f"counts differ (upstream, hub, gates): {c}" for c in mismatched[:5]]
    figures = {
        "admissions": admissions,
        "not_200": not_200,
        "window_max": up["window_max"],
        "access_max": access_max,
        "refused": refused,
        "problems": problems,
    }
    return checks, figures


def report(venue: Venue, run: Run, direct: Run | None, gates: int) -> bool:
    """Print the figures and checks; True when every check holds."""
    checks, f = evaluate(venue, run)
    singles = sum(p.max_uses == 1 for p in venue.passes)
    results = dict(sorted(Counter(s.result for s in run.scans).items()))
    print(f"machine: {machine()}")
    print(
        f"venue: {len(venue.passes)} passes ({singles} single-use, "
        f"{len(venue.passes) - singles} two-use), {gates} gates; upstream rate limits on "
        f"(validate {UPSTREAM_VALIDATE_PER_MIN}/min, read 120/min), hub defaults"
    )
    print(
        f"scans: {len(run.scans)} in {run.elapsed_s:.1f} s (each pass at two gates at once, "
        f"then once more): {results}; HTTP not 200: {f['not_200']}"
    )
    print(f"hub, scan -> answer (ms): {latency_line(run)}")
    if direct is not None:
        not_200 = sum(s.status != 200 for s in direct.scans)
        line = latency_line(direct)
        print(f"upstream directly, rate limits off (ms): {line}; HTTP not 200: {not_200}")
    print(
        f"admissions: {f['admissions']}, all counted upstream {venue.drain_s:.0f} s after the "
        f"first scan ({f['admissions'] / max(venue.drain_s, 1e-9) * 60:.1f}/min)"
    )
    print(
        f"upstream: most validations in any 60 s window {f['window_max']} (scan log), "
        f"{f['access_max']} (access log); 429 answers {f['refused']}; the hub's upstream "
        f"states seen {sorted(venue.states)}"
    )
    for name, ok in checks.items():
        print(f"  [{'ok' if ok else 'FAILED'}] {name}")
    for line in f["problems"]:
        print(f"  {line}")
    passed = all(checks.values())
    ms = [s.latency_ms for s in run.scans]
    print(
        f"{'PASS' if passed else 'FAIL'}: {gates} gates, {len(run.scans)} scans, "
        f"{f['admissions']} admissions, p50 {pct(ms, 50):.2f} ms, p99 {pct(ms, 99):.2f} ms, "
        f"{f['not_200']} turned away, counted upstream in {venue.drain_s:.0f} s, "
        f"at most {f['window_max']} validations per 60 s, {f['refused']} 429s; {machine()}"
    )
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=200, help="single-use passes")
    parser.add_argument("--multi", type=int, default=20, help="two-use passes")
    parser.add_argument("--gates", type=int, default=10)
    parser.add_argument("--no-direct", action="store_true", help="skip the direct comparison")
    args = parser.parse_args()
    if args.gates < 2 or args.passes + args.multi < 1:
        parser.error("at least 2 gates and 1 pass")
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp_name:
        tmp = Path(tmp_name)
        db = tmp / "upstream.sqlite3"
        key, passes = seed_upstream(db, args.passes, args.multi)
        copy = tmp / "direct.sqlite3"
        with sqlite3.connect(db) as source, sqlite3.connect(copy) as target:
            source.backup(target)
        source.close()
        target.close()
        logs = (tmp / "upstream.log", tmp / "hub.log")
        venue = Venue(tmp, db, key, passes, *logs, tmp / "hub.sqlite3")
        run = hub_phase(venue, args.gates)
        direct = None if args.no_direct else direct_phase(venue, copy, args.gates)
        return 0 if report(venue, run, direct, args.gates) else 1


if __name__ == "__main__":
    raise SystemExit(main())
