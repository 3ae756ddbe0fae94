"""An HTTP proxy on loopback that breaks requests on purpose.

It sits between the kiosk and the local PassQR server and applies one fault per
request, from a plan the test writes (then a default):

- ``pass``: forward, answer (the normal case)
- ``drop``: close the connection before the server hears anything
- ``lost``: forward (the server acts on it), then close without answering
- ``lost-noidem``: like ``lost``, with the Idempotency-Key stripped, as a server
  that ignores the header would behave
- ``delay:S``: wait S seconds, then forward and answer (the client timed out)
- ``slow:S``: forward at once (the server acts on it), hold its answer S seconds
- ``hang``: forward at once (the server acts on it), never answer; the connection
  stays open until the client closes it (or dies) or the proxy stops
- ``drip:S``: forward, send the answer's status line and headers at once, then
  its body one byte every S seconds (per-read timeouts never fire)
- ``reset``: answer with a TCP reset
- ``500``, ``html``, ``429:N``: answer that without forwarding

Each connection serves one request (``Connection: close`` both ways), so a
fault never leaks into the next request.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections import deque
from dataclasses import dataclass, field


async def _close(writer: asyncio.StreamWriter, writers: set[asyncio.StreamWriter]) -> None:
    # No wait_closed(): the transport closes in a callback that ``stop`` lets run.
    writer.close()
    writers.discard(writer)


@dataclass
class Seen:
    method: str
    path: str
    idempotency_key: str | None
    fault: str
    body: bytes = b""


@dataclass
class FaultProxy:
    upstream_port: int
    default: str = "pass"
    plan: deque[str] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    def __post_init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._run, name="fault-proxy", daemon=True)
        self._lock = threading.Lock()
        self._writers: set[asyncio.StreamWriter] = set()

    # -- control, from the test's thread ---------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # Requests still held (a delay fault) are ended, so their sockets get closed.
            for _ in range(20):
                pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                if not pending:
                    break
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            for writer in list(self._writers):
                writer.transport.abort()
            if self._server is not None:
                await self._server.wait_closed()
            await asyncio.sleep(0.1)  # let the transports' connection_lost callbacks run

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def then(self, *faults: str) -> None:
        with self._lock:
            self.plan.extend(faults)

    def set_default(self, fault: str) -> None:
        with self._lock:
            self.default = fault

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def validations(self) -> list[Seen]:
        return [s for s in self.seen if s.path.endswith("/validate")]

    # -- the proxy, on its own loop ---------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> None:
            self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()

        self._loop.run_until_complete(serve())
        self._loop.run_forever()
        # Callbacks scheduled by the last closes run before the loop is closed.
        self._loop.run_until_complete(asyncio.sleep(0.05))

    def _next_fault(self) -> str:
        with self._lock:
            return self.plan.popleft() if self.plan else self.default

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            await _close(writer, self._writers)
            return
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = (lines[0].split(" ") + ["", ""])[:3]
        headers = [line for line in lines[1:] if line]
        length = 0
        key = None
        for line in headers:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip() or 0)
            if name.strip().lower() == "idempotency-key":
                key = value.strip()
        body = await reader.readexactly(length) if length else b""
        fault = self._next_fault()
        self.seen.append(Seen(method, path, key, fault, body))
        try:
            await self._apply(fault, method, path, headers, body, writer, reader)
        except (ConnectionError, OSError):
            pass
        except asyncio.CancelledError:
            # ``stop`` ends a request still held (delay, slow, hang, drip). Ending normally
            # keeps asyncio's stream callback from logging the cancellation as an error.
            pass
        finally:
            await _close(writer, self._writers)

    async def _apply(
        self,
        fault: str,
        method: str,
        path: str,
        headers: list[str],
        body: bytes,
        writer: asyncio.StreamWriter,
        reader: asyncio.StreamReader,
    ) -> None:
        if fault == "drop":
            return
        if fault == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return
        if fault == "500":
            await self._answer(
                writer,
                500,
                "application/json",
                b'{"error": "Internal Server Error", "message": "boom"}',
            )
            return
        if fault == "html":
            await self._answer(
                writer, 200, "text/html", b"<html><body>Welcome to the venue Wi-Fi</body></html>"
            )
            return
        if fault.startswith("429:"):
            await self._answer(
                writer,
                429,
                "application/json",
                b'{"error": "Too Many Requests", "message": "slow down"}',
                extra=f"Retry-After: {fault.split(':')[1]}\r\n",
            )
            return
        if fault.startswith("delay:"):
            await asyncio.sleep(float(fault.split(":")[1]))
        strip = fault == "lost-noidem"
        answer = await self._forward(method, path, headers, body, strip_idempotency=strip)
        if fault in ("lost", "lost-noidem"):
            return
        if fault == "hang":
            await reader.read()  # until the client gives up or dies: EOF
            return
        if fault.startswith("slow:"):
            await asyncio.sleep(float(fault.split(":")[1]))
        if fault.startswith("drip:"):
            await self._drip(writer, answer, float(fault.split(":")[1]))
            return
        writer.write(answer)
        await writer.drain()

    @staticmethod
    async def _drip(writer: asyncio.StreamWriter, answer: bytes, every_s: float) -> None:
        head, sep, body = answer.partition(b"\r\n\r\n")
        writer.write(head + sep)
        await writer.drain()
        for i in range(len(body)):
            await asyncio.sleep(every_s)
            writer.write(body[i : i + 1])
            await writer.drain()

    async def _forward(
        self, method: str, path: str, headers: list[str], body: bytes, *, strip_idempotency: bool
    ) -> bytes:
        kept = [
            h
            for h in headers
            if h.split(":")[0].strip().lower() not in ("connection", "host")
            and not (strip_idempotency and h.lower().startswith("idempotency-key"))
        ]
        request = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.upstream_port}\r\n"
            "Connection: close\r\n" + "".join(h + "\r\n" for h in kept) + "\r\n"
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers.add(writer)
        try:
            writer.write(request.encode("latin-1") + body)
            await writer.drain()
            return await reader.read()
        finally:
            await _close(writer, self._writers)

    @staticmethod
    async def _answer(
        writer: asyncio.StreamWriter, status: int, kind: str, body: bytes, extra: str = ""
    ) -> None:
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n{extra}\r\n".encode()
            + body
        )
        await writer.drain()
