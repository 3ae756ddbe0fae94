"""Everything a running kiosk owns, started and stopped in a safe order.

Shared by the Textual UI and headless mode, so both open the same devices the
same way: journal first (nothing is decided without it), relay forced OFF,
then the sources. Stopping runs the other way round and always ends with the
relay OFF.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import sqlite3
from collections.abc import Callable

from scanner.api import PassQRClient
from scanner.api_protocol import PassQRApi
from scanner.budget import Bucket, Budget, Priority
from scanner.config import Config, KeyboardSourceConfig, parse_listen
from scanner.errors import APIError
from scanner.gpio_input import build_inputs
from scanner.journal import Journal
from scanner.metrics import Metrics
from scanner.models import RawScan, utcnow
from scanner.offline import Catalog, Replayer
from scanner.pipeline import Gate
from scanner.relay import Relay, build_channel_twin, build_relay
from scanner.sound import AlsaSink, BellSink, Cue, RelaySink, Sink, Sounder
from scanner.sources import KeyboardSource, Source, build_source
from scanner.status import ServerState, server_status
from scanner.turnstile import Turnstile

_log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 60.0
"""How often the server is probed while it answers."""
PROBE_RETRY_S = 3.0
"""How often it is probed while it does not (unreachable, refusing, faulty): the gate
shows it back within seconds of its return, not at the next minute."""
RETENTION_INTERVAL_S = 3600.0


class Kiosk:
    """One gate's devices, client, journal and decision pipeline.

    Args:
        config: the validated configuration.
        api_key: the PassQR key (from :func:`scanner.config.load_api_key`).
        headless: keyboard sources read standard input instead of the UI.
        client: a ready client (tests, the demo); built from ``config.api`` if None.
        relay: a relay driver; built from ``config.relay`` if None.
        sources: the inputs; built from ``config.sources`` if None.
    """

    def __init__(
        self,
        config: Config,
        *,
        api_key: str,
        headless: bool = False,
        client: PassQRApi | None = None,
        relay: Relay | None = None,
        sources: list[Source] | None = None,
    ) -> None:
        self.config = config
        self.client: PassQRApi = client or PassQRClient.from_config(config.api, api_key)
        self.journal = Journal(config.journal.path)
        self.relay = relay or build_relay(config.relay)
        self.sources = (
            sources
            if sources is not None
            else [build_source(s, headless=headless) for s in config.sources]
        )
        api = config.api
        self.budget = Budget.from_config(api)
        self.replayer = Replayer(self.client, self.journal, self.budget)
        self.catalog = Catalog(
            self.client, self.journal, self.budget, config.offline.sync_interval_s
        )
        self.gate = Gate(
            config=config.gate,
            validator=self.client,
            journal=self.journal,
            relay=self.relay,
            policy=config.offline.policy,
            budget=self.budget,
            live_wait_s=api.live_wait_s,
            on_offline_admission=self.replayer.wake,
            on_server_back=self.replayer.wake,
            replay_code=self.replayer.replay_code,
            min_free_bytes=config.journal.min_free_kb * 1024,
        )
        self.metrics = Metrics(queue_length=lambda: self.replayer.status.pending)
        self.gate.subscribe(self.metrics.observe)
        self.turnstile = Turnstile(  # the Pi's own contacts (issue 16); idle without [[inputs]]
            config=config.gate,
            inputs=build_inputs(config.inputs),
            journal=self.journal,
            relay=self.relay,
        )
        self.gate.subscribe(self.turnstile.observe)
        self.sounder: Sounder | None = None
        sink = self._sound_sink()
        if sink is not None:
            self.use_sound(sink)
        self._metrics_server: asyncio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    def _sound_sink(self) -> Sink | None:
        sound = self.config.sound
        if sound.type == "alsa":
            return AlsaSink(sound.device)
        if sound.type == "relay":
            return RelaySink(build_channel_twin(self.config.relay, self.relay, sound.channel))
        return None  # none, or bell: the UI brings the terminal (use_bell)

    def use_sound(self, sink: Sink) -> None:
        """Sound every decision's cue on ``sink`` (call before :meth:`start`)."""
        self.sounder = Sounder(sink, [Cue(c) for c in self.config.sound.cues])
        self.gate.subscribe(self.sounder.observe)

    def use_bell(self, ring: Callable[[], None]) -> None:
        """``[sound] type = "bell"``: the UI's terminal bell."""
        if self.config.sound.type == "bell" and self.sounder is None:
            self.use_sound(BellSink(ring))

    @property
    def keyboard(self) -> KeyboardSource | None:
        """The keyboard source the UI feeds keystrokes to, if one is configured."""
        for source in self.sources:
            if isinstance(source, KeyboardSource):
                return source
        return None

    def submit(self, raw: RawScan) -> None:
        self.gate.submit(raw)

    async def start(self) -> None:
        """Open the journal, force the relay OFF, start the sources and the server probe.

        Raises:
            ConfigError: the journal cannot be opened.
        """
        await self.journal.open()
        atexit.register(self.relay.off_now)
        await self.relay.start()
        if self.sounder is not None:
            await self.sounder.start()
        await self.gate.load_counts()
        await self.turnstile.start()
        for source in self.sources:
            self._tasks.append(
                asyncio.create_task(self._run_source(source), name=f"source-{source.name}")
            )
        self._tasks.append(asyncio.create_task(self._probe_loop(), name="server-probe"))
        self._tasks.append(asyncio.create_task(self._retention_loop(), name="retention"))
        self._tasks.append(asyncio.create_task(self.replayer.run(), name="replay"))
        if self.config.metrics.listen:
            host, port = parse_listen(self.config.metrics.listen)
            try:
                self._metrics_server = await self.metrics.serve(host, port, self)
            except OSError as err:
                _log.error("metrics: cannot listen on %s: %s", self.config.metrics.listen, err)
        if self.config.offline.policy == "allow-known":
            await self.catalog.load()
            self._tasks.append(asyncio.create_task(self.catalog.run(), name="catalog-sync"))
        self._started = True

    async def _run_source(self, source: Source) -> None:
        try:
            await source.run(self.submit)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - one broken source must not end the kiosk
            _log.exception("source %s stopped", source.name)

    async def sources_done(self) -> None:
        """Wait until every source has ended by itself (stdin closed, script over)."""
        sources = self._tasks[: len(self.sources)]
        if sources:
            await asyncio.wait(sources)

    async def probe(self) -> None:
        """A harmless GET, so the status line knows the server before the first scan."""
        await self.budget.acquire(Bucket.READ, Priority.BACKGROUND)
        asked_at = self.gate.now()
        try:
            await self.client.list_templates(limit=1)
        except APIError as err:
            self.gate.note_server(*server_status(err), asked_at=asked_at)
        else:
            self.gate.note_server(ServerState.OK, asked_at=asked_at)
            self.replayer.wake()

    async def prune(self) -> int:
        """Apply the journal's retention (``keep_days``, ``max_rows``) now."""
        journal = self.config.journal
        try:
            deleted = await self.journal.prune(
                keep_days=journal.keep_days, max_rows=journal.max_rows, now=utcnow()
            )
            deleted += await self.journal.prune_events(
                keep_days=journal.keep_days, max_rows=journal.max_rows, now=utcnow()
            )
        except sqlite3.Error as err:
            _log.warning("journal retention not applied: %s", err)
            return 0
        if deleted:
            _log.info("journal retention: %d old rows pruned", deleted)
        return deleted

    async def _retention_loop(self) -> None:
        while True:
            await self.prune()
            await asyncio.sleep(RETENTION_INTERVAL_S)

    async def _probe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.probe()
            # Every PROBE_INTERVAL_S while the server is OK; every PROBE_RETRY_S from
            # the moment a scan or a probe finds it is not.
            due = loop.time() + PROBE_INTERVAL_S
            while True:
                await asyncio.sleep(PROBE_RETRY_S)
                if self.gate.status.server is not ServerState.OK or loop.time() >= due:
                    break

    async def stop(self) -> None:
        """Stop reading, let scans in flight finish (bounded), relay OFF, close everything."""
        if self._metrics_server is not None:
            self._metrics_server.close()
            await self._metrics_server.wait_closed()
            self._metrics_server = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.gate.drain(grace_s=self.config.api.timeout_s + 1)
        await self.turnstile.stop()  # before the relay closes: an exit pulse may be under way
        if self.sounder is not None:
            await self.sounder.close()  # a buzzer channel shares the door relay's port
        await self.relay.close()
        atexit.unregister(self.relay.off_now)
        await self.client.aclose()
        # Also after a failed start: the journal's worker thread must not outlive us.
        await self.journal.close()
        self._started = False


def has_keyboard(config: Config) -> bool:
    return any(isinstance(s, KeyboardSourceConfig) for s in config.sources)
