"""Webhooks out for conversation and message events: a delivery row and its job (`DELIVER`, queue
`webhooks`) written in the event's own transaction, sent by the job queue's workers with
retries, signed as the event destinations are (`X-Seamline-Signature: t=<unix time>,v1=<HMAC-SHA256
of "<t>.<body>">`, `events.destinations.post_signed`). Secrets are stored encrypted
(core/crypto.py) and decrypted only to sign, as the destinations'.

Event types: conversation.created, conversation.assigned, conversation.status_changed,
conversation.merged, conversation.sla_breached, message.created, survey.answered.
"""

from __future__ import annotations

import secrets
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.crypto import secret_box
from seamline.core.queue import Task
from seamline.core.errors import NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.events.destinations import WebhookOutbox
from seamline.inbox.models import InboxWebhook, InboxWebhookDelivery

EVENT_TYPES = (
    "conversation.created", "conversation.assigned", "conversation.status_changed", "conversation.merged",
    "conversation.sla_breached", "message.created", "survey.answered",
)
#: One delivery row's sending; its attempts are counted on the row, as the destinations' are.
DELIVER = Task("inbox.webhook", queue="webhooks", max_attempts=1000)


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
            delivery = InboxWebhookDelivery(webhook_id=webhook_id, event_type=event_type, payload=payload)
            session.add(delivery)
            OUTBOX.enqueue(session, delivery)


def dead_letters(session: Session, *, webhook_id: int, limit: int = 100, before_id: int | None = None) -> list[InboxWebhookDelivery]:
    query = select(InboxWebhookDelivery).where(InboxWebhookDelivery.webhook_id == webhook_id, InboxWebhookDelivery.status == "dead")
    if before_id is not None:
        query = query.where(InboxWebhookDelivery.id < before_id)
    return list(session.scalars(query.order_by(InboxWebhookDelivery.id.desc()).limit(limit)))


def retry(session: Session, *, webhook_id: int, delivery_id: int) -> InboxWebhookDelivery:
    delivery = session.get(InboxWebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook_id:
        raise NotFound(f"Delivery {delivery_id} not found", code="delivery_not_found")
    OUTBOX.retry_dead(session, delivery)
    return delivery


OUTBOX = WebhookOutbox(DELIVER, InboxWebhookDelivery, lambda session, row: session.get(InboxWebhook, row.webhook_id),
                       lambda _session, row: orjson.dumps(row.payload), delivery_id=lambda row_id: f"inbox-{row_id}")
register_tasks = OUTBOX.register
deliver_due = OUTBOX.deliver_due
