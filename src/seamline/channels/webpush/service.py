"""Web push subscriptions: registered by a trusted party, revoked on the push service's word."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from seamline.channels import push
from seamline.channels.webpush.adapter import check_keys, endpoint_allowed
from seamline.channels.webpush.models import WebPushSubscription
from seamline.core.config import Settings
from seamline.core.errors import NotFound, Unprocessable


def register(session: Session, *, settings: Settings, customer_id: int, endpoint: str, p256dh: str, auth: str,
             user_agent: str | None = None) -> tuple[WebPushSubscription, bool]:
    """Attach a browser's subscription to a customer; (row, created). The same endpoint again
    keeps its one row, taken over by this registration (its customer, keys, user agent)."""
    if not endpoint_allowed(endpoint, settings.inbox_webpush_endpoint_hosts):
        raise Unprocessable("The endpoint is not a known push service (inbox_webpush_endpoint_hosts)",
                            code="endpoint_not_allowed", details={"allowed": settings.inbox_webpush_endpoint_hosts})
    check_keys(p256dh, auth)
    return push.register(session, WebPushSubscription, key="endpoint", value=endpoint, customer_id=customer_id,
                         fields={"p256dh": p256dh, "auth": auth, "user_agent": user_agent})


def remove(session: Session, subscription_id: int) -> WebPushSubscription:
    row = push.remove(session, WebPushSubscription, subscription_id)
    if row is None:
        raise NotFound(f"Web push subscription {subscription_id} not found", code="subscription_not_found")
    return row


def of_customer(session: Session, customer_id: int) -> list[WebPushSubscription]:
    return push.of_customer(session, WebPushSubscription, customer_id)


def view(row: WebPushSubscription) -> dict[str, Any]:
    return {"id": row.id, "customer_id": row.customer_id, "endpoint": row.endpoint, "user_agent": row.user_agent,
            "created_at": row.created_at, "updated_at": row.updated_at, "revoked_at": row.revoked_at,
            "revoked_reason": row.revoked_reason}


#: The privacy export's and the erasure's section (registered by the composition root).
export = push.exporter(WebPushSubscription, view)
erase = push.eraser(WebPushSubscription)
