"""The store on two dedicated threads, a writer and a reader, awaited from the event loop.

Why one writer thread: SQLite serialises writes anyway, so more threads would
only contend for its lock and the GIL; one long-lived connection keeps its
statement cache warm; and the event loop never blocks on sqlite, not even
for the busy wait when another process (a CLI `create-key`, a second
server) holds the write lock.

Why a reader thread of its own: a write waiting for another process's lock
holds its thread for the whole wait. With reads queued behind it, an 8 s
lock held elsewhere stalled every GET too. Reads go to a second, read-only
connection, which WAL mode never makes wait for a writer.

Why a deadline per write: each write may wait for the lock `lock_wait`
seconds from when it was submitted, queueing included; past that it fails
with `DatabaseBusyError` (a 503 with Retry-After), so a burst of writes behind
a held lock all answer within `lock_wait` instead of one after the other.

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
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from scanner.server.errors import DatabaseBusyError, DatabaseFullError
from scanner.server.store import Answer, IdempotencyScope, Operation, Store

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a write waits for a lock held by another connection before a 503.
LOCK_WAIT = 2.0
_BUSY_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
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

    def __init__(self, name: str = "passqr-db") -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
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


def _busy(err: sqlite3.OperationalError) -> bool:
    return (err.sqlite_errorcode & 0xFF) in _BUSY_CODES


class Database:
    """Owns the two worker threads and the `Store` living on each.

    `store` is the writer's; `read` runs a function on the reader's.
    """

    def __init__(
        self,
        writer: DatabaseWorker,
        store: Store,
        reader: DatabaseWorker,
        read_store: Store,
        *,
        lock_wait: float = LOCK_WAIT,
    ) -> None:
        self._worker = writer
        self.store = store
        self._reader = reader
        self._read_store = read_store
        self.lock_wait = lock_wait

    @classmethod
    async def open(cls, path: Path, *, lock_wait: float = LOCK_WAIT) -> Database:
        """Open the database (writer first: it creates the file and schema) on new threads.

        Raises:
            StoreOpenError: the database cannot be opened or written.
        """
        writer = DatabaseWorker("passqr-db")
        try:
            store = await writer.submit(Store.open, (path,))
        except BaseException:
            writer.stop()
            raise
        reader = DatabaseWorker("passqr-db-read")
        try:
            read_store = await reader.submit(Store.open_reader, (path,))
            await reader.submit(read_store.wait_for_lock, (lock_wait,))
        except BaseException:
            reader.stop()
            await writer.submit(store.close, ())
            writer.stop()
            raise
        return cls(writer, store, reader, read_store, lock_wait=lock_wait)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the writer's thread.

        Raises:
            DatabaseBusyError: another connection held a lock too long.
        """
        return await self._translated(self._worker.submit(fn, args))

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(read_store, *args)` on the reader's thread (it must not write).

        Raises:
            DatabaseBusyError: another connection held a lock too long.
        """
        return await self._translated(self._reader.submit(fn, (self._read_store, *args)))

    async def execute(self, operation: Operation, scope: IdempotencyScope | None) -> Answer:
        """Run a write in its own transaction (see `Store.execute`) within `lock_wait`.

        Raises:
            DatabaseBusyError: the write lock was not had within `lock_wait` of this call.
            StoreError: whatever the operation raises.
        """
        deadline = time.monotonic() + self.lock_wait
        return await self.call(self._execute_by, deadline, operation, scope)

    def _execute_by(
        self, deadline: float, operation: Operation, scope: IdempotencyScope | None
    ) -> Answer:
        """On the writer's thread: wait for the lock only for what is left of the deadline."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise DatabaseBusyError("the write lock was not had in time (queued behind others)")
        self.store.wait_for_lock(left)
        return self.store.execute(operation, scope)

    @staticmethod
    async def _translated(future: asyncio.Future[T]) -> T:
        try:
            return await future
        except sqlite3.OperationalError as err:
            if _busy(err):
                raise DatabaseBusyError(str(err)) from err
            if err.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL:
                raise DatabaseFullError(str(err)) from err
            raise

    async def close(self) -> None:
        """Close both connections (the writer last, checkpointing the WAL) and stop the threads."""
        try:
            await self._reader.submit(self._read_store.close, ())
        finally:
            self._reader.stop()
            try:
                await self.call(self.store.close)
            finally:
                self._worker.stop()
