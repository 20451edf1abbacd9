"""Tables of campaigns. A campaign runs on a journey of its own (`journey_id`, hidden from the
journeys list): its people are enrolled in bulk, so sends, quiet hours, caps, the A/B split,
the holdout and conversions are the journeys' own (docs/marketing.md, "Campaigns")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class MarketingCampaign(Base):
    __tablename__ = "marketing_campaign"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("marketing_segment.id"))
    #: draft | scheduled | sending (people being enrolled) | testing (A/B test running) | sent | cancelled
    status: Mapped[str] = mapped_column(String(16), default="draft")
    #: [{"name": "A", "template_id": 1, "percent": 50}, ...] (percents of those not held out)
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    holdout_percent: Mapped[int] = mapped_column(Integer, default=0)
    channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: When to start (None: when scheduled); `local_time`: then at this time of day in each person's zone.
    send_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    local_time: Mapped[str | None] = mapped_column(String(5), nullable=True)
    #: At most this many people start per minute (None: as fast as the sends go).
    per_minute: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: {"test_percent": 20, "metric": "converted" | "delivered", "after_hours": 4}: variants tried on a
    #: test group first; the rest get the winner.
    ab_test: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    winner: Mapped[str | None] = mapped_column(String(40), nullable=True)
    journey_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("marketing_journey.id"), nullable=True)
    #: How many people it was given to (the segment's members when it started).
    audience: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    test_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
