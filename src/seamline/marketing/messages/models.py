"""Tables of marketing messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Double, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class MarketingTemplate(Base):
    """A message in every language the business writes it in: {"ru": {"subject", "text", "html"},
    "en": {...}}; each part a sandboxed Jinja2 template (messages/render.py)."""

    __tablename__ = "marketing_template"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: Raised by each edit (a sent message records the version it was rendered from).
    version: Mapped[int] = mapped_column(Integer, default=1)
    archived: Mapped[bool] = mapped_column(default=False)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MarketingMessage(Base):
    """A marketing message to a person: handed to the inbox's outbound send (`inbox_message_id`),
    held (quiet hours: sent when they end) or skipped (`reason`: no consent, capped, unreachable).
    Frequency caps count these; results (delivered, opened, clicked, converted) hang off them."""

    __tablename__ = "marketing_message"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"))
    template_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("marketing_template.id"), nullable=True)
    template_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    journey_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("marketing_journey.id", ondelete="SET NULL"), nullable=True)
    enrollment_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    step_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    arm: Mapped[str | None] = mapped_column(String(40), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)
    inbox_message_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    #: queued (handed to outbound) | skipped | test (a marketer's test send: not counted by caps)
    status: Mapped[str] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: What the person did with it (messages/tracking.py): first open, first click, unsubscribe.
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    clicked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The best response so far (`optichannel.model.REWARDS`: an open 0.5, a click, a reply or a
    #: purchase 1), and the person's local hour at sending: what the next-best-channel model learnt.
    response: Mapped[float] = mapped_column(Double, default=0.0, server_default="0")
    local_hour: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)

    __table_args__ = (
        Index("ix_marketing_message_profile", "profile_id", "created_at"),
        Index("ix_marketing_message_journey", "journey_id", "step_id"),
        Index("ix_marketing_message_inbox", "inbox_message_id"),
    )
