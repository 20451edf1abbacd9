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
    text,
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
    #: The accounting system's id of this warehouse (1C `Склад` Ид), matched by stock imports.
    external_id: Mapped[str | None] = mapped_column(String(100), nullable=True, unique=True, index=True)


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
    #: pending_payment, confirmed, ready_for_pickup, shipped, completed, cancelled, returned
    status: Mapped[str] = mapped_column(String(24))
    #: delivery, pickup_point, click_and_collect, in_store (a sale at the till, commerce/pos.py)
    fulfilment: Mapped[str] = mapped_column(String(24))
    #: The store or pickup point where the customer collects the order (in_store: the store of the sale).
    pickup_location_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("commerce_location.id"), nullable=True)
    delivery_address: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: on_pickup, test, ...; a till sale: cash or card
    payment_method: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    #: List prices times quantities; `discount` is what promotions took off; total = subtotal - discount.
    subtotal: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    discount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    total: Mapped[int] = mapped_column(BigInteger)
    #: The promotions applied: [{"code", "name", "amount", "coupon"}].
    promotions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    pickup_code: Mapped[str | None] = mapped_column(String(16), nullable=True)
    #: Stock is held until then; an order still waiting at that time is cancelled.
    reserved_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    #: SHA-256 of the request that created it: the same key with another request is refused.
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        Index("ix_commerce_order_open", "status", "reserved_until"),
        Index("ix_commerce_order_updated_at", "updated_at"),  # the analytics mirror reads by it
    )


class CommerceOrderLine(Base):
    __tablename__ = "commerce_order_line"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_order.id"), index=True)
    variant_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_variant.id"))
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(300))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int] = mapped_column(BigInteger)
    #: Taken off by promotions; `total` (unit_price * quantity - discount) is what was paid for the line.
    discount: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
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


# --- promotions ----------------------------------------------------------------------------------


class CommercePromotion(Base):
    """A discount rule the one engine (`commerce.promotions`) applies in every channel."""

    __tablename__ = "commerce_promotion"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_ru: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300))
    #: percent, fixed, buy_x_get_y
    kind: Mapped[str] = mapped_column(String(16))
    #: percent: 1..100; fixed: minor units off the eligible lines; buy_x_get_y: unused (0).
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    buy_quantity: Mapped[int] = mapped_column(Integer, default=0)
    get_quantity: Mapped[int] = mapped_column(Integer, default=0)
    #: Which lines it touches: {"skus": [...], "categories": [...]}; empty = every line.
    scope: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Who may have it: {"traits": {...}, "tiers": [...]} (tiers are checked by the loyalty module).
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Only in these channels; empty = every channel (the default, and the point of omnichannel).
    channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    min_subtotal: Mapped[int] = mapped_column(BigInteger, default=0)
    requires_coupon: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Lower first; each promotion works on what the earlier ones left.
    priority: Mapped[int] = mapped_column(Integer, default=100)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CommerceCoupon(Base):
    __tablename__ = "commerce_coupon"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: Stored upper-case; customers type it in any case.
    code: Mapped[str] = mapped_column(String(64), unique=True)
    promotion_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_promotion.id"), index=True)
    #: None: unlimited.
    usage_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: A personal coupon (marketing gives them): only this customer (and profiles merged into
    #: them) may use it.
    profile_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customer_profile.id"), nullable=True)
    #: Not usable from then on.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class CommerceCouponRedemption(Base):
    """One use of a coupon by an order. A use by an order later cancelled no longer counts."""

    __tablename__ = "commerce_coupon_redemption"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    coupon_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_coupon.id"))
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_order.id"), index=True)
    profile_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customer_profile.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        UniqueConstraint("coupon_id", "order_id"),
        Index("ix_commerce_coupon_redemption_use", "coupon_id", "profile_id"),
    )


# --- carts ---------------------------------------------------------------------------------------


class CommerceCart(Base):
    """A person's cart, shared by every channel. One active cart per profile and per anonymous id."""

    __tablename__ = "commerce_cart"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    profile_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customer_profile.id"), nullable=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(320), nullable=True)
    #: active, merged (into another cart), ordered
    status: Mapped[str] = mapped_column(String(16), default="active")
    merged_into_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("commerce_cart.id"), nullable=True)
    order_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("commerce_order.id"), nullable=True)
    coupons: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: The channel of the last change.
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("uq_commerce_cart_active_profile", "profile_id", unique=True,
              sqlite_where=text("status = 'active' AND profile_id IS NOT NULL"),
              postgresql_where=text("status = 'active' AND profile_id IS NOT NULL")),
        Index("uq_commerce_cart_active_anonymous", "anonymous_id", unique=True,
              sqlite_where=text("status = 'active' AND profile_id IS NULL AND anonymous_id IS NOT NULL"),
              postgresql_where=text("status = 'active' AND profile_id IS NULL AND anonymous_id IS NOT NULL")),
        Index("ix_commerce_cart_abandoned", "status", "updated_at"),
        Index("ix_commerce_cart_updated_at", "updated_at"),  # the analytics mirror reads by it
    )


class CommerceCartLine(Base):
    __tablename__ = "commerce_cart_line"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cart_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_cart.id"))
    variant_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_variant.id"))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    #: Where it was put in the cart (the app, the site, a store...).
    channel: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("cart_id", "variant_id"),)


class CommerceCartChange(Base):
    """Append-only history of a cart (product added, removed, quantity, coupon, merged, ordered):
    the timeline shows it, and it is how an abandoned cart is found later."""

    __tablename__ = "commerce_cart_change"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    cart_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_cart.id"), index=True)
    #: product_added, product_removed, quantity_changed, coupon_added, coupon_removed, merged, ordered
    kind: Mapped[str] = mapped_column(String(24))
    sku: Mapped[str | None] = mapped_column(String(64), nullable=True)
    quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)
    detail: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)



# --- payments and returns ------------------------------------------------------------------------


class CommercePayment(Base):
    """One payment at a provider for an order. `status` follows the provider (created: not yet
    sent, pending, authorized, succeeded, failed, canceled); money moved is in the ledger
    (`commerce_payment_transaction`), never in this row."""

    __tablename__ = "commerce_payment"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_order.id"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    #: The provider's id of the payment (null until the provider answered).
    provider_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    confirmation_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    #: Sent to the provider with the request: a resent request creates nothing twice.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("provider", "provider_reference"),)


class CommerceReturn(Base):
    """Goods of an order that came back, at one location, through one channel."""

    __tablename__ = "commerce_return"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_order.id"), index=True)
    profile_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("customer_profile.id"), nullable=True, index=True)
    #: Where the goods came back (a store, or a warehouse for a courier return).
    location_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_location.id"))
    channel: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500), default="")
    #: Minor units owed back for the returned lines.
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    #: Whether this return brought back everything of the order that was left.
    full: Mapped[bool] = mapped_column(Boolean)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommerceReturnLine(Base):
    __tablename__ = "commerce_return_line"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    return_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_return.id"), index=True)
    order_line_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_order_line.id"), index=True)
    variant_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_variant.id"))
    sku: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(BigInteger)


class CommerceRefund(Base):
    """Money sent back on a payment: requested (not yet sent to the provider), pending,
    succeeded or failed. The ledger gets a `refund` transaction when it succeeds."""

    __tablename__ = "commerce_refund"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_payment.id"), index=True)
    #: The return it pays back; null for a refund made at the provider (its dashboard).
    return_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("commerce_return.id"), nullable=True, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    provider_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (UniqueConstraint("payment_id", "provider_reference"),)


class CommercePaymentTransaction(Base):
    """The payment ledger: money authorized, captured, refunded, or an attempt that failed.
    Never updated or deleted; what an order has paid is the sum of its captures less refunds."""

    __tablename__ = "commerce_payment_transaction"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    payment_id: Mapped[int] = mapped_column(BigId, ForeignKey("commerce_payment.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("commerce_refund.id"), nullable=True)
    #: authorization, capture, refund, failure
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    provider_reference: Mapped[str] = mapped_column(String(200), default="")
    #: The webhook event or local action that wrote it: each is applied once.
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CommercePaymentEvent(Base):
    """A verified webhook event, kept as received: a redelivery finds it and changes nothing."""

    __tablename__ = "commerce_payment_event"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: applied, ignored (nothing to change: a late or superseded event)
    outcome: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (UniqueConstraint("provider", "event_id"),)


class CommerceStockImport(Base):
    """One stock and price file from the accounting system, and what became of it."""

    __tablename__ = "commerce_stock_import"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    file_name: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    #: csv, commerceml
    format: Mapped[str] = mapped_column(String(16))
    #: cli, http, folder
    source: Mapped[str] = mapped_column(String(16))
    #: applied, rejected, unchanged (the same content was applied before: `duplicate_of`)
    status: Mapped[str] = mapped_column(String(16))
    duplicate_of: Mapped[int | None] = mapped_column(BigId, ForeignKey("commerce_stock_import.id"), nullable=True)
    #: CSV rows or CommerceML offers read; (SKU, location) quantities; sync movements written;
    #: list prices changed; quantities raised to what is reserved.
    rows: Mapped[int] = mapped_column(Integer, default=0)
    stock_lines: Mapped[int] = mapped_column(Integer, default=0)
    movements: Mapped[int] = mapped_column(Integer, default=0)
    prices_changed: Mapped[int] = mapped_column(Integer, default=0)
    clamped: Mapped[int] = mapped_column(Integer, default=0)
    #: {"problems": [{row | offer, field, reason, ...}], "problems_total": n, "warnings": [...]}
    report: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_commerce_stock_import_sha256", "sha256", "status"),)


class CommerceCatalogVersion(Base):
    """One row whose `version` goes up whenever the catalog changes (database triggers on the
    product, variant, category, price, location and promotion tables). Processes cache what
    they read of the catalog under this number (`commerce.catalog_cache`): a checkout reads one
    integer instead of the catalog."""

    __tablename__ = "commerce_catalog_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
