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

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
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


class MarketingProfileFact(Base):
    """What segments ask most about a person, one row per fact, indexed for set lookups: each
    trait as the profile shows it (`trait:<key>`, the chosen observation), each consent's latest
    state (`consent:<channel>:<purpose>`, text `granted` or `withdrawn`).

    A projection of `customer_trait` and `customer_consent` that marketing owns (segments/facts.py):
    refreshed for the people of every reactor job before their segments are evaluated, rebuilt in
    full when it may be stale. Reading a million traits through it takes an index range instead of
    parsing every observation's JSON and choosing among a person's identities (bench/README.md)."""

    __tablename__ = "marketing_profile_fact"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id", ondelete="CASCADE"), primary_key=True)
    #: string, number, boolean, object, array (a null value is no fact)
    kind: Mapped[str] = mapped_column(String(8))
    #: A string as it is, a number or a boolean as JSON writes it, an object or array as JSON.
    text_value: Mapped[str | None] = mapped_column(Text, nullable=True)
    number_value: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        Index("ix_marketing_profile_fact_text", "key", "text_value"),
        Index("ix_marketing_profile_fact_number", "key", "number_value"),
        Index("ix_marketing_profile_fact_profile", "profile_id"),
    )


class MarketingState(Base):
    """Small named facts about marketing itself (when the profile facts were last rebuilt)."""

    __tablename__ = "marketing_state"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
