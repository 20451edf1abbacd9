"""Periodic background jobs of a server process.

Each job is a function run every `interval` seconds on a daemon thread of `seamline serve`,
started and stopped with the application. A failing pass is logged and the loop goes on; the
next pass retries. Several server processes each run the same jobs, so a job's work must be
safe to do twice at once (they lock what they change, or claim it first).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)


class PeriodicJob:
    def __init__(self, name: str, interval: float, work: Callable[[], object]):
        self.name, self.interval, self.work = name, interval, work
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"seamline-{name}", daemon=True)

    def start(self) -> PeriodicJob:
        self._thread.start()
        return self

    def stop(self, timeout: float = 60) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.work()
            except Exception:  # noqa: BLE001 - a failed pass must not end the loop
                log.exception("background job failed", job=self.name)
            self._stop.wait(self.interval)
