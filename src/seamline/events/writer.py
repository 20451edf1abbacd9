"""Group commit for collection: one writer thread per server process.

Request handlers hand their checked events to the writer and wait (without holding a thread);
the writer stores everything that is waiting in one transaction, commits once, then answers
each request. Under load, one commit (and on SQLite one WAL sync) serves many requests, and
requests never spin on SQLite's busy lock. An event is still acknowledged only after its
commit. If a group fails, each request in it is stored on its own, so one bad request cannot
fail the others.
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


class BatchWriter:
    def __init__(self, database: Database, rules: IdentifierRules, *, max_events: int = 5000):
        self.database, self.rules, self.max_events = database, rules, max_events
        self._queue: queue.Queue[_Request | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _ensure_started(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="seamline-event-writer", daemon=True)
                    self._thread.start()

    def submit(self, source: EventSource, events: list[CheckedEvent], received_at: datetime) -> Future:
        self._ensure_started()
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
        while True:
            first = self._queue.get()
            if first is None:
                return
            group, count = [first], len(first.events)
            while count < self.max_events:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this group, then stop
                    break
                group.append(item)
                count += len(item.events)
            self._write(group)

    def _write(self, group: list[_Request]) -> None:
        try:
            outcomes = self.database.run_write(
                lambda session: [
                    service.store_events(session, source=r.source, events=r.events, received_at=r.received_at, rules=self.rules)
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
