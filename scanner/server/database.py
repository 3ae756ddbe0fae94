"""The store on a dedicated thread, awaited from the event loop.

Why one thread: SQLite serialises writes anyway, so more threads would only
contend for its lock and the GIL; one long-lived connection keeps its
statement cache warm; and the event loop never blocks on sqlite, not even
for the `busy_timeout` when another process (a CLI `create-key`, a second
server) holds the write lock.

Why not `run_in_executor`: one loop wake-up per job made the thread hop cost
more than the SQLite work (2,300 validations/s against 3,700 when calling
sqlite on the loop, see docs/benchmarks-server.md). This worker drains every
queued job, runs them, and hands all results back with one
`call_soon_threadsafe`, which got the throughput of the direct calls back.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from scanner.server.store import Answer, IdempotencyScope, Operation, Store

logger = logging.getLogger(__name__)

T = TypeVar("T")
_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]
_Outcome = tuple["asyncio.Future[Any]", Any, BaseException | None]


def _resolve(outcomes: list[_Outcome]) -> None:
    """On the loop: complete the futures of a batch (skipping cancelled ones)."""
    for future, result, error in outcomes:
        if future.cancelled():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)


class DatabaseWorker:
    """One thread running submitted calls in order, completing them in batches."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="passqr-db", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., T], args: tuple[Any, ...]) -> asyncio.Future[T]:
        """Queue `fn(*args)`; the returned future completes on the calling loop."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, fn, args))
        return future

    def _run(self) -> None:
        stopping = False
        while not stopping:
            job = self._jobs.get()
            batch: list[_Job] = []
            while job is not None:
                batch.append(job)
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
            else:
                stopping = True
            outcomes: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
            for loop, future, fn, args in batch:
                try:
                    outcome: _Outcome = (future, fn(*args), None)
                except BaseException as err:  # noqa: BLE001 - handed to the awaiting request
                    outcome = (future, None, err)
                outcomes.setdefault(loop, []).append(outcome)
            for loop, done in outcomes.items():
                try:
                    loop.call_soon_threadsafe(_resolve, done)
                except RuntimeError:
                    logger.warning("Event loop closed before %d database result(s)", len(done))

    def stop(self) -> None:
        """Finish the queued jobs, then end the thread and join it."""
        self._jobs.put(None)
        self._thread.join()


class Database:
    """Owns the worker thread and the one `Store` that lives on it."""

    def __init__(self, worker: DatabaseWorker, store: Store) -> None:
        self._worker = worker
        self.store = store

    @classmethod
    async def open(cls, path: Path) -> Database:
        """Open the database on a new thread.

        Raises:
            StoreOpenError: the database cannot be opened or written.
        """
        worker = DatabaseWorker()
        try:
            store = await worker.submit(Store.open, (path,))
        except BaseException:
            worker.stop()
            raise
        return cls(worker, store)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the database thread."""
        return await self._worker.submit(fn, args)

    async def execute(self, operation: Operation, scope: IdempotencyScope | None) -> Answer:
        """Run a write in its own transaction (see `Store.execute`)."""
        return await self.call(self.store.execute, operation, scope)

    async def close(self) -> None:
        """Close the connection (checkpointing the WAL) and stop the thread."""
        try:
            await self.call(self.store.close)
        finally:
            self._worker.stop()
