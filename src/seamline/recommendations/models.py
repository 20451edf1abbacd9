"""Tables of recommendations: one row per trained model, and that model's precomputed lists.

Every list row carries the `model_version` it belongs to. Serving reads only the rows of the
model whose status is `active`; a training writes a new version beside it, switches `active`
in one transaction, then deletes the older versions' rows (docs/recommendations.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class RecommendationModel(Base):
    __tablename__ = "recommendation_model"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: training, active, retired (its lists deleted), failed
    status: Mapped[str] = mapped_column(String(16))
    trained_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    #: people, products, interactions, orders and the rows of each list written.
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: The ALS and serving parameters it was trained with.
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)

    __table_args__ = (Index("ix_recommendation_model_status", "status"),)


class RecommendationForPerson(Base):
    """"for_you": a person's (canonical profile id) top products from ALS user factors."""

    __tablename__ = "recommendation_for_person"

    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigId)
    score: Mapped[float] = mapped_column(Float)


class RecommendationRelated(Base):
    """Product -> products: `bought_together` (co-purchase lift, then ALS similarity to fill) and
    `similar` (cosine of ALS item factors)."""

    __tablename__ = "recommendation_related"

    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    product_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    related_product_id: Mapped[int] = mapped_column(BigId)
    score: Mapped[float] = mapped_column(Float)
    #: copurchase (seen in the same orders) or als (factor similarity)
    source: Mapped[str] = mapped_column(String(16))


class RecommendationPopular(Base):
    """Most bought products by distinct buyers, per store (`location_id`) and overall (0)."""

    __tablename__ = "recommendation_popular"

    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The pickup location of the orders; 0: every order.
    location_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    rank: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigId)
    score: Mapped[float] = mapped_column(Float)


class RecommendationProduct(Base):
    """What a training learned about each bought product: how often its buyers buy it again, and
    so whether it is consumable (recommended again after a purchase)."""

    __tablename__ = "recommendation_product"

    model_version: Mapped[int] = mapped_column(Integer, primary_key=True)
    product_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    buyers: Mapped[int] = mapped_column(Integer)
    repeat_rate: Mapped[float] = mapped_column(Float)
    consumable: Mapped[bool] = mapped_column(Boolean)


RESULT_TABLES = (RecommendationForPerson, RecommendationRelated, RecommendationPopular, RecommendationProduct)
