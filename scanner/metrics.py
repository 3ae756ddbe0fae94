"""Prometheus metrics for a gate, exposed with ``prometheus_client``.

The library writes the text exposition (format 0.0.4); a small
:func:`asyncio.start_server` responder on the kiosk's own event loop serves it
(no thread: the kiosk's state is read where it changes, never mid-update; a
bounded, timed read of the request; ``Connection: close``; at most
:data:`MAX_CONNECTIONS` at once, any more closed at once, so idle connections
cannot use up the kiosk's file descriptors). Counters that come
from decisions are fed by :meth:`Metrics.observe` (subscribed to
:meth:`scanner.pipeline.Gate.subscribe`); everything else (device states, the
server's state, repeats ignored) is read from the running kiosk at scrape time,
so it is never stale.

Exposed (all prefixed ``passqr_``):

- ``scans_total{decision,reason}``: decided scans (counter);
- ``validation_latency_seconds``: from the scanner's read to the decision (histogram);
- ``ignored_repeats_total``: the same code again within ``gate.repeat_ignore_s``;
- ``scans_in_flight``, ``offline_queue_length``: gauges;
- ``source_up{source,kind}``, ``source_state{source,state}``, ``source_reads_total{source}``;
- ``camera_decode_fps{source}``: only for sources that measure it;
- ``relay_up{relay}``, ``relay_on{relay}``, ``relay_pulses_total{relay}``;
- ``server_up``, ``server_state{state}``: what the last request or probe said about PassQR;
- ``build_info{version}``;
- ``relay_faults_total``: admissions whose door did not open;
- with ``[[inputs]]`` (issue 16): ``turnstile_events_total{event}`` (passed, not_passed,
  forced, exit, tamper, alarm) and ``input_up{input,role}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from scanner import __version__
from scanner.models import Decision, Reason
from scanner.relay import RelayState
from scanner.sources import SourceState
from scanner.status import ServerState

if TYPE_CHECKING:
    from scanner.runtime import Kiosk

_log = logging.getLogger(__name__)

__all__ = ["DEFAULT_BUCKETS", "Histogram", "Metrics"]

#: Seconds. A gate answers in tens of milliseconds on a LAN, a second over a bad uplink;
#: ``api.timeout_s`` (3 s) caps a try.
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_MAX_REQUEST = 8192
_READ_TIMEOUT_S = 5.0
"""A request not read within this is closed; its answer must be sent within it too."""
MAX_CONNECTIONS = 16
"""Connections served at once; any more are closed as soon as they are accepted."""


def _bound(value: float) -> str:
    """A bucket's ``le``: ``10``, not ``10.0``, as the series were first published."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


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

    def family(self, name: str, documentation: str) -> HistogramMetricFamily:
        buckets = [(_bound(b), float(c)) for b, c in zip(self.bounds, self.counts, strict=True)]
        buckets.append(("+Inf", float(self.count)))
        return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=self.sum)


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
        self.connections = 0
        """Connections to the responder open now."""
        self.turned_away = 0
        """Connections closed at once: :data:`MAX_CONNECTIONS` were open."""

    def observe(self, decision: Decision) -> None:
        """Count one decision; pass this to ``Gate.subscribe``."""
        key = ("accepted" if decision.accepted else "rejected", decision.reason.value)
        self.scans[key] = self.scans.get(key, 0) + 1
        self.latency.observe(max(decision.latency_ms, 0.0) / 1000)
        if decision.relay_fault:
            self.relay_faults += 1

    def render(self, kiosk: Kiosk | None = None) -> str:
        """The exposition text; device and server figures need the running ``kiosk``."""
        return self.exposition(kiosk).decode("utf-8")

    def exposition(self, kiosk: Kiosk | None = None) -> bytes:
        """What ``GET /metrics`` answers: ``prometheus_client``'s text format 0.0.4."""
        return generate_latest(_Families(self, kiosk))

    def families(self) -> Iterator[Metric]:
        """The metrics the gate keeps itself: version, decisions, latency, the queue."""
        p = "passqr_"
        yield _gauge(p + "build_info", "The scanner's version.", [([__version__], 1)], "version")
        yield CounterMetricFamily(
            p + "relay_faults_total", "Admissions whose door did not open.", self.relay_faults
        )
        scans = CounterMetricFamily(
            p + "scans_total",
            "Decided scans by decision and reason.",
            labels=["decision", "reason"],
        )
        keys = set(self.scans)
        # Both decisions of the everyday reasons are always there, so rate() starts at zero.
        keys.update({("accepted", Reason.VALID.value), ("rejected", Reason.NOT_FOUND.value)})
        for key in sorted(keys):
            scans.add_metric(list(key), self.scans.get(key, 0))
        yield scans
        yield self.latency.family(
            p + "validation_latency_seconds", "From the scanner's read to the decision, in seconds."
        )
        try:
            queued = int(self.queue_length())
        except Exception:  # noqa: BLE001 - a broken gauge must not break the scrape
            _log.exception("offline queue length")
            queued = 0
        yield GaugeMetricFamily(p + "offline_queue_length", "Scans waiting for the server.", queued)

    # -- the HTTP responder ------------------------------------------------------------------

    async def serve(self, host: str, port: int, kiosk: Kiosk | None = None) -> asyncio.Server:
        """Serve ``GET /metrics`` on ``host:port`` until the returned server is closed.

        Close it with ``server.close(); await server.wait_closed()``. ``port`` 0
        picks a free port (``server.sockets[0].getsockname()[1]``).

        Raises:
            OSError: the address cannot be bound (in use, not local).
        """

        async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if self.connections >= MAX_CONNECTIONS:
                self.turned_away += 1
                writer.transport.abort()
                return
            self.connections += 1
            try:
                async with asyncio.timeout(2 * _READ_TIMEOUT_S):  # the read, then the answer
                    await self._respond(reader, writer, kiosk)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                pass
            finally:
                self.connections -= 1
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
            body = self.exposition(kiosk)
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


def _gauge(
    name: str, documentation: str, samples: Iterable[tuple[list[str], float]], *labels: str
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _counter(
    name: str, documentation: str, samples: Iterable[tuple[list[str], float]], *labels: str
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=list(labels))
    for values, value in samples:
        family.add_metric(values, value)
    return family


def _gate(kiosk: Kiosk) -> Iterator[Metric]:
    """What the gate's status says: repeats, scans in flight, the server."""
    p = "passqr_"
    status = kiosk.gate.status
    yield _counter(
        p + "ignored_repeats_total", "Repeats of a code ignored.", [([], status.ignored_repeats)]
    )
    yield _gauge(p + "scans_in_flight", "Scans being validated now.", [([], status.in_flight)])
    up = int(status.server is ServerState.OK)
    yield _gauge(p + "server_up", "1 when PassQR answered the last request.", [([], up)])
    states = [([state.value], int(status.server is state)) for state in ServerState]
    yield _gauge(
        p + "server_state", "PassQR's state as the gate sees it (one is 1).", states, "state"
    )


def _sources(kiosk: Kiosk) -> Iterator[Metric]:
    """Each source: up, its state, what it read, and a camera's decode rate."""
    p = "passqr_"
    sources = kiosk.sources
    up = [([s.name, s.kind], int(s.state is SourceState.READY)) for s in sources]
    yield _gauge(p + "source_up", "1 when the source is reading.", up, "source", "kind")
    states = [
        ([s.name, state.value], int(s.state is state)) for s in sources for state in SourceState
    ]
    yield _gauge(
        p + "source_state", "Each source's state (one is 1 per source).", states, "source", "state"
    )
    reads = [([s.name], s.count) for s in sources]
    yield _counter(p + "source_reads_total", "Payloads each source read.", reads, "source")
    fps: list[tuple[list[str], float]] = []
    for source in sources:
        value = getattr(source, "decode_fps", None)
        if isinstance(value, int | float) and not isinstance(value, bool):
            fps.append(([source.name], float(value)))
    if fps:
        yield _gauge(p + "camera_decode_fps", "Frames decoded per second.", fps, "source")


def _relay(kiosk: Kiosk) -> Iterator[Metric]:
    p = "passqr_"
    relay = kiosk.relay
    label = [relay.description]
    up = int(relay.state is not RelayState.FAULT)
    yield _gauge(p + "relay_up", "1 unless the relay board is in FAULT.", [(label, up)], "relay")
    on = int(relay.state is RelayState.ON)
    yield _gauge(
        p + "relay_on", "1 while the contact is closed (door open).", [(label, on)], "relay"
    )
    pulses = [(label, relay.pulses)]
    yield _counter(p + "relay_pulses_total", "Pulses for admissions.", pulses, "relay")


def _turnstile(kiosk: Kiosk) -> Iterator[Metric]:
    """Issue 16: passages (passed, not_passed, forced), exits, tamper, alarm; contacts up.
    Nothing without ``[[inputs]]``."""
    for name, kind, documentation, samples in kiosk.turnstile.metric_families():
        labels = sorted(samples[0][0]) if samples else []
        rows = [([values[k] for k in labels], value) for values, value in samples]
        make = _counter if kind == "counter" else _gauge
        yield make(name, documentation, rows, *labels)


class _Families(Collector):
    """One scrape: the gate's own metrics, then the running kiosk's."""

    def __init__(self, metrics: Metrics, kiosk: Kiosk | None) -> None:
        self.metrics = metrics
        self.kiosk = kiosk

    def collect(self) -> Iterable[Metric]:
        yield from self.metrics.families()
        if self.kiosk is not None:
            yield from _gate(self.kiosk)
            yield from _sources(self.kiosk)
            yield from _relay(self.kiosk)
            yield from _turnstile(self.kiosk)
