"""Forwarding events to webhooks: at least once, signed, retried, never in collection's way.

Collection writes a delivery row (`EventDelivery`) per stored batch and destination and enqueues
its job (`DELIVER`, queue `webhooks`), both in the batch's own transaction. A worker of the job
queue (core/queue) POSTs the events and records the outcome on the row: delivered, or retried
after an exponentially growing, jittered delay (`SEAMLINE_DELIVERY_BACKOFF_SECONDS`), or after
the last attempt (`SEAMLINE_DELIVERY_MAX_ATTEMPTS`) moved to the destination's dead-letter list,
from where staff can send it again (which enqueues it again).

Each request carries `X-Seamline-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
(the receiver recomputes it with the destination's secret and rejects old `t`) and
`X-Seamline-Delivery: <id>`, the same on every retry, for the receiver to drop repeats (a worker
killed between the POST and recording it sends it again). The secret is stored encrypted
(core/crypto.py) and decrypted only to sign; a secret this server's key cannot open fails the
attempt with that reason (`last_error`), and is retried like any failure.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.crypto import SecretBox, SecretKeyError, secret_box
from seamline.core.db import Database, DriverSQL
from seamline.core.queue import Retry, Task, TaskRegistry, run_due
from seamline.core.errors import NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.events.ingest import MESSAGE_TYPES, CheckedEvent
from seamline.events.models import EventDelivery, EventDestination, EventRecord, EventSource

log = structlog.get_logger("seamline.delivery")
MAX_BACKOFF = 3600.0
#: One delivery row's sending. Its attempts are counted on the row (the settings say how many);
#: the queue's own limit is only a backstop for a handler that keeps crashing.
DELIVER = Task("events.deliver", queue="webhooks", max_attempts=1000)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, header: str, body: bytes, *, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does (shipped for receivers written in Python, and for the tests)."""
    try:
        parts = dict(part.split("=", 1) for part in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), header)


# --- configuration -------------------------------------------------------------------------


def create_destination(
    session: Session, *, settings: Settings, name: str, url: str, secret: str | None = None, types: list[str] | None = None
) -> tuple[EventDestination, str]:
    """The new destination and its signing secret (given, or generated), which is stored only
    encrypted: the caller shows it once."""
    if not url.startswith(("http://", "https://")):
        raise Unprocessable("A destination URL must be http(s)", code="invalid_url", details={"url": url[:200]})
    unknown = sorted(set(types or []) - set(MESSAGE_TYPES))
    if unknown:
        raise Unprocessable("Unknown event types", code="unknown_event_type", details={"unknown": unknown})
    secret = secret or secrets.token_urlsafe(32)
    destination = EventDestination(name=name, url=url, secret=secret_box(settings).seal(secret), types=types or None)
    session.add(destination)
    session.flush()
    return destination, secret


def list_destinations(session: Session) -> list[EventDestination]:
    return list(session.scalars(select(EventDestination).order_by(EventDestination.id)))


def enqueue(session: Session, *, source: EventSource, events: list[CheckedEvent]) -> None:
    """The outbox rows of a stored batch: one per enabled destination that wants some of it."""
    # Through the driver: this runs for every collected batch, most often to find nothing.
    enabled = DriverSQL(session).execute("SELECT id, types FROM event_destination WHERE enabled = ?", (True,)).fetchall()
    for destination_id, types in enabled:
        types = orjson.loads(types) if isinstance(types, str) else types  # JSON text on SQLite
        wanted = [e.message_id for e in events if types is None or e.type in types]
        if wanted:
            delivery = EventDelivery(destination_id=destination_id, source_id=source.id, message_ids=wanted)
            session.add(delivery)
            OUTBOX.enqueue(session, delivery)


def dead_letters(session: Session, *, destination_id: int, limit: int = 100, before_id: int | None = None) -> list[EventDelivery]:
    query = select(EventDelivery).where(EventDelivery.destination_id == destination_id, EventDelivery.status == "dead")
    if before_id is not None:
        query = query.where(EventDelivery.id < before_id)
    return list(session.scalars(query.order_by(EventDelivery.id.desc()).limit(limit)))


def retry_dead_letter(session: Session, *, destination_id: int, delivery_id: int) -> EventDelivery:
    delivery = session.get(EventDelivery, delivery_id)
    if delivery is None or delivery.destination_id != destination_id:
        raise NotFound(f"Delivery {delivery_id} not found", code="delivery_not_found")
    OUTBOX.retry_dead(session, delivery)
    return delivery


# --- delivering ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    id: int
    attempts: int
    url: str
    secret: str
    body: bytes


def retry_delay(attempts: int, settings: Settings) -> timedelta | None:
    """When to try again after `attempts` failed ones (exponential from
    `delivery_backoff_seconds`, ±20 % jitter, at most an hour), or None: that was the last."""
    if attempts >= settings.delivery_max_attempts:
        return None
    return timedelta(seconds=min(settings.delivery_backoff_seconds * 2 ** (attempts - 1), MAX_BACKOFF) * random.uniform(0.8, 1.2))


def post_signed(client: httpx.Client, url: str, stored_secret: str, body: bytes, *, delivery: str, box: SecretBox,
                settings: Settings) -> str | None:
    """POST a signed webhook body; None when the receiver took it (2xx), else why not. The
    secret is opened only to sign."""
    try:
        signature = sign(box.open(stored_secret), int(time.time()), body)
        response = client.post(
            url, content=body, timeout=settings.delivery_timeout_seconds,
            headers={"Content-Type": "application/json", "User-Agent": "Seamline-Webhooks/1",
                     "X-Seamline-Signature": signature, "X-Seamline-Delivery": delivery},
        )
    except SecretKeyError as exc:
        log.error("webhook secret unreadable", delivery=delivery, error=exc.message)
        return f"{exc.code}: {exc.message}"[:500]
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"[:500]
    return None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}: {response.text[:200]}"


@dataclass(frozen=True)
class WebhookOutbox:
    """A table of webhook deliveries sent by the job queue, one `task` job per row: the event
    destinations' here, the inbox's webhooks (`inbox/webhooks.py`). Rows have `status`
    (pending, delivered, dead), `attempts`, `last_error`, `next_attempt_at` and `delivered_at`;
    what differs is how a row finds its hook (`hook_of`: url and sealed secret) and its body."""

    task: Task
    model: type
    hook_of: Callable[[Session, Any], Any]
    body_of: Callable[[Session, Any], bytes]
    #: The `X-Seamline-Delivery` of a row id, the same on every attempt.
    delivery_id: Callable[[int], str] = str

    def enqueue(self, session: Session, row: Any) -> None:
        session.flush()
        self.task.enqueue(session, {"delivery_id": row.id})

    def retry_dead(self, session: Session, row: Any) -> None:
        if row.status == "dead":  # retrying twice is a no-op
            row.status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
            self.enqueue(session, row)

    def _prepare(self, session: Session, row_id: int, box: SecretBox) -> Prepared | None:
        """What to send for a pending row (None when it was delivered or given up meanwhile).
        A secret stored in clear (or under a fallback key) is sealed anew on the way."""
        row = session.get(self.model, row_id)
        if row is None or row.status != "pending":
            return None
        hook = self.hook_of(session, row)
        try:
            sealed = box.reseal(hook.secret)
        except SecretKeyError:
            sealed = None  # the attempt says why
        if sealed is not None:
            hook.secret = sealed
        return Prepared(row.id, row.attempts, hook.url, hook.secret, self.body_of(session, row))

    def _record(self, session: Session, prepared: Prepared, error: str | None, settings: Settings) -> timedelta | None:
        """The attempt's outcome on the row; the delay before the next attempt, if there is one."""
        now = utcnow()
        row = session.get(self.model, prepared.id)
        row.attempts, row.last_error = prepared.attempts + 1, error
        if error is None:
            row.status, row.delivered_at = "delivered", now
            return None
        delay = retry_delay(row.attempts, settings)
        if delay is None:
            row.status = "dead"
            log.warning("webhook delivery gave up", task=self.task.name, delivery_id=row.id, error=error)
            return None
        row.next_attempt_at = now + delay
        return delay

    def deliver(self, database: Database, row_id: int, *, settings: Settings, client: httpx.Client) -> None:
        """The job: one attempt (never inside a transaction), recorded on the row; `Retry` when
        another is due later, nothing more after the last (the row is a dead letter)."""
        box = secret_box(settings)
        prepared = database.run_write(lambda session: self._prepare(session, row_id, box))
        if prepared is None:
            return
        error = post_signed(client, prepared.url, prepared.secret, prepared.body, delivery=self.delivery_id(prepared.id),
                            box=box, settings=settings)
        delay = database.run_write(lambda session: self._record(session, prepared, error, settings))
        if delay is not None:
            raise Retry(delay, error or "")

    def register(self, tasks: TaskRegistry, database: Database, settings: Settings, *, client: httpx.Client | None = None) -> None:
        """Bind the task for this process (one HTTP client, its connections kept, for every worker thread)."""
        shared = client or httpx.Client()
        tasks.add(self.task, lambda _context, args: self.deliver(database, args["delivery_id"], settings=settings, client=shared))

    def deliver_due(self, database: Database, *, settings: Settings, client: httpx.Client, limit: int = 20) -> int:
        """One pass over the due deliveries, here and now (tests and cron; the workers do it
        otherwise): how many were attempted."""
        tasks = TaskRegistry()
        self.register(tasks, database, settings, client=client)
        return run_due(database, tasks, self.task.queue, limit=limit, task=self.task.name)


def _batch_body(session: Session, delivery: EventDelivery) -> bytes:
    records = session.scalars(
        select(EventRecord.payload).where(
            EventRecord.source_id == delivery.source_id, EventRecord.message_id.in_(delivery.message_ids)
        ).order_by(EventRecord.id)
    ).all()
    return b'{"batch":[' + b",".join(r.encode() for r in records) + b"]}"


OUTBOX = WebhookOutbox(DELIVER, EventDelivery, lambda session, row: session.get(EventDestination, row.destination_id), _batch_body)
register_tasks = OUTBOX.register
deliver_due = OUTBOX.deliver_due
