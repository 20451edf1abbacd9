"""Webhooks out for conversation and message events: an outbox written in the event's own
transaction, sent by a worker with retries, signed as the event destinations are
(`X-Seamline-Signature: t=<unix time>,v1=<HMAC-SHA256 of "<t>.<body>">`, `events.destinations.sign`).
Secrets are stored encrypted (core/crypto.py) and decrypted only to sign, as the destinations'.

Event types: conversation.created, conversation.assigned, conversation.status_changed,
conversation.merged, conversation.sla_breached, message.created, survey.answered.
"""

from __future__ import annotations

import random
import secrets
import time
from datetime import timedelta
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.crypto import SecretKeyError, secret_box
from seamline.core.db import Database
from seamline.core.errors import NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.events.destinations import MAX_BACKOFF, sign
from seamline.inbox.models import InboxWebhook, InboxWebhookDelivery

log = structlog.get_logger("seamline.inbox.webhooks")
EVENT_TYPES = (
    "conversation.created", "conversation.assigned", "conversation.status_changed", "conversation.merged",
    "conversation.sla_breached", "message.created", "survey.answered",
)
LEASE = timedelta(minutes=2)


def create_webhook(session: Session, *, settings: Settings, url: str, types: list[str],
                   secret: str | None = None) -> tuple[InboxWebhook, str]:
    """The new webhook and its signing secret (given, or generated), stored only encrypted."""
    if not url.startswith(("http://", "https://")):
        raise Unprocessable("A webhook URL must be http(s)", code="invalid_url", details={"url": url[:200]})
    unknown = sorted(set(types) - set(EVENT_TYPES))
    if unknown:
        raise Unprocessable("Unknown event types", code="unknown_event_type", details={"unknown": unknown, "known": list(EVENT_TYPES)})
    secret = secret or secrets.token_urlsafe(32)
    webhook = InboxWebhook(url=url, types=types, secret=secret_box(settings).seal(secret))
    session.add(webhook)
    session.flush()
    return webhook, secret


def emit(session: Session, event_type: str, data: dict[str, Any]) -> None:
    """Queue `event_type` for every active webhook that wants it (in the caller's transaction)."""
    webhooks = session.info.get("inbox_webhooks")
    if webhooks is None:  # read once per transaction
        webhooks = session.info["inbox_webhooks"] = [
            (w.id, set(w.types or [])) for w in session.scalars(select(InboxWebhook).where(InboxWebhook.active.is_(True)))
        ]
    if not webhooks:
        return
    payload = orjson.loads(orjson.dumps({"type": event_type, "occurred_at": utcnow(), "data": data}, default=str))
    for webhook_id, types in webhooks:
        if not types or event_type in types:
            session.add(InboxWebhookDelivery(webhook_id=webhook_id, event_type=event_type, payload=payload))


def dead_letters(session: Session, *, webhook_id: int, limit: int = 100, before_id: int | None = None) -> list[InboxWebhookDelivery]:
    query = select(InboxWebhookDelivery).where(InboxWebhookDelivery.webhook_id == webhook_id, InboxWebhookDelivery.status == "dead")
    if before_id is not None:
        query = query.where(InboxWebhookDelivery.id < before_id)
    return list(session.scalars(query.order_by(InboxWebhookDelivery.id.desc()).limit(limit)))


def retry(session: Session, *, webhook_id: int, delivery_id: int) -> InboxWebhookDelivery:
    delivery = session.get(InboxWebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook_id:
        raise NotFound(f"Delivery {delivery_id} not found", code="delivery_not_found")
    delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, utcnow()
    return delivery


def deliver_due(database: Database, *, settings: Settings, client: httpx.Client, limit: int = 20) -> int:
    """Send what is due: claim with a lease (so parallel workers never send the same row at
    once), POST, record delivered or the next attempt (exponential, jittered; dead at the end)."""
    now = utcnow()
    box = secret_box(settings)
    with database.write() as session:
        rows = session.scalars(
            select(InboxWebhookDelivery).where(InboxWebhookDelivery.status == "pending", InboxWebhookDelivery.next_attempt_at <= now)
            .order_by(InboxWebhookDelivery.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
        ).all()
        claimed = []
        for row in rows:
            row.next_attempt_at = now + LEASE
            webhook = session.get(InboxWebhook, row.webhook_id)
            try:  # a secret stored in clear (or under a fallback key) is sealed anew on the way
                sealed = box.reseal(webhook.secret)
            except SecretKeyError:
                sealed = None  # the attempt says why
            if sealed is not None:
                webhook.secret = sealed
            claimed.append((row.id, webhook.url, webhook.secret, orjson.dumps(row.payload), row.attempts))
    for delivery_id, url, stored_secret, body, attempts in claimed:
        error = None
        try:
            signature = sign(box.open(stored_secret), int(time.time()), body)
            response = client.post(url, content=body, headers={
                "Content-Type": "application/json",
                "X-Seamline-Signature": signature,
                "X-Seamline-Delivery": f"inbox-{delivery_id}",
            }, timeout=settings.delivery_timeout_seconds)
            if response.status_code >= 300:
                error = f"HTTP {response.status_code}: {response.text[:200]}"
        except SecretKeyError as exc:
            error = f"{exc.code}: {exc.message}"[:500]
            log.error("inbox webhook secret unreadable", delivery_id=delivery_id, error=exc.message)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        with database.write() as session:
            values: dict[str, Any] = {"attempts": attempts + 1, "last_error": error}
            if error is None:
                values.update(status="delivered", delivered_at=utcnow())
            elif attempts + 1 >= settings.delivery_max_attempts:
                values.update(status="dead")
                log.warning("inbox webhook gave up", delivery_id=delivery_id, error=error)
            else:
                delay = min(settings.delivery_backoff_seconds * 2**attempts, MAX_BACKOFF) * random.uniform(0.5, 1.0)
                values.update(next_attempt_at=utcnow() + timedelta(seconds=delay))
            session.execute(update(InboxWebhookDelivery).where(InboxWebhookDelivery.id == delivery_id).values(**values))
    return len(claimed)
