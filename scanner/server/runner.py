"""Running the app under uvicorn: in the foreground (CLI) or on a background thread.

The listening socket is bound here, before uvicorn starts, so that a port in
use is a clear `ListenError` (not a log line and `sys.exit` from inside
uvicorn) and port 0 resolves to a known port at once.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from scanner.server.app import create_app
from scanner.server.errors import ListenError
from scanner.server.protocol import ConnectionLimits, protocol_class
from scanner.server.ratelimit import RateLimits
from scanner.server.store import Store

logger = logging.getLogger(__name__)

_START_TIMEOUT = 15.0
_STOP_TIMEOUT = 15.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port).

    Raises:
        ListenError: the address is in use, not local, or not resolvable.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ListenError(f"cannot listen on {host}:{port}: {err.strerror}") from err
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as err:
        sock.close()
        reason = "address already in use" if err.errno == 98 else (err.strerror or str(err))
        raise ListenError(f"cannot listen on {host}:{port}: {reason}") from err
    return sock


def make_config(
    app: ASGIApp,
    *,
    access_log: bool = False,
    forwarded_allow_ips: str | None = None,
    limits: ConnectionLimits | None = None,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> uvicorn.Config:
    """uvicorn settings: uvloop when installed, httptools bounded by `limits`, no logging setup.

    With `ssl_certfile` (PEM, and `ssl_keyfile` unless the key is in the same file) the
    socket serves HTTPS only; uvicorn loads them when the server starts.
    """
    limits = limits or ConnectionLimits()
    return uvicorn.Config(
        app,
        loop="auto",
        http=protocol_class(limits),
        ws="none",
        lifespan="on",
        access_log=access_log,
        log_config=None,
        server_header=False,
        proxy_headers=forwarded_allow_ips is not None,
        forwarded_allow_ips=forwarded_allow_ips,
        timeout_graceful_shutdown=5,
        timeout_keep_alive=limits.keep_alive,
        limit_concurrency=limits.max_connections,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
    )


def _url_host(sock: socket.socket) -> str:
    host = str(sock.getsockname()[0])
    return f"[{host}]" if ":" in host else host


class ServerThread:
    """The local PassQR server on a background thread, for tests and the demo.

    uvicorn installs no signal handlers outside the main thread, so the
    owner stops it with `stop()` (or by leaving the `with` block).

    Example:
        with ServerThread(db_path, rate_limit=False) as server:
            httpx.get(f"{server.base_url}/openapi.json")
    """

    def __init__(
        self,
        db_path: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: bool = True,
        limits: RateLimits | None = None,
        access_log: bool = False,
        connection_limits: ConnectionLimits | None = None,
        pass_quotas: Mapping[str, int | None] | None = None,
        app: ASGIApp | None = None,
        ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None,
    ) -> None:
        self.app = app
        self.db_path = db_path
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self.pass_quotas = pass_quotas
        self.connection_limits = connection_limits
        self.host = host
        self.port = port
        self.rate_limit = rate_limit
        self.limits = limits
        self.access_log = access_log
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._error: BaseException | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """`http://<host>:<port>/api/v1`, `https://` with a certificate (valid once started)."""
        if self._base_url is None:
            raise RuntimeError("the server is not started")
        return self._base_url

    def start(self) -> ServerThread:
        """Start serving; returns once the server accepts connections.

        Raises:
            StoreOpenError: the database cannot be opened or written.
            ListenError: the address cannot be listened on.
            RuntimeError: the server failed to start for another reason.
        """
        if self._thread is not None:
            raise RuntimeError("the server is already started")
        Store.open(self.db_path).close()
        sock = bind_socket(self.host, self.port)
        self._socket = sock
        self.port = int(sock.getsockname()[1])
        scheme = "https" if self.ssl_certfile else "http"
        self._base_url = f"{scheme}://{_url_host(sock)}:{self.port}/api/v1"
        app = self.app or create_app(
            self.db_path,
            rate_limit=self.rate_limit,
            limits=self.limits,
            pass_quotas=self.pass_quotas,
        )
        server = uvicorn.Server(
            make_config(
                app,
                access_log=self.access_log,
                limits=self.connection_limits,
                ssl_certfile=str(self.ssl_certfile) if self.ssl_certfile else None,
                ssl_keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
            )
        )
        self._server = server
        self._thread = threading.Thread(
            target=self._run, args=(server, sock), name=f"passqr-server-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the local PassQR server failed to start: {self._error!r}")
            time.sleep(0.002)
        logger.info("Local PassQR server on %s (database %s)", self.base_url, self.db_path)
        return self

    def _run(self, server: uvicorn.Server, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as err:  # noqa: BLE001 - SystemExit from a failed startup too
            self._error = err
            logger.error("Local PassQR server stopped with an error: %r", err)

    def stop(self) -> None:
        """Shut down (finishing in-flight requests, closing the database) and join."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(_STOP_TIMEOUT)
            if self._thread.is_alive():
                logger.error("Local PassQR server did not stop within %.0f s", _STOP_TIMEOUT)
        if self._socket is not None:
            self._socket.close()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _stop_on_signals(server: uvicorn.Server, received: list[int]) -> dict[int, Any]:
    """SIGINT and SIGTERM stop `server` (noted in `received`); returns the handlers replaced.

    uvicorn re-raises the signal it handled once it has shut down; this handler absorbs
    it so a requested stop exits 0 instead of dying by it. A signal before uvicorn's own
    handlers are in place stops it too.
    """

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        server.should_exit = True

    return {sig: signal.signal(sig, note) for sig in (signal.SIGINT, signal.SIGTERM)}


def serve_forever(
    db_path: Path,
    *,
    host: str,
    port: int,
    rate_limit: bool = True,
    access_log: bool = False,
    forwarded_allow_ips: str | None = None,
    pass_quotas: Mapping[str, int | None] | None = None,
    app: ASGIApp | None = None,
    ssl_certfile: Path | None = None,
    ssl_keyfile: Path | None = None,
    name: str = "PassQR server",
) -> int:
    """Run the server (or another `app` on the same database, called `name` in the log)
    in the foreground until SIGINT or SIGTERM; returns an exit code.

    Raises:
        StoreOpenError: the database cannot be opened or written.
        ListenError: the address cannot be listened on.
    """
    Store.open(db_path).close()
    sock = bind_socket(host, port)
    actual_port = int(sock.getsockname()[1])
    app = app or create_app(db_path, rate_limit=rate_limit, pass_quotas=pass_quotas)
    server = uvicorn.Server(
        make_config(
            app,
            access_log=access_log,
            forwarded_allow_ips=forwarded_allow_ips,
            ssl_certfile=str(ssl_certfile) if ssl_certfile else None,
            ssl_keyfile=str(ssl_keyfile) if ssl_keyfile else None,
        )
    )
    received: list[int] = []
    previous = _stop_on_signals(server, received)
    try:
        scheme = "https" if ssl_certfile else "http"
        logger.info(
            "%s on %s://%s:%d/api/v1 (database %s, rate limits %s)",
            *(name, scheme, _url_host(sock), actual_port, db_path, "on" if rate_limit else "off"),
        )
        server.run(sockets=[sock])
    except SystemExit as err:
        logger.error("Server startup failed (exit %s)", err.code)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()
    if received:
        logger.info("Stopped by %s", signal.Signals(received[0]).name)
    return 0 if server.started else 1
