"""Mobile push's table: the apps' FCM registration tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class MobilePushDevice(Base):
    """An app install's FCM registration token (Android, or iOS through FCM's APNs bridge),
    registered by the app's backend with a write key, never by the app alone."""

    __tablename__ = "mobilepush_device"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"), index=True)
    #: FCM's registration token: unique, so a device that changed hands moves to its new owner
    token: Mapped[str] = mapped_column(String(1024), unique=True)
    #: android or ios
    platform: Mapped[str] = mapped_column(String(16))
    #: The app's package name or bundle id, when the backend says (several apps, one project)
    app_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: The latest registration (which moved it to its customer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Set when FCM answered UNREGISTERED or an invalid token, or it was removed
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
