"""Tables of the commerce domain: catalog, prices, locations, stock, orders.

Stock is an append-only ledger (`commerce_stock_movement`): every change of on-hand or reserved
quantity is a row with its reason and reference. `commerce_stock` holds the running totals per
SKU and location, updated in the same transaction as each movement; it is what checkouts lock
(one row per SKU and location, always in (variant, location) order) and what `check_stock`
proves against the ledger.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from seamline.core.auth.models import BigId
from seamline.core.db import Base
from seamline.core.time import UTCDateTime, utcnow


class CommerceCategory(Base):
    __tablename__ = "commerce_category"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    parent_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("commerce_category.id"), nullable=True)
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))


class CommerceProduct(Base):
    __tablename__ = "commerce_product"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(100), unique=True)
    category_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("commerce_category.id"), nullable=True, index=True)
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    description_ru: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    image_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CommerceVariant(Base):
    """A sellable item (SKU) of a product: a size, a colour, a volume."""

    __tablename__ = "commerce_variant"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    product_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_product.id"), index=True)
    name_ru: Mapped[str] = mapped_column(String(300), default="")
    name_en: Mapped[str] = mapped_column(String(300), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CommercePrice(Base):
    """The one price list: channel "" is the price everywhere; a row for a named channel is an
    override, allowed only for channels listed in `SEAMLINE_COMMERCE_PRICE_OVERRIDE_CHANNELS`."""

    __tablename__ = "commerce_price"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    variant_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_variant.id"))
    channel: Mapped[str] = mapped_column(String(32), default="")
    #: Minor units (kopecks, cents).
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("variant_id", "channel"),)


class CommerceLocation(Base):
    """A warehouse, a store or a pickup point."""

    __tablename__ = "commerce_location"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    #: warehouse, store, pickup_point
    kind: Mapped[str] = mapped_column(String(16))
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    address: Mapped[str] = mapped_column(String(500), default="")
    latitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    longitude: Mapped[float | None] = mapped_column(Float, nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Moscow")
    #: {"mon": ["10:00", "22:00"], ...}; a day that is missing is closed.
    opening_hours: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    pickup_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Units of every SKU kept back from online sale here (display stock, damage margin).
    safety_stock: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CommerceStock(Base):
    """Running totals of the ledger per SKU and location (see the module doc)."""

    __tablename__ = "commerce_stock"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    variant_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_variant.id"))
    location_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_location.id"), index=True)
    on_hand: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("variant_id", "location_id"),)


class CommerceStockMovement(Base):
    """One change of stock, never updated or deleted."""

    __tablename__ = "commerce_stock_movement"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    variant_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_variant.id"))
    location_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_location.id"))
    #: receipt, sale, reservation, release, return, adjustment, sync
    kind: Mapped[str] = mapped_column(String(16))
    on_hand_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    reserved_delta: Mapped[int] = mapped_column(BigInteger, default=0)
    #: What caused it: "order:12", "import:offers-2026-11-23.xml", "staff:anna".
    reference: Mapped[str] = mapped_column(String(200), default="")
    #: A client's key for this movement: the same key is applied once.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_commerce_stock_movement_item", "variant_id", "location_id", "id"),)


class CommerceOrder(Base):
    __tablename__ = "commerce_order"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    profile_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customer_profile.id"), nullable=True, index=True)
    #: Where it was placed (web, app, store, call_center, ...) and where it was completed.
    channel: Mapped[str] = mapped_column(String(32))
    completed_channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: pending_payment, confirmed, ready_for_pickup, shipped, completed, cancelled
    status: Mapped[str] = mapped_column(String(24))
    #: delivery, pickup_point, click_and_collect
    fulfilment: Mapped[str] = mapped_column(String(24))
    #: The store or pickup point where the customer collects the order.
    pickup_location_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("commerce_location.id"), nullable=True)
    delivery_address: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    payment_method: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[int] = mapped_column(BigInteger)
    pickup_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: Stock is held until then; an order still waiting at that time is cancelled.
    reserved_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    #: SHA-256 of the request that created it: the same key with another request is refused.
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_commerce_order_open", "status", "reserved_until"),)


class CommerceOrderLine(Base):
    __tablename__ = "commerce_order_line"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_order.id"), index=True)
    variant_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_variant.id"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)


class CommerceReservation(Base):
    """Stock held for an order line at one location (a line split across warehouses has several)."""

    __tablename__ = "commerce_reservation"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_order.id"), index=True)
    line_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_order_line.id"))
    variant_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_variant.id"))
    location_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_location.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    #: active, released, committed
    status: Mapped[str] = mapped_column(String(16), default="active")


class CommerceOrderStatus(Base):
    """The order's status history."""

    __tablename__ = "commerce_order_status"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_order.id"), index=True)
    status: Mapped[str] = mapped_column(String(24))
    channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
