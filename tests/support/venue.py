"""A venue on loopback for the hub's tests: the local server as PassQR upstream, a hub
in front of it, and keys for gates and staff. Real HTTP everywhere; every request that
reaches the upstream is logged (``Venue.upstream_log``), those its limits refuse too."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scanner.hub.app import create_hub_app
from scanner.hub.config import HubConfig, parse_hub_config
from scanner.hub.tables import create_hub_key
from scanner.server import ServerThread, create_app, create_key
from scanner.server.ratelimit import RateLimits
from scanner.server.store import DEFAULT_BUSINESS, Store

_TEMPLATE: dict[str, Any] = {
    "name": "Venue",
    "type": "event",
    "description": None,
    "color": None,
    "logo_url": None,
    "fields": [],
    "settings": {},
    "max_uses": None,
}


def wait_until(condition: Callable[[], bool], within_s: float = 10.0, step_s: float = 0.02) -> None:
    """Return once ``condition()`` holds; fail after ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within_s} s")
        time.sleep(step_s)


@dataclass(frozen=True)
class Arrival:
    """One request as the upstream saw it: when it arrived (``time.monotonic()``, the
    clock of the upstream's rate limiter), what it was and what it was answered."""

    at: float
    method: str
    path: str
    status: int


class RequestLog:
    """ASGI middleware outside the upstream's rate limiter: logs every HTTP request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.arrivals: list[Arrival] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        at = time.monotonic()
        status = [0]

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            self.arrivals.append(Arrival(at, scope["method"], scope["path"], status[0]))

    def of(self, method: str, path: str, since: float = 0.0) -> list[Arrival]:
        """The requests of ``method`` to ``path`` (under /api/v1) that arrived after ``since``."""
        full = f"/api/v1{path}"
        return [
            a for a in list(self.arrivals) if (a.method, a.path) == (method, full) and a.at > since
        ]


@dataclass
class Venue:
    """An upstream server and a hub; ``gates`` maps a gate's name to its hub key."""

    root: Path
    upstream: ServerThread
    upstream_key: str
    upstream_log: RequestLog
    config: HubConfig
    gates: dict[str, str]
    staff_key: str
    hub: ServerThread | None = None
    hub_port: int = 0
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def hub_url(self) -> str:
        assert self.hub is not None
        return self.hub.base_url

    def _client(self, base_url: str, key: str) -> httpx.Client:
        client = httpx.Client(
            base_url=base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10.0
        )
        self.clients.append(client)
        return client

    def upstream_api(self) -> httpx.Client:
        """PassQR itself, with the venue's full key (what the hub uses)."""
        return self._client(self.upstream.base_url, self.upstream_key)

    def gate(self, name: str) -> httpx.Client:
        return self._client(self.hub_url, self.gates[name])

    def staff(self) -> httpx.Client:
        return self._client(self.hub_url, self.staff_key)

    def status(self) -> dict[str, Any]:
        root = self.hub_url.removesuffix("/api/v1")
        answer = httpx.get(
            f"{root}/hub/status",
            headers={"Authorization": f"Bearer {self.staff_key}"},
            timeout=10.0,
        )
        assert answer.status_code == 200, answer.text
        payload: dict[str, Any] = answer.json()
        return payload

    def wait_synced(self, within_s: float = 10.0) -> None:
        """Until this hub's first full sync is done (`last_sync` may be a previous run's)."""
        wait_until(lambda: self.status()["upstream"]["synced_since_start"], within_s)

    def wait_drained(self, within_s: float = 30.0) -> None:
        wait_until(lambda: self.status()["upstream"]["queue"] == 0, within_s, step_s=0.1)

    def start_hub(self) -> None:
        """Start the hub; a restart listens on the port of the first start (kiosks keep
        their base_url)."""
        app = create_hub_app(self.config, self.upstream_key)
        self.hub = ServerThread(self.config.hub.db, port=self.hub_port, app=app).start()
        self.hub_port = self.hub.port

    def stop_hub(self) -> None:
        if self.hub is not None:
            self.hub.stop()
            self.hub = None

    def new_pass(self, template_id: str, **fields: Any) -> dict[str, Any]:
        """A pass made at PassQR (not through the hub)."""
        with httpx.Client(
            base_url=self.upstream.base_url,
            headers={"Authorization": f"Bearer {self.upstream_key}"},
            timeout=10.0,
        ) as up:
            answer = up.post("/passes", json={"template_id": template_id, **fields})
        assert answer.status_code == 201, answer.text
        created: dict[str, Any] = answer.json()["data"]
        return created

    def seed(self, count: int, *, max_uses: int | None = 1) -> list[dict[str, Any]]:
        """Passes written straight into PassQR's database: no request, so none of the
        upstream's per-IP budget (which the hub shares on loopback) is spent."""

        def make(store: Store) -> tuple[int, Any]:
            template = store.create_template(_TEMPLATE, DEFAULT_BUSINESS)
            made = [
                store.create_pass(
                    business=DEFAULT_BUSINESS,
                    template_id=template["id"],
                    holder_name=f"Guest {i}",
                    holder_email=None,
                    expires_at=None,
                    data={},
                    max_uses=max_uses,
                )
                for i in range(count)
            ]
            return 200, made

        store = Store.open(self.upstream.db_path)
        try:
            answer = store.execute(make, None)
        finally:
            store.close()
        passes: list[dict[str, Any]] = json.loads(answer.body)
        return passes

    def upstream_uses(self, pass_id: str) -> int:
        """The pass's uses_count in PassQR's database (no request, no budget spent)."""
        with closing(sqlite3.connect(self.upstream.db_path)) as conn:
            row = conn.execute("SELECT uses_count FROM passes WHERE id = ?", (pass_id,)).fetchone()
        assert row is not None, pass_id
        return int(row[0])

    def upstream_scans(self) -> list[tuple[str | None, str]]:
        """PassQR's scan log: (pass id, result) of every validation it decided."""
        with closing(sqlite3.connect(self.upstream.db_path)) as conn:
            rows = conn.execute("SELECT pass_id, result FROM scans ORDER BY id").fetchall()
        return [(row[0], row[1]) for row in rows]

    def new_template(self) -> str:
        with httpx.Client(
            base_url=self.upstream.base_url,
            headers={"Authorization": f"Bearer {self.upstream_key}"},
            timeout=10.0,
        ) as up:
            answer = up.post("/templates", json={"name": "Venue", "type": "event"})
        assert answer.status_code == 201, answer.text
        template_id: str = answer.json()["data"]["id"]
        return template_id


@contextmanager
def venue(
    root: Path,
    *,
    limits: RateLimits | None = None,
    gate_names: tuple[str, ...] = ("north-1", "north-2"),
    start_hub: bool = True,
    prepare: Callable[[Venue], None] | None = None,
    **upstream: Any,
) -> Iterator[Venue]:
    """A venue; the upstream has rate limits only when ``limits`` is given (the hub's
    budget then follows them unless ``upstream`` says otherwise)."""
    up_db = root / "passqr.sqlite3"
    up_key = create_key(up_db, name="venue", plan="pro")
    settings: dict[str, Any] = {}
    if limits is not None:
        settings = {
            "validate_per_min": limits.validate,
            "read_per_min": limits.read,
            "write_per_min": limits.write,
            "window_s": limits.window,
        }
    settings.update(upstream)
    log = RequestLog(create_app(up_db, rate_limit=limits is not None, limits=limits))
    with ServerThread(up_db, app=log) as server:
        table = {
            "upstream": {"base_url": server.base_url, **settings},
            "hub": {"db": str(root / "hub.sqlite3")},  # served on a free port
        }
        config = parse_hub_config(table)
        gates = {name: create_hub_key(config.hub.db, name=name, role="gate") for name in gate_names}
        staff = create_hub_key(config.hub.db, name="office", role="staff")
        place = Venue(root, server, up_key, log, config, gates, staff)
        if prepare is not None:
            prepare(place)
        try:
            if start_hub:
                place.start_hub()
            yield place
        finally:
            for client in place.clients:
                client.close()
            place.stop_hub()
