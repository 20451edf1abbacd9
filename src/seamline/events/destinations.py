"""Forwarding events to webhooks: at least once, signed, retried, never in collection's way.

Collection only writes an outbox row (`EventDelivery`) per stored batch and destination, in the
batch's own transaction. The delivery worker (a thread of `seamline serve`, or separate
`seamline events deliver` processes) claims due rows with a lease, POSTs the events, and records
the outcome: delivered, or retried after an exponentially growing, jittered delay, or after the
last attempt moved to the dead-letter list, from where staff can send it again.

Each request carries `X-Seamline-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">`
(the receiver recomputes it with the destination's secret and rejects old `t`) and
`X-Seamline-Delivery: <id>`, the same on every retry, for the receiver to drop repeats. The secret
is stored encrypted (core/crypto.py) and decrypted only to sign; a secret this server's key
cannot open fails the attempt with that reason (`last_error`), and is retried like any failure.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
import orjson
import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.crypto import SecretBox, SecretKeyError, secret_box
from seamline.core.db import Database, DriverSQL
from seamline.core.errors import NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.events.ingest import MESSAGE_TYPES, CheckedEvent
from seamline.events.models import EventDelivery, EventDestination, EventRecord, EventSource

log = structlog.get_logger("seamline.delivery")
LEASE = timedelta(minutes=2)
MAX_BACKOFF = 3600.0


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
            session.add(EventDelivery(destination_id=destination_id, source_id=source.id, message_ids=wanted))


def dead_letters(session: Session, *, destination_id: int, limit: int = 100, before_id: int | None = None) -> list[EventDelivery]:
    query = select(EventDelivery).where(EventDelivery.destination_id == destination_id, EventDelivery.status == "dead")
    if before_id is not None:
        query = query.where(EventDelivery.id < before_id)
    return list(session.scalars(query.order_by(EventDelivery.id.desc()).limit(limit)))


def retry_dead_letter(session: Session, *, destination_id: int, delivery_id: int) -> EventDelivery:
    delivery = session.get(EventDelivery, delivery_id)
    if delivery is None or delivery.destination_id != destination_id:
        raise NotFound(f"Delivery {delivery_id} not found", code="delivery_not_found")
    if delivery.status == "dead":  # retrying twice is a no-op
        delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, utcnow()
    return delivery


# --- delivering ----------------------------------------------------------------------------


@dataclass
class Claimed:
    id: int
    attempts: int
    destination: EventDestination
    body: bytes


def _claim(database: Database, now: datetime, limit: int, box: SecretBox) -> list[Claimed]:
    """Due deliveries, each taken by a conditional update so two workers never both send it. A
    destination's secret stored in clear (or under a fallback key) is sealed anew on the way."""
    claimed: list[Claimed] = []
    with database.read() as session:  # idle polls take no write lock
        due = session.execute(
            select(EventDelivery.id, EventDelivery.next_attempt_at)
            .where(EventDelivery.status == "pending", EventDelivery.next_attempt_at <= now)
            .order_by(EventDelivery.next_attempt_at, EventDelivery.id)
            .limit(limit)
        ).all()
    if not due:
        return claimed
    with database.write() as session:
        for delivery_id, due_at in due:
            taken = session.execute(
                update(EventDelivery)
                .where(EventDelivery.id == delivery_id, EventDelivery.status == "pending",
                       EventDelivery.next_attempt_at == due_at)
                .values(next_attempt_at=now + LEASE)
            ).rowcount
            if not taken:
                continue
            delivery = session.get(EventDelivery, delivery_id)
            destination = session.get(EventDestination, delivery.destination_id)
            try:
                sealed = box.reseal(destination.secret)
            except SecretKeyError:
                sealed = None  # the attempt says why
            if sealed is not None:
                destination.secret = sealed
            records = session.scalars(
                select(EventRecord.payload).where(
                    EventRecord.source_id == delivery.source_id, EventRecord.message_id.in_(delivery.message_ids)
                ).order_by(EventRecord.id)
            ).all()
            body = b'{"batch":[' + b",".join(r.encode() for r in records) + b"]}"
            claimed.append(Claimed(delivery.id, delivery.attempts, destination, body))
    return claimed


def _record(database: Database, claimed: Claimed, error: str | None, settings: Settings) -> None:
    now = utcnow()
    with database.write() as session:
        delivery = session.get(EventDelivery, claimed.id)
        delivery.attempts = claimed.attempts + 1
        if error is None:
            delivery.status, delivery.delivered_at, delivery.last_error = "delivered", now, None
        elif delivery.attempts >= settings.delivery_max_attempts:
            delivery.status, delivery.last_error = "dead", error
            log.warning("delivery dead", delivery_id=delivery.id, destination_id=claimed.destination.id, error=error)
        else:
            delay = min(settings.delivery_backoff_seconds * 2 ** (delivery.attempts - 1), MAX_BACKOFF)
            delivery.next_attempt_at = now + timedelta(seconds=delay * random.uniform(0.8, 1.2))
            delivery.last_error = error


def deliver_due(database: Database, *, settings: Settings, client: httpx.Client, limit: int = 20) -> int:
    """One pass: send what is due; returns how many deliveries were attempted."""
    box = secret_box(settings)
    claimed = _claim(database, utcnow(), limit, box)
    for item in claimed:
        stamp = int(time.time())
        try:
            signature = sign(box.open(item.destination.secret), stamp, item.body)
            response = client.post(
                item.destination.url, content=item.body, timeout=settings.delivery_timeout_seconds,
                headers={"Content-Type": "application/json", "User-Agent": "Seamline-Webhooks/1",
                         "X-Seamline-Signature": signature, "X-Seamline-Delivery": str(item.id)},
            )
            error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}: {response.text[:200]}"
        except SecretKeyError as exc:
            error = f"{exc.code}: {exc.message}"[:500]
            log.error("destination secret unreadable", destination_id=item.destination.id, error=exc.message)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        _record(database, item, error, settings)
    return len(claimed)


class DeliveryWorker:
    """The embedded delivery loop: a daemon thread, polling every `idle` seconds when idle."""

    def __init__(self, database: Database, settings: Settings, *, idle: float = 0.5):
        self.database, self.settings, self.idle = database, settings, idle
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seamline-delivery", daemon=True)

    def start(self) -> "DeliveryWorker":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.settings.delivery_timeout_seconds + 5)

    def _run(self) -> None:
        with httpx.Client() as client:
            while not self._stop.is_set():
                try:
                    busy = deliver_due(self.database, settings=self.settings, client=client)
                except Exception:  # noqa: BLE001 - a broken pass must not end the loop
                    log.exception("delivery pass failed")
                    busy = 0
                if not busy:
                    self._stop.wait(self.idle)
