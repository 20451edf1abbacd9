"""Tables of the next-best-channel model: each person's evidence per channel and per local hour,
and the pooled evidence of people like them (optichannel/model.py says what the numbers are)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Double, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class MarketingChannelEvidence(Base):
    """What messages on one channel earned from one profile, as forward-decay sums (`model.weight`)."""

    __tablename__ = "marketing_channel_evidence"

    profile_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    channel: Mapped[str] = mapped_column(String(32), primary_key=True)
    #: The channels the person could be reached on at the last send ("email+sms"): their cohort.
    cohort: Mapped[str] = mapped_column(String(200), default="")
    responses: Mapped[float] = mapped_column(Double, default=0.0)
    sends: Mapped[float] = mapped_column(Double, default=0.0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MarketingHourEvidence(Base):
    """What messages sent at one local hour (0-23) earned from one profile, whatever the channel."""

    __tablename__ = "marketing_hour_evidence"

    profile_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    hour: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    cohort: Mapped[str] = mapped_column(String(200), default="")
    responses: Mapped[float] = mapped_column(Double, default=0.0)
    sends: Mapped[float] = mapped_column(Double, default=0.0)


class MarketingCohortEvidence(Base):
    """A cohort's evidence (the sum of its people's) per channel or hour: the prior of a person
    with little of their own. Rebuilt by the `marketing.optichannel` job."""

    __tablename__ = "marketing_cohort_evidence"

    cohort: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: channel | hour
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    option: Mapped[str] = mapped_column(String(32), primary_key=True)
    responses: Mapped[float] = mapped_column(Double, default=0.0)
    sends: Mapped[float] = mapped_column(Double, default=0.0)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
