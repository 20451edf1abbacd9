"""Tables of journeys.

A journey's definition is versioned (`marketing_journey_version`, immutable): a person in flight
keeps the version they entered with, so editing a journey never changes what happens to them
halfway (docs/marketing.md, "Editing a running journey").

An enrollment is one person's way through one version: `step_id` is the next step to run and
`wake_at` when (a wait sets both), until it is `done` with its `exit_reason`. The scheduler reads
the partial index of waiting enrollments by `wake_at`, so a million people waiting days cost
nothing until they are due. Each step a person passes is recorded once
(`marketing_enrollment_step`, unique per enrollment and step): a step's effect (a message,
points, a coupon) is written in the transaction that records it, so it happens once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class MarketingJourney(Base):
    __tablename__ = "marketing_journey"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    #: draft (being built: nobody enters), active, paused (nobody enters, nobody moves), archived
    status: Mapped[str] = mapped_column(String(16), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    #: The current version's definition (journeys/definition.py), as JSON.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The template it was made from (abandoned_cart, ...), if any.
    template: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MarketingJourneyVersion(Base):
    __tablename__ = "marketing_journey_version"

    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("marketing_journey.id", ondelete="CASCADE"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MarketingEnrollment(Base):
    __tablename__ = "marketing_enrollment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    journey_id: Mapped[int] = mapped_column(BigId, ForeignKey("marketing_journey.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    profile_id: Mapped[int] = mapped_column(BigId, ForeignKey("customer_profile.id"))
    #: waiting (for `wake_at`, to run `step_id`) | done
    status: Mapped[str] = mapped_column(String(8), default="waiting")
    step_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    wake_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: The wait-for-event step the person is in (an event moves them on before `wake_at`).
    waiting_step: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: The A/B arm they were given, if the journey splits.
    arm: Mapped[str | None] = mapped_column(String(40), nullable=True)
    #: What the trigger knew: the event's properties, the store, the cart; steps add to it (a coupon code).
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: completed, goal, segment_exit, archived, merged, erased, holdout, error
    exit_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: The goal reached (an order placed within the journey): when, which order, its total.
    converted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    conversion_order_id: Mapped[int | None] = mapped_column(BigId, nullable=True)
    conversion_revenue: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("uq_marketing_enrollment_live", "journey_id", "profile_id", unique=True,
              postgresql_where=text("status = 'waiting'"), sqlite_where=text("status = 'waiting'")),
        Index("ix_marketing_enrollment_due", "wake_at",
              postgresql_where=text("status = 'waiting'"), sqlite_where=text("status = 'waiting'")),
        Index("ix_marketing_enrollment_profile", "profile_id", "status"),
        Index("ix_marketing_enrollment_journey", "journey_id", "status", "id"),
    )


class MarketingEnrollmentStep(Base):
    """Append-only: a step a person passed, and what came of it."""

    __tablename__ = "marketing_enrollment_step"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    enrollment_id: Mapped[int] = mapped_column(BigId, ForeignKey("marketing_enrollment.id", ondelete="CASCADE"))
    step_id: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: e.g. {"message_id": 12}, {"branch": "else"}, {"arm": "B"}, {"skipped": "no_marketing_consent"}
    outcome: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (UniqueConstraint("enrollment_id", "step_id"),)
