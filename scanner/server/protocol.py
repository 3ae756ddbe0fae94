"""The HTTP/1.1 protocol: uvicorn's httptools protocol with bounds on what a client may send.

Why a subclass: uvicorn 0.54 under httptools puts no limit on a request's head
(`h11_max_incomplete_event_size` only reaches the slower h11 protocol). An
adversarial test sent four 64 MiB headers: 13 s of CPU and 351 MB of memory,
while a concurrent validation waited 13.5 s. Its keep-alive timer is re-armed by
every byte and only runs between requests, so a connection that never sends,
or drips a byte now and then, was never closed. Its parser errors answered in
plain text. This protocol adds, per connection:

- a head budget: request line plus headers at most `max_head_bytes` (counted as
  they arrive, so an endless header is cut after one read past the budget) and
  at most `max_headers` header lines: 431 (414 for the request target alone);
- a head deadline: from the connection (or the end of the previous answer) to
  the end of the headers, `head_timeout`, whatever trickles in meanwhile: a
  silent close when nothing came, 408 otherwise;
- a body deadline: from the end of the headers to the end of the body,
  `body_timeout`: 408 (the application sees the client as gone);
- the `{"error", "message"}` envelope on every answer it gives itself (parser
  errors, refusals, timeouts, and uvicorn's 503 past `max_connections`).

uvicorn is pinned (pyproject.toml): this class relies on its protocol's
parser callbacks and its `_start_asgi_task`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn._types import ASGI3Application, ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from scanner.server.errors import envelope
from scanner.server.store import dumps


@dataclass(frozen=True, kw_only=True)
class ConnectionLimits:
    """What one client connection may cost the server; the defaults suit a venue's LAN."""

    #: Request line plus headers, in bytes (431 beyond; 414 for the target alone).
    max_head_bytes: int = 16 * 1024
    #: Header lines in one request (431 beyond).
    max_headers: int = 100
    #: Seconds from connecting (or from the previous answer) to the end of the headers.
    head_timeout: float = 10.0
    #: Seconds from the end of the headers to the end of the body.
    body_timeout: float = 30.0
    #: Seconds an idle keep-alive connection is kept between requests (uvicorn's own timer).
    keep_alive: int = 5
    #: Open connections plus running requests before uvicorn answers 503.
    max_connections: int = 1000


class _Refusal(Exception):
    """An answer the protocol gives itself, raised from inside a parser callback."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def raw_answer(status: int, message: str, extra: tuple[bytes, ...] = ()) -> bytes:
    """A complete HTTP/1.1 answer carrying the error envelope, closing the connection."""
    body = dumps(envelope(status, message))
    return b"".join(
        (
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            *extra,
            b"connection: close\r\n\r\n",
            body,
        )
    )


async def _busy(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    """uvicorn's answer past `limit_concurrency`, in the API's envelope."""
    body = dumps(envelope(503, "The server is at its connection limit; retry shortly"))
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with a head budget, head and body deadlines, and JSON refusals."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # waiting for, or reading, a request line and headers
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._refusal: _Refusal | None = None

    # -- deadlines -------------------------------------------------------------------------

    def _arm(self, delay: float, callback: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(delay, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_late(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # idle: nothing to answer
        else:
            self._answer_and_close(
                408, f"The request headers did not arrive within {self.limits.head_timeout:g} s"
            )

    def _body_late(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if self.transport.is_closing() or cycle is None:
            return
        answered = cycle.response_started
        # The application waiting on the body sees a disconnect and answers nothing.
        cycle.disconnected = True
        cycle.message_event.set()
        if answered:
            self.transport.close()
        else:
            self._answer_and_close(
                408, f"The request body did not arrive within {self.limits.body_timeout:g} s"
            )

    def _answer_and_close(self, status: int, message: str) -> None:
        """Answer (unless an earlier request's answer is still being written) and hang up."""
        self._disarm()
        if self.cycle is None or self.cycle.response_complete or self.cycle.disconnected:
            extra = (b"retry-after: 1\r\n",) if status == 503 else ()
            self.transport.write(raw_answer(status, message, extra))
        self.transport.close()

    # -- uvicorn's protocol interface --------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.limits.head_timeout, self._head_late)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            # Headers still incomplete: refuse as soon as the budget is spent,
            # without waiting for the end of an endless header line.
            if self._head_bytes > self.limits.max_head_bytes:
                self._answer_and_close(431, self._head_too_large())

    def send_400_response(self, msg: str) -> None:
        """Every parser error, and the refusals raised from its callbacks, as JSON."""
        refusal, self._refusal = self._refusal, None
        if refusal is not None:
            self._answer_and_close(refusal.status, refusal.message)
        else:
            self._answer_and_close(400, "Malformed HTTP request")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if (
            self._in_head
            and not self.transport.is_closing()
            and (self.cycle is None or self.cycle.response_complete)
        ):
            self._head_bytes = 0
            self._arm(self.limits.head_timeout, self._head_late)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        super()._start_asgi_task(cycle, _busy if app is service_unavailable else app)

    # -- parser callbacks ------------------------------------------------------------------

    def _refuse(self, status: int, message: str) -> None:
        self._refusal = _Refusal(status, message)
        raise self._refusal

    def _head_too_large(self) -> str:
        return f"The request line and headers exceed {self.limits.max_head_bytes} bytes"

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_head_bytes:
            self._refuse(414, f"The request target exceeds {self.limits.max_head_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        if len(self.headers) > self.limits.max_headers:
            self._refuse(431, f"More than {self.limits.max_headers} header lines")

    def on_headers_complete(self) -> None:
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.limits.max_head_bytes:
            self._refuse(431, self._head_too_large())
        self._in_head = False
        self._head_bytes = 0
        self._arm(self.limits.body_timeout, self._body_late)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._in_head = True
        self._head_bytes = 0
        if self.cycle is not None and self.cycle.response_complete:
            self._arm(self.limits.head_timeout, self._head_late)


def protocol_class(limits: ConnectionLimits) -> type[BoundedHttpToolsProtocol]:
    """A protocol class for uvicorn's `http=` setting, bound to `limits`."""
    return type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
