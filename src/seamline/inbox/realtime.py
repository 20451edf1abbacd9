"""Real-time notices for agent consoles and the web chat widget, across server processes.

Services call `notify(session, topics, payload)` inside their transaction; a notice is sent
only if that transaction commits:

- on PostgreSQL (`inbox_realtime_backend` "auto" or "postgres") it is a `pg_notify`, which
  PostgreSQL itself delivers at commit to every process listening (`PostgresListener`, one
  thread per server process): several `seamline serve` workers or machines share it;
- otherwise ("local", and SQLite) it is kept on the session and dispatched in this process
  after the commit.

Each process's `Hub` hands notices to the WebSockets subscribed to their topics
(`conversation:<id>`, `agent:<id>`, `webchat:<customer id>`, `inbox`), through each socket's
own asyncio queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import orjson
import structlog
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from seamline.core import listen

log = structlog.get_logger("seamline.inbox.realtime")
CHANNEL = "seamline_inbox"
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; longer texts are cut (clients fetch them)
MAX_TEXT = 2000
MAX_NOTIFY_BYTES = 7000


class Subscription:
    def __init__(self, hub: Hub, topics: set[str], loop: asyncio.AbstractEventLoop):
        self.hub, self.topics, self.loop = hub, topics, loop
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=10_000)

    def add(self, topic: str) -> None:
        self.hub._add(self, topic)

    def _put(self, payload: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(payload)
        except asyncio.QueueFull:  # a stuck client: drop, it refetches on reconnect
            log.warning("dropping real-time notice for a slow subscriber")

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self.hub._remove(self)


class Hub:
    """This process's subscribers by topic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, set[Subscription]] = defaultdict(set)
        self.use_postgres = False

    def subscribe(self, topics: Iterable[str]) -> Subscription:
        subscription = Subscription(self, set(), asyncio.get_running_loop())
        for topic in topics:
            self._add(subscription, topic)
        return subscription

    def _add(self, subscription: Subscription, topic: str) -> None:
        with self._lock:
            subscription.topics.add(topic)
            self._topics[topic].add(subscription)

    def _remove(self, subscription: Subscription) -> None:
        with self._lock:
            for topic in subscription.topics:
                subscribers = self._topics.get(topic)
                if subscribers is not None:
                    subscribers.discard(subscription)
                    if not subscribers:
                        del self._topics[topic]

    def dispatch(self, topics: Iterable[str], payload: dict[str, Any]) -> None:
        """Hand a notice to this process's subscribers; safe from any thread."""
        with self._lock:
            targets = {s for topic in topics for s in self._topics.get(topic, ())}
        for subscription in targets:
            try:
                subscription.loop.call_soon_threadsafe(subscription._put, payload)
            except RuntimeError:  # its loop closed
                self._remove(subscription)

    def subscriber_count(self) -> int:
        with self._lock:
            return len({s for subs in self._topics.values() for s in subs})


HUB = Hub()


def _short(payload: dict[str, Any]) -> dict[str, Any]:
    message = payload.get("message")
    if isinstance(message, dict) and len(message.get("text") or "") > MAX_TEXT:
        payload = {**payload, "message": {**message, "text": message["text"][:MAX_TEXT], "truncated": True}}
        payload["message"].pop("html", None)
    return payload


def notify(session: Session, topics: Iterable[str], payload: dict[str, Any]) -> None:
    """Send `payload` to `topics` once this session's transaction commits (on PostgreSQL, every
    notice of the transaction goes out with one statement just before the commit: NOTIFY is
    transactional, and a batch's notices cost one round trip)."""
    topics = sorted(set(topics))
    if topics:
        session.info.setdefault("inbox_notices", []).append((topics, _short(payload)))


def _notify_body(topics: list[str], payload: dict[str, Any]) -> str:
    body = orjson.dumps({"t": topics, "p": payload}, default=str).decode()
    if len(body.encode()) > MAX_NOTIFY_BYTES:  # still too big (many files, long headers): ids only
        slim = {k: v for k, v in payload.items() if not isinstance(v, (dict, list))}
        for key in ("message", "conversation"):
            if isinstance(payload.get(key), dict):
                slim[key] = {"id": payload[key].get("id"), "truncated": True}
        body = orjson.dumps({"t": topics, "p": slim}, default=str).decode()
    return body


@event.listens_for(Session, "before_commit")
def _notify_postgres_before_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint's release: its notices wait for the transaction
        return
    if not (session.info.get("inbox_notices") and HUB.use_postgres and session.get_bind().dialect.name == "postgresql"):
        return
    notices = session.info.pop("inbox_notices")
    session.execute(text("SELECT pg_notify(:channel, :body)"),
                    [{"channel": CHANNEL, "body": _notify_body(topics, payload)} for topics, payload in notices])


@event.listens_for(Session, "after_commit")
def _dispatch_after_commit(session: Session) -> None:
    if session.in_nested_transaction():  # a savepoint's release, not the commit
        return
    for topics, payload in session.info.pop("inbox_notices", ()):
        HUB.dispatch(topics, orjson.loads(orjson.dumps(payload, default=str)))


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction) -> None:  # noqa: ANN001
    if not previous_transaction.nested:  # a savepoint's own are dropped by `discard_since`
        session.info.pop("inbox_notices", None)


def mark(session: Session) -> int:
    """Where this session's waiting notices end now (before a savepoint)."""
    return len(session.info.get("inbox_notices", ()))


def discard_since(session: Session, where: int) -> None:
    """Drop the notices added after `mark` (their savepoint was rolled back)."""
    del session.info.get("inbox_notices", [])[where:]


class PostgresListener(listen.PostgresListener):
    """LISTENs on PostgreSQL in a thread and dispatches what arrives to this process's hub."""

    def __init__(self, url: str, hub: Hub = HUB):
        self.hub = hub
        super().__init__(url, CHANNEL, self._dispatch, name="seamline-inbox-listen")

    def _dispatch(self, payload: str) -> None:
        message = orjson.loads(payload)
        self.hub.dispatch(message["t"], message["p"])
