"""Tables of segments.

`marketing_segment_member` holds who is in each segment now: written only by evaluation (a full
one, or the incremental one that re-evaluates the people something just happened to), always
with the segment's row locked, so two evaluations of one segment never interleave. Every entry
and exit after the first full evaluation is also appended to `marketing_segment_change`, which
journeys start on and the person's timeline shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class MarketingSegment(Base):
    __tablename__ = "marketing_segment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: The rule (segments/rules.py), as JSON.
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: active | archived (kept for history; no longer evaluated)
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: Raised by every change of the rule; a full evaluation records the version it applied.
    version: Mapped[int] = mapped_column(Integer, default=1)
    member_count: Mapped[int] = mapped_column(Integer, default=0)
    #: The last full evaluation: when, of which version, how long it took.
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    evaluated_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    evaluation_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    #: The creating request's Idempotency-Key: its retry returns this segment.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MarketingSegmentMember(Base):
    __tablename__ = "marketing_segment_member"

    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("marketing_segment.id", ondelete="CASCADE"), primary_key=True)
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"), primary_key=True)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_marketing_segment_member_profile", "profile_id"),)


class MarketingSegmentChange(Base):
    """Append-only: a person entered or left a segment."""

    __tablename__ = "marketing_segment_change"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    segment_id: Mapped[int] = mapped_column(BigId, ForeignKey("marketing_segment.id", ondelete="CASCADE"))
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"))
    #: entered | exited
    change: Mapped[str] = mapped_column(String(8))
    #: What made it happen: event, order, profile, merge, refresh (a periodic or edited full evaluation)
    cause: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_marketing_segment_change_profile", "profile_id", "at"),
        Index("ix_marketing_segment_change_segment", "segment_id", "id"),
    )
