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
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.crypto import SecretBox, SecretKeyError, secret_box
from seamline.core.db import Database
from seamline.core.queue import Retry, Task, TaskRegistry, run_due
from seamline.core.errors import NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.events.destinations import post_signed, retry_delay
from seamline.inbox.models import InboxWebhook, InboxWebhookDelivery

log = structlog.get_logger("seamline.inbox.webhooks")
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
            session.flush()
            DELIVER.enqueue(session, {"delivery_id": delivery.id})


def dead_letters(session: Session, *, webhook_id: int, limit: int = 100, before_id: int | None = None) -> list[InboxWebhookDelivery]:
    query = select(InboxWebhookDelivery).where(InboxWebhookDelivery.webhook_id == webhook_id, InboxWebhookDelivery.status == "dead")
    if before_id is not None:
        query = query.where(InboxWebhookDelivery.id < before_id)
    return list(session.scalars(query.order_by(InboxWebhookDelivery.id.desc()).limit(limit)))


def retry(session: Session, *, webhook_id: int, delivery_id: int) -> InboxWebhookDelivery:
    delivery = session.get(InboxWebhookDelivery, delivery_id)
    if delivery is None or delivery.webhook_id != webhook_id:
        raise NotFound(f"Delivery {delivery_id} not found", code="delivery_not_found")
    if delivery.status == "dead":  # retrying twice is a no-op
        delivery.status, delivery.attempts, delivery.next_attempt_at = "pending", 0, utcnow()
        DELIVER.enqueue(session, {"delivery_id": delivery.id})
    return delivery


@dataclass
class _Prepared:
    id: int
    attempts: int
    url: str
    secret: str
    body: bytes


def _prepare(session: Session, delivery_id: int, box: SecretBox) -> _Prepared | None:
    row = session.get(InboxWebhookDelivery, delivery_id)
    if row is None or row.status != "pending":
        return None
    webhook = session.get(InboxWebhook, row.webhook_id)
    try:  # a secret stored in clear (or under a fallback key) is sealed anew on the way
        sealed = box.reseal(webhook.secret)
    except SecretKeyError:
        sealed = None  # the attempt says why
    if sealed is not None:
        webhook.secret = sealed
    return _Prepared(row.id, row.attempts, webhook.url, webhook.secret, orjson.dumps(row.payload))


def _record(session: Session, prepared: _Prepared, error: str | None, settings: Settings):  # noqa: ANN202
    row = session.get(InboxWebhookDelivery, prepared.id)
    row.attempts, row.last_error = prepared.attempts + 1, error
    if error is None:
        row.status, row.delivered_at = "delivered", utcnow()
        return None
    delay = retry_delay(row.attempts, settings)
    if delay is None:
        row.status = "dead"
        log.warning("inbox webhook gave up", delivery_id=row.id, error=error)
        return None
    row.next_attempt_at = utcnow() + delay
    return delay


def deliver(database: Database, delivery_id: int, *, settings: Settings, client: httpx.Client) -> None:
    """The `DELIVER` job: one attempt (outside any transaction), recorded on the row; `Retry`
    when another is due later, nothing more after the last (the row is a dead letter)."""
    box = secret_box(settings)
    prepared = database.run_write(lambda session: _prepare(session, delivery_id, box))
    if prepared is None:
        return
    error = post_signed(client, prepared.url, prepared.secret, prepared.body, delivery=f"inbox-{prepared.id}", box=box,
                        settings=settings)
    delay = database.run_write(lambda session: _record(session, prepared, error, settings))
    if delay is not None:
        raise Retry(delay, error or "")


def register_tasks(tasks: TaskRegistry, database: Database, settings: Settings, *, client: httpx.Client | None = None) -> None:
    shared = client or httpx.Client()
    tasks.add(DELIVER, lambda _context, args: deliver(database, args["delivery_id"], settings=settings, client=shared))


def deliver_due(database: Database, *, settings: Settings, client: httpx.Client, limit: int = 20) -> int:
    """One pass over the due webhook jobs, here and now (tests and `seamline inbox run-jobs`)."""
    tasks = TaskRegistry()
    register_tasks(tasks, database, settings, client=client)
    return run_due(database, tasks, DELIVER.queue, limit=limit, task=DELIVER.name)
