"""Prometheus metrics for a gate, in the standard library.

A hand-written text exposition (format 0.0.4) served by an
:func:`asyncio.start_server` responder on the kiosk's own event loop: no
thread, no dependency. Counters that come from decisions are fed by
:meth:`Metrics.observe` (subscribed to :meth:`scanner.pipeline.Gate.subscribe`);
everything else (device states, the server's state, repeats ignored) is read
from the running kiosk at scrape time, so it is never stale.

Exposed (all prefixed ``passqr_``):

- ``scans_total{decision,reason}``: decided scans (counter);
- ``validation_latency_seconds``: from the scanner's read to the decision (histogram);
- ``ignored_repeats_total``: the same code again within ``gate.repeat_ignore_s``;
- ``scans_in_flight``, ``offline_queue_length``: gauges;
- ``source_up{source,kind}``, ``source_state{source,state}``, ``source_reads_total{source}``;
- ``camera_decode_fps{source}``: only for sources that measure it;
- ``relay_up{relay}``, ``relay_on{relay}``, ``relay_pulses_total{relay}``;
- ``server_up``, ``server_state{state}``: what the last request or probe said about PassQR;
- ``build_info{version}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from scanner import __version__
from scanner.models import Decision, Reason
from scanner.pipeline import ServerState
from scanner.relay import RelayState
from scanner.sources import SourceState

if TYPE_CHECKING:
    from scanner.runtime import Kiosk

_log = logging.getLogger(__name__)

__all__ = ["DEFAULT_BUCKETS", "Histogram", "Metrics"]

#: Seconds. A gate answers in tens of milliseconds on a LAN, a second over a bad uplink;
#: ``api.timeout_s`` (3 s) caps a try.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_MAX_REQUEST = 8192
_READ_TIMEOUT_S = 5.0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Sequence[tuple[str, str]]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Histogram:
    """Cumulative buckets, a sum and a count, as Prometheus histograms are."""

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * len(self.bounds)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        for i, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[i] += 1

    def lines(self, name: str) -> Iterable[str]:
        for bound, count in zip(self.bounds, self.counts, strict=True):
            yield f"{name}_bucket{_labels([('le', _number(bound))])} {count}"
        yield f'{name}_bucket{{le="+Inf"}} {self.count}'
        yield f"{name}_sum {_number(self.sum)}"
        yield f"{name}_count {self.count}"


class _Exposition:
    """Builds the text: HELP and TYPE once per family, then its samples."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, labels: Sequence[tuple[str, str]] = ()) -> None:
        self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


class Metrics:
    """The gate's metrics.

    Args:
        queue_length: the offline queue's length (0 until the offline queue exists).
        buckets: the latency histogram's upper bounds, in seconds.
    """

    def __init__(
        self,
        *,
        queue_length: Callable[[], int] | None = None,
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        self.scans: dict[tuple[str, str], int] = {}
        self.relay_faults = 0
        self.latency = Histogram(buckets)
        self.queue_length = queue_length or (lambda: 0)

    def observe(self, decision: Decision) -> None:
        """Count one decision; pass this to ``Gate.subscribe``."""
        key = ("accepted" if decision.accepted else "rejected", decision.reason.value)
        self.scans[key] = self.scans.get(key, 0) + 1
        self.latency.observe(max(decision.latency_ms, 0.0) / 1000)
        if decision.relay_fault:
            self.relay_faults += 1

    def render(self, kiosk: Kiosk | None = None) -> str:
        """The exposition text; device and server figures need the running ``kiosk``."""
        out = _Exposition()
        p = "passqr_"
        out.family(p + "build_info", "gauge", "The scanner's version.")
        out.sample(p + "build_info", 1, [("version", __version__)])

        out.family(p + "relay_faults_total", "counter", "Admissions whose door did not open.")
        out.sample(p + "relay_faults_total", self.relay_faults)

        out.family(p + "scans_total", "counter", "Decided scans by decision and reason.")
        keys = set(self.scans)
        # Both decisions of the everyday reasons are always there, so rate() starts at zero.
        keys.update({("accepted", Reason.VALID.value), ("rejected", Reason.NOT_FOUND.value)})
        for decision, reason in sorted(keys):
            out.sample(
                p + "scans_total",
                self.scans.get((decision, reason), 0),
                [("decision", decision), ("reason", reason)],
            )

        name = p + "validation_latency_seconds"
        out.family(name, "histogram", "From the scanner's read to the decision, in seconds.")
        out.lines.extend(self.latency.lines(name))

        try:
            queued = int(self.queue_length())
        except Exception:  # noqa: BLE001 - a broken gauge must not break the scrape
            _log.exception("offline queue length")
            queued = 0
        out.family(p + "offline_queue_length", "gauge", "Scans waiting for the server.")
        out.sample(p + "offline_queue_length", queued)

        if kiosk is not None:
            self._kiosk(out, kiosk)
        return out.text()

    def _kiosk(self, out: _Exposition, kiosk: Kiosk) -> None:
        p = "passqr_"
        status = kiosk.gate.status
        out.family(p + "ignored_repeats_total", "counter", "Repeats of a code ignored.")
        out.sample(p + "ignored_repeats_total", status.ignored_repeats)
        out.family(p + "scans_in_flight", "gauge", "Scans being validated now.")
        out.sample(p + "scans_in_flight", status.in_flight)

        out.family(p + "server_up", "gauge", "1 when PassQR answered the last request.")
        out.sample(p + "server_up", int(status.server is ServerState.OK))
        out.family(p + "server_state", "gauge", "PassQR's state as the gate sees it (one is 1).")
        for state in ServerState:
            out.sample(p + "server_state", int(status.server is state), [("state", state.value)])

        sources = kiosk.sources
        out.family(p + "source_up", "gauge", "1 when the source is reading.")
        for source in sources:
            up = int(source.state is SourceState.READY)
            out.sample(p + "source_up", up, [("source", source.name), ("kind", source.kind)])
        out.family(p + "source_state", "gauge", "Each source's state (one is 1 per source).")
        for source in sources:
            for source_state in SourceState:
                out.sample(
                    p + "source_state",
                    int(source.state is source_state),
                    [("source", source.name), ("state", source_state.value)],
                )
        out.family(p + "source_reads_total", "counter", "Payloads each source read.")
        for source in sources:
            out.sample(p + "source_reads_total", source.count, [("source", source.name)])
        fps: list[tuple[str, float]] = []
        for source in sources:
            value = getattr(source, "decode_fps", None)
            if isinstance(value, int | float) and not isinstance(value, bool):
                fps.append((source.name, float(value)))
        if fps:
            out.family(p + "camera_decode_fps", "gauge", "Frames decoded per second.")
            for source_name, value in fps:
                out.sample(p + "camera_decode_fps", value, [("source", source_name)])

        relay = kiosk.relay
        label = [("relay", relay.description)]
        out.family(p + "relay_up", "gauge", "1 unless the relay board is in FAULT.")
        out.sample(p + "relay_up", int(relay.state is not RelayState.FAULT), label)
        out.family(p + "relay_on", "gauge", "1 while the contact is closed (door open).")
        out.sample(p + "relay_on", int(relay.state is RelayState.ON), label)
        out.family(p + "relay_pulses_total", "counter", "Pulses for admissions.")
        out.sample(p + "relay_pulses_total", relay.pulses, label)

    # -- the HTTP responder ------------------------------------------------------------------

    async def serve(self, host: str, port: int, kiosk: Kiosk | None = None) -> asyncio.Server:
        """Serve ``GET /metrics`` on ``host:port`` until the returned server is closed.

        Close it with ``server.close(); await server.wait_closed()``. ``port`` 0
        picks a free port (``server.sockets[0].getsockname()[1]``).

        Raises:
            OSError: the address cannot be bound (in use, not local).
        """

        async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                await self._respond(reader, writer, kiosk)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

        server = await asyncio.start_server(respond, host, port, limit=_MAX_REQUEST)
        where = ", ".join(str(s.getsockname()[:2]) for s in server.sockets)
        _log.info("metrics on %s (GET /metrics)", where)
        return server

    async def _respond(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, kiosk: Kiosk | None
    ) -> None:
        async with asyncio.timeout(_READ_TIMEOUT_S):
            head = await reader.readuntil(b"\r\n\r\n")
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        method, target = (parts[0], parts[1]) if len(parts) >= 2 else ("", "")
        path = target.split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            status, ctype, body = "405 Method Not Allowed", "text/plain", b"GET only\n"
        elif path == "/metrics":
            status, ctype = "200 OK", CONTENT_TYPE
            body = self.render(kiosk).encode("utf-8")
        elif path == "/":
            status, ctype, body = "200 OK", "text/plain", b"passqr-scanner: see /metrics\n"
        else:
            status, ctype, body = "404 Not Found", "text/plain", b"not found\n"
        header = (
            f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n"
        )
        if status.startswith("405"):
            header += "Allow: GET, HEAD\r\n"
        writer.write(header.encode("latin-1") + b"\r\n" + (b"" if method == "HEAD" else body))
        await writer.drain()
