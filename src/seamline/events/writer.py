"""Group commit for collection: one writer thread per server process.

Request handlers hand their checked events to the writer and wait (without holding a thread);
the writer stores everything that is waiting in one transaction, commits once, then answers
each request. Under load, one commit (and on SQLite one WAL sync) serves many requests, and
requests never spin on SQLite's busy lock. An event is still acknowledged only after its
commit. If a group fails, each request in it is stored on its own, so one bad request cannot
fail the others.

Between groups the same thread applies the identity work the stored batches queued (see
`service.feed_identity_graph`): a few rows after each group, so a peak of traffic is answered
first, and everything as soon as no request is waiting. Rows left by a previous run are applied
when the writer starts. A row that fails on its own is set aside with its error.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

import structlog

from seamline.core.db import Database
from seamline.core.errors import describe_error
from seamline.customers.identifiers import IdentifierRules
from seamline.events import service
from seamline.events.ingest import CheckedEvent
from seamline.events.models import EventSource

log = structlog.get_logger("seamline.events.writer")


@dataclass
class _Request:
    source: EventSource
    events: list[CheckedEvent]
    received_at: datetime
    done: Future


_FLUSH = object()  # a queue marker: apply everything, then signal idle


class BatchWriter:
    def __init__(self, database: Database, rules: IdentifierRules, *, max_events: int = 5000, feed_rows: int = 20):
        self.database, self.rules, self.max_events, self.feed_rows = database, rules, max_events, feed_rows
        self._queue: queue.Queue[_Request | object | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self.linked = service.LinkedPairs()  # only this writer's thread touches it

    def start(self) -> BatchWriter:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="seamline-event-writer", daemon=True)
                    self._thread.start()
        return self

    def wait_idle(self, timeout: float = 30) -> bool:
        """Until every submitted batch is stored and its identity work applied (for tests and
        shutdown); False on timeout."""
        self.start()
        self._idle.clear()
        self._queue.put(_FLUSH)
        return self._idle.wait(timeout)

    def submit(self, source: EventSource, events: list[CheckedEvent], received_at: datetime) -> Future:
        self.start()
        done: Future = Future()
        self._queue.put(_Request(source, events, received_at, done))
        return done

    async def store(self, source: EventSource, events: list[CheckedEvent], received_at: datetime) -> service.StoreOutcome:
        return await asyncio.wrap_future(self.submit(source, events, received_at))

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=30)

    def _run(self) -> None:
        self._feed(until_busy=True)
        while True:
            first = self._queue.get()
            if first is None:
                return
            if first is _FLUSH:
                self._feed(until_busy=False)
                self._idle.set()
                continue
            group, count = [first], len(first.events)
            while count < self.max_events:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None or item is _FLUSH:
                    self._queue.put(item)  # finish this group first
                    break
                group.append(item)
                count += len(item.events)
            self._write(group)
            self._feed(until_busy=True)

    def _feed(self, *, until_busy: bool) -> None:
        """Apply queued identity work: one chunk, then more while no request waits (or all of
        it when `until_busy` is False)."""
        while True:
            try:
                with self.database.read() as session:
                    ids = service.pending_identity_work(session, limit=self.feed_rows)
                if not ids:
                    return
                self._feed_rows(ids)
            except Exception:  # noqa: BLE001 - the writer thread must survive; retried next round
                log.exception("identity feed failed")
                return
            if until_busy and not self._queue.empty():
                return

    def _feed_rows(self, ids: list[int]) -> None:
        try:
            outcome = self.database.run_write(lambda s: service.feed_identity_graph(s, ids=ids, rules=self.rules))
            self.linked.add_all(outcome.linked)  # only once committed
        except Exception as exc:  # noqa: BLE001 - isolate the failing row below
            if len(ids) > 1:
                for row_id in ids:
                    self._feed_rows([row_id])
                return
            error = describe_error(exc)  # kept on the row: no SQL statement (the log has the traceback)
            log.error("identity work set aside", row_id=ids[0], error=error, exc_info=exc)
            self.database.run_write(lambda s: service.set_aside_identity_work(s, row_id=ids[0], error=error))

    def _write(self, group: list[_Request]) -> None:
        try:
            outcomes = self.database.run_write(
                lambda session: [
                    service.store_events(session, source=r.source, events=r.events, received_at=r.received_at, linked=self.linked)
                    for r in group
                ]
            )
        except Exception as exc:  # noqa: BLE001 - isolate the failing request below
            if len(group) == 1:
                group[0].done.set_exception(exc)
                return
            log.warning("group write failed, writing requests one by one", requests=len(group), error=str(exc))
            for request in group:
                self._write([request])
            return
        for request, outcome in zip(group, outcomes):
            request.done.set_result(outcome)
