"""A local, strict implementation of the PassQR REST API (Starlette, uvicorn, SQLite).

It is the reference the project's tests and demo run against, and a venue may
run it in production. It shares only the spec'd JSON shapes with the scanner:
nothing here imports the kiosk's modules.

The exports load lazily, so `scanner.server.cli` (imported by the main CLI
for every command) does not pay for importing Starlette and uvicorn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from scanner.server.app import create_app
    from scanner.server.errors import ListenError, StoreOpenError
    from scanner.server.protocol import ConnectionLimits
    from scanner.server.ratelimit import RateLimits
    from scanner.server.runner import ServerThread
    from scanner.server.store import create_key, seed_demo

_EXPORTS = {
    "ConnectionLimits": "scanner.server.protocol",
    "ListenError": "scanner.server.errors",
    "RateLimits": "scanner.server.ratelimit",
    "ServerThread": "scanner.server.runner",
    "StoreOpenError": "scanner.server.errors",
    "create_app": "scanner.server.app",
    "create_key": "scanner.server.store",
    "seed_demo": "scanner.server.store",
}

__all__ = [
    "ConnectionLimits",
    "ListenError",
    "RateLimits",
    "ServerThread",
    "StoreOpenError",
    "create_app",
    "create_key",
    "seed_demo",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
