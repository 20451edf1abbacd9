"""One thread that LISTENs on a PostgreSQL channel and hands each notice's payload to a callback.

PostgreSQL delivers a `pg_notify` at commit to every connection listening on its channel, in
every process and on every machine. Used by the inbox's real-time notices and by the job
queue's workers (a new job wakes them at once). A lost connection is reopened after a second;
notices sent meanwhile are lost, so `on_connect` runs after every (re)connection for the owner
to catch up (refetch, look for due work).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import psycopg
import structlog

log = structlog.get_logger("seamline.listen")


class PostgresListener:
    def __init__(self, url: str, channel: str, handle: Callable[[str], None], *, name: str,
                 on_connect: Callable[[], None] | None = None):
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        self.channel, self.handle, self.on_connect = channel, handle, on_connect
        self._stop = threading.Event()
        self._tried = threading.Event()  # the first connection was made or failed
        self._connected = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    @property
    def connected(self) -> bool:
        """Whether notices are arriving now (False while reconnecting)."""
        return self._connected and not self._stop.is_set()

    def start(self) -> PostgresListener:
        self._thread.start()
        self._tried.wait(10)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True) as connection:
                    connection.execute(f"LISTEN {self.channel}")
                    self._connected = True
                    self._tried.set()
                    if self.on_connect:
                        self.on_connect()
                    while not self._stop.is_set():
                        for notice in connection.notifies(timeout=0.5):
                            self.handle(notice.payload)
            except Exception:  # noqa: BLE001 - reconnect; the owner catches up in on_connect
                self._connected = False
                self._tried.set()
                log.exception("listener lost its connection; reconnecting", channel=self.channel)
                self._stop.wait(1)
