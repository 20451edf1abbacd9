"""Web push's table: the browsers' push subscriptions (RFC 8030, the Push API)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class WebPushSubscription(Base):
    """A browser's `PushSubscription` (its endpoint at the browser's push service and the keys
    the payload is encrypted for), attached to a customer by a trusted party: the site's backend
    (a write key) or the demo storefront's logged-in session, never the browser alone."""

    __tablename__ = "webpush_subscription"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"), index=True)
    #: The push service's URL for this browser: unique, so a re-subscription takes its row over
    endpoint: Mapped[str] = mapped_column(String(2000), unique=True)
    #: The browser's P-256 public key and auth secret (base64url), what the payload is encrypted for
    p256dh: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The latest registration (which moved it to its customer, or renewed its keys)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set when the push service answered 404/410 (the browser unsubscribed) or it was removed
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
