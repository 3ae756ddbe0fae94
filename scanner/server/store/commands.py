"""What the CLI (and the tests) do to a database file: open it, create a key, seed a demo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from scanner.server.store.facade import Store
from scanner.server.store.keys import DEFAULT_BUSINESS, check_business, check_plan
from scanner.server.validation import format_timestamp

#: The template the demo passes are made in.
_DEMO_TEMPLATE: dict[str, Any] = {
    "max_uses": None,
    "name": "Demo Festival",
    "type": "event",
    "description": "Passes created by seed-demo",
    "color": "#1f6feb",
    "logo_url": None,
    "fields": [{"key": "zone", "label": "Zone"}],
    "settings": {},
}


@contextmanager
def opened(path: Path) -> Iterator[Store]:
    store = Store.open(path)
    try:
        yield store
    finally:
        store.close()


def create_key(
    db_path: Path, *, name: str = "default", plan: str = "pro", business: str = DEFAULT_BUSINESS
) -> str:
    """Create an API key in the database at `db_path` (created if needed).

    Args:
        db_path: the SQLite file.
        name: a label for the key.
        plan: free, starter or pro.
        business: the business whose templates and passes the key sees (a new
            name starts an empty business).

    Returns:
        The plain key. It is stored only as a hash and cannot be shown again.

    Raises:
        ValueError: `plan` is not one of free, starter, pro, or `business` is not a name.
        StoreOpenError: the database cannot be opened or written.
    """
    check_plan(plan)
    check_business(business)
    with opened(db_path) as store:
        return store.create_key(name=name, plan=plan, business=business)


def seed_demo(db_path: Path, *, business: str = DEFAULT_BUSINESS) -> dict[str, str]:
    """Create a demo template and one pass per interesting state, in `business`.

    Returns:
        label -> code for the labels valid, season, used, expired and revoked.
        Calling it again adds another template and another set of passes.
    """
    check_business(business)
    past = format_timestamp(datetime.now(UTC) - timedelta(days=30))
    future = format_timestamp(datetime.now(UTC) + timedelta(days=365))
    specs = _demo_passes(past, future)

    def seed(store: Store) -> tuple[int, Any]:
        template = store.create_template(_DEMO_TEMPLATE, business)
        codes: dict[str, str] = {}
        for label, spec in specs.items():
            email = spec["holder_name"].split()[0].lower() + "@example.com"
            created = store.create_pass(
                business=business,
                template_id=template["id"],
                holder_email=email,
                data={"zone": "demo", "label": label},
                **spec,
            )
            codes[label] = created["code"]
        return 200, codes

    with opened(db_path) as store:
        answer = store.execute(seed, None)
    codes: dict[str, str] = json.loads(answer.body)
    return codes


def _demo_passes(past: str, future: str) -> dict[str, dict[str, Any]]:
    """label -> the demo pass in that state (its create_pass arguments but the shared ones)."""
    return {
        "valid": {"holder_name": "Ada Lovelace", "max_uses": 1, "expires_at": future},
        "season": {"holder_name": "Grace Hopper", "max_uses": None, "expires_at": None},
        "used": {
            "holder_name": "Alan Turing",
            "max_uses": 1,
            "expires_at": future,
            "uses_count": 1,
            "status": "used",
        },
        "expired": {"holder_name": "Katherine Johnson", "max_uses": 1, "expires_at": past},
        "revoked": {
            "holder_name": "Margaret Hamilton",
            "max_uses": 1,
            "expires_at": future,
            "status": "revoked",
        },
    }
