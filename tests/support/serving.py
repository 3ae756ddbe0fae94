"""Any ASGI app under uvicorn on a loopback port, on a background thread.

The socket is bound first (port 0: a free port, known at once), as the local server's
runner does; leaving the ``with`` block stops the server and joins its thread.

Example:
    with serve(app) as base_url:
        httpx.get(f"{base_url}/hub")
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from scanner.server.runner import bind_socket, make_config

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0


@contextmanager
def serve(app: ASGIApp, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` on ``host`` (any free port); yields ``http://host:port``."""
    sock = bind_socket(host, 0)
    port = int(sock.getsockname()[1])
    server = uvicorn.Server(make_config(app))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name=f"asgi-{port}", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not start serving on {host}:{port}")
            time.sleep(0.005)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(_STOP_TIMEOUT_S)
        sock.close()
