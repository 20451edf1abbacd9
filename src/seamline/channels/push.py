"""What the two push channels share (`webpush`: browsers, `mobilepush`: apps through FCM).

- The notification: title (the sender's push title, else the conversation's subject, else
  `inbox_push_default_title`), body (the message's text), and the click URL, icon and tag the
  sender put in `meta.push` (`OutboundMessage.data`).
- The registry of a person's devices, one table per channel (`webpush_subscription`,
  `mobilepush_device`), with the same rules: one row per address (a browser's endpoint, an
  app's token); registering an address again takes its row over, so the newest trusted
  registration wins (a device that changed hands moves to its new owner, a revoked one is live
  again); the provider's "gone" revokes it; a person's devices are found across merged
  profiles; erasure deletes them.
- Retry-After, in seconds or as an HTTP date.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seamline.core.config import Settings
from seamline.core.time import utcnow
from seamline.customers import service as customers_service
from seamline.customers.sections import CustomerContext
from seamline.inbox import service as inbox_service
from seamline.inbox.adapters import OutboundMessage

#: At most this many of a person's devices get one message (the newest registrations).
MAX_DEVICES = 20


def notification(message: OutboundMessage, settings: Settings) -> dict[str, Any]:
    """{title, body, url, icon, tag} of a message; absent ones are None."""
    data = message.data or {}
    title = data.get("title") or message.subject or settings.inbox_push_default_title
    return {"title": title, "body": message.text, "url": data.get("url"), "icon": data.get("icon"), "tag": data.get("tag")}


def retry_after(value: str | None) -> float | None:
    """A Retry-After header's seconds (it may be a number or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# --- the device registries ---------------------------------------------------------------------


def register(session: Session, model: type, *, key: str, value: str, customer_id: int,
             fields: dict[str, Any]) -> tuple[Any, bool]:
    """The row of `model` whose unique `key` column is `value`, now the customer's and live with
    these `fields`; (row, whether it was created). The customer is checked first (404 unknown,
    410 erased) and stored as the profile a merged id leads to."""
    profile = customers_service.get_profile(session, customer_id)
    column = getattr(model, key)
    now = utcnow()
    row = session.scalar(select(model).where(column == value).with_for_update())
    if row is None:
        try:
            with session.begin_nested():
                row = model(**{key: value}, customer_id=profile.id, created_at=now, updated_at=now, **fields)
                session.add(row)
            return row, True
        except IntegrityError:  # registered at the same moment by another request: take that row over
            row = session.scalar(select(model).where(column == value).with_for_update())
    for name, field_value in fields.items():
        setattr(row, name, field_value)
    row.customer_id, row.updated_at, row.revoked_at, row.revoked_reason = profile.id, now, None, None
    return row, False


def remove(session: Session, model: type, row_id: int, *, reason: str = "removed") -> Any | None:
    """Revoke one row (kept, so a later registration of the address takes it back); None if unknown."""
    row = session.get(model, row_id, with_for_update=True)
    if row is None:
        return None
    if row.revoked_at is None:
        row.revoked_at, row.revoked_reason = utcnow(), reason
    return row


def revoke(session: Session, model: type, reasons: dict[int, str]) -> int:
    """Revoke rows by id (the provider said they are gone), each with its reason; how many were live."""
    now, count = utcnow(), 0
    for row_id, reason in sorted(reasons.items()):
        count += session.execute(update(model).where(model.id == row_id, model.revoked_at.is_(None))
                                 .values(revoked_at=now, revoked_reason=reason[:200])
                                 .execution_options(synchronize_session=False)).rowcount
    return count


def live(session: Session, model: type, customer_id: int) -> list[Any]:
    """The person's live rows (across merged profiles), newest registration first."""
    return list(session.scalars(select(model).where(
        model.customer_id.in_(inbox_service.person_ids(session, customer_id)), model.revoked_at.is_(None))
        .order_by(model.updated_at.desc(), model.id.desc()).limit(MAX_DEVICES)))


def of_customer(session: Session, model: type, customer_id: int, *, limit: int = 100) -> list[Any]:
    """The person's rows, revoked ones too, newest first."""
    return list(session.scalars(select(model).where(model.customer_id.in_(inbox_service.person_ids(session, customer_id)))
                                .order_by(model.id.desc()).limit(limit)))


def exporter(model: type, view: Any) -> Any:
    """A privacy export section: every row of the person, as `view` shows it."""

    def export(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
        ids = customers_service.merged_profile_ids(session, context.profile.id)
        return [view(row) for row in session.scalars(select(model).where(model.customer_id.in_(ids)).order_by(model.id))]

    return export


def eraser(model: type) -> Any:
    """An erasure step: delete every row of the person."""

    def erase(session: Session, context: CustomerContext) -> int:
        ids = customers_service.merged_profile_ids(session, context.profile.id)
        return session.execute(delete(model).where(model.customer_id.in_(ids))).rowcount

    return erase
