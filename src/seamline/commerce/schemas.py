"""The commerce API contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from seamline.core.schemas import (
    RESPONSE_CONFIG,
    AwareDateTime,
    Id,
    JsonObject,
    RequestModel,
    check_json_value,
    free_text,
    line_text,
)
from seamline.customers.schemas import IdentifierIn

Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")]
Name = line_text(300)
OptionalName = line_text(300, min_length=0)
#: Channels, providers and other machine names: lower case, digits, underscores.
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
Channel = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=NAME_PATTERN)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Amount = Annotated[int, Field(ge=0, le=10**15, description="Minor units (kopecks, cents)")]
Quantity = Annotated[int, Field(ge=1, le=100_000)]
CouponCode = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")]


class CategoryPut(RequestModel):
    name_ru: Name
    name_en: Name
    parent: Code | None = None


class PriceIn(RequestModel):
    amount: Amount
    currency: Currency


class VariantIn(RequestModel):
    sku: Code
    name_ru: OptionalName = ""
    name_en: OptionalName = ""
    attributes: JsonObject = Field(default_factory=dict)
    price: PriceIn
    channel_prices: dict[Channel, PriceIn] = Field(
        default_factory=dict, description="Overrides for channels configured to have their own price"
    )
    active: bool = True


class ProductPut(RequestModel):
    name_ru: Name
    name_en: Name
    description_ru: free_text(20_000) = ""
    description_en: free_text(20_000) = ""
    category: Code | None = None
    attributes: JsonObject = Field(default_factory=dict)
    image_urls: list[Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\x00-\x20\x7f]+$")]] = Field(
        default_factory=list, max_length=50
    )
    variants: list[VariantIn] = Field(min_length=1, max_length=500)
    active: bool = True

    @field_validator("variants")
    @classmethod
    def _unique_skus(cls, variants: list[VariantIn]) -> list[VariantIn]:
        skus = [v.sku for v in variants]
        if len(set(skus)) != len(skus):
            raise ValueError("each SKU may appear once")
        return variants


class PriceRead(BaseModel):
    amount: int
    currency: str
    channel: str | None = Field(description="The channel whose override this is; null for the list price")
    override: bool


class VariantRead(BaseModel):
    sku: str
    name_ru: str
    name_en: str
    attributes: dict[str, Any]
    active: bool
    price: PriceRead | None


class ProductRead(BaseModel):
    code: str
    name_ru: str
    name_en: str
    description_ru: str
    description_en: str
    category: str | None
    attributes: dict[str, Any]
    image_urls: list[str]
    active: bool
    variants: list[VariantRead]


LocationKind = Literal["warehouse", "store", "pickup_point"]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HourMinute = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-4]):[0-5]\d$")]
#: Opening and closing time of a day, e.g. ["09:00", "21:00"] (a list of two, so the schema is a
#: plain array valid in OpenAPI 3.0 and 3.1).
OpenHours = Annotated[list[HourMinute], Field(min_length=2, max_length=2, examples=[["09:00", "21:00"]])]


class LocationPut(RequestModel):
    kind: LocationKind
    name_ru: Name
    name_en: Name
    address: line_text(500, min_length=0) = ""
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    timezone: str = Field(default="Europe/Moscow", max_length=64)
    opening_hours: dict[Day, OpenHours] = Field(default_factory=dict)
    pickup_enabled: bool = False
    safety_stock: int = Field(default=0, ge=0, le=1_000_000)
    active: bool = True
    external_id: line_text(100) | None = Field(
        default=None, description="The accounting system's id of this warehouse (1C `Склад` Ид), matched by stock imports"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class LocationRead(LocationPut):
    model_config = ConfigDict(from_attributes=True, **RESPONSE_CONFIG)

    code: str


class MovementCreate(RequestModel):
    sku: Code
    location: Code
    kind: Literal["receipt", "adjustment", "count"] = Field(
        description="receipt: goods arrived (+quantity); adjustment: found or lost (+/-quantity); "
        "count: a stock count or sync, quantity is the new on-hand"
    )
    quantity: int = Field(ge=-1_000_000_000, le=1_000_000_000)
    reference: line_text(200, min_length=0) = ""


class MovementRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    sku: str
    location: str
    kind: str
    on_hand_delta: int
    reserved_delta: int
    reference: str
    created_at: datetime


class StockRead(BaseModel):
    location: str
    kind: str
    on_hand: int
    reserved: int
    available: int


class NearbyStore(BaseModel):
    location: str
    name_ru: str
    name_en: str
    address: str
    distance_km: float
    available: int
    pickup_today: bool = Field(description="Open for the rest of today (in its own time zone) with enough stock")


class FulfilmentIn(RequestModel):
    kind: Literal["delivery", "pickup_point", "click_and_collect"]
    location: Code | None = Field(default=None, description="The store or pickup point (pickup kinds)")
    address: JsonObject | None = Field(
        default=None, description="Delivery address; `latitude` / `longitude` pick the nearest warehouse"
    )


class LineIn(RequestModel):
    sku: Code
    quantity: Quantity


PaymentMethod = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=NAME_PATTERN), Field(
    description="The payment provider: on_pickup (at the till at handover), test, webhook, or a registered adapter; "
    "only those configured in SEAMLINE_COMMERCE_PAYMENT_METHODS are accepted")]


class PaymentRead(BaseModel):
    id: int
    provider: str
    provider_reference: str | None
    amount: int
    currency: str
    status: str = Field(description="created (not yet sent), pending, authorized, succeeded, failed, canceled")
    confirmation_url: str | None = Field(description="Where the customer confirms the payment (webhook providers)")
    created_at: datetime


class PaymentSummaryRead(BaseModel):
    status: str = Field(description="unpaid, pending, paid, partially_refunded, refunded")
    captured: int
    refunded: int
    paid: int = Field(description="captured - refunded")
    payments: list[PaymentRead]


class OrderCreate(RequestModel):
    channel: Channel
    customer_id: Id | None = None
    identifiers: list[IdentifierIn] = Field(
        default_factory=list, max_length=20, description="Find or create the customer by these (phone, email, card...)"
    )
    lines: list[LineIn] = Field(min_length=1, max_length=200)
    coupons: list[CouponCode] = Field(default_factory=list, max_length=5)
    fulfilment: FulfilmentIn
    payment_method: PaymentMethod = "on_pickup"
    points: int = Field(default=0, ge=0, le=10**12, description="Loyalty points to spend (at most the program's share of the order)")


class OrderAction(RequestModel):
    channel: Channel | None = Field(default=None, description="Where this happened (a store's POS, the call center...)")
    note: free_text(500) = ""


class PickupIn(OrderAction):
    code: Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9-]+$")]


class AllocationRead(BaseModel):
    location: str
    quantity: int
    status: str


class OrderLineRead(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: int
    discount: int = Field(description="Taken off by promotions")
    total: int = Field(description="Paid for the line: unit_price * quantity - discount")
    allocations: list[AllocationRead]
    returned: int = Field(default=0, description="Units of this line returned so far")


class StatusRead(BaseModel):
    status: str
    channel: str | None
    note: str
    at: datetime


class OrderRead(BaseModel):
    id: int
    customer_id: int | None
    channel: str
    completed_channel: str | None
    status: str
    fulfilment: str
    pickup_location: str | None
    delivery_address: dict[str, Any] | None
    payment_method: str
    currency: str
    subtotal: int
    discount: int
    total: int
    promotions: list[AppliedPromotionRead]
    pickup_code: str | None = Field(description="Shown to the customer; the store asks for it at handover")
    reserved_until: datetime | None
    created_at: datetime
    lines: list[OrderLineRead]
    history: list[StatusRead]
    payment: PaymentSummaryRead | None = Field(default=None, description="What was paid and refunded (the payment ledger)")


class OrderPage(BaseModel):
    items: list[OrderRead] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: this is the last")


OrderStatusName = Literal["pending_payment", "confirmed", "ready_for_pickup", "shipped", "completed", "cancelled", "returned"]


# --- the store's POS (commerce/pos.py) ------------------------------------------------------


class PosLineRead(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: int
    total: int


class PosIdentifier(BaseModel):
    type: str
    value: str


class PosCustomerBrief(BaseModel):
    id: int
    name: str | None = Field(description="From the traits name, or first_name and last_name")
    identifiers: list[PosIdentifier] = Field(description="The person's phones, emails and loyalty cards")


class PosOrderRead(BaseModel):
    """An order as the till sees it: no pickup code (the customer proves the order is theirs by it)."""

    id: int
    channel: str
    completed_channel: str | None
    status: str
    fulfilment: str
    pickup_location: str | None
    currency: str
    total: int
    reserved_until: datetime | None
    created_at: datetime
    lines: list[PosLineRead]
    customer: PosCustomerBrief | None = None


class PosCustomerCard(PosCustomerBrief):
    traits: dict[str, Any] = Field(description="Each trait's current value")
    pickups_here: list[PosOrderRead] = Field(description="Orders waiting for pickup at this store, ready first")
    recent_orders: list[PosOrderRead] = Field(description="The latest orders from every channel, newest first")


class PosHandover(RequestModel):
    order_id: Id | None = Field(default=None, description="Or none: the order waiting in this store with the code")
    code: Annotated[str, StringConstraints(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9-]+$")]
    clerk: line_text(100) | None = None
    note: free_text(500) = ""


class PosPayment(RequestModel):
    method: Literal["cash", "card"]
    amount: Amount | None = Field(
        default=None, description="What the till charged; when given it must equal the order total the server prices"
    )


class SaleCreate(RequestModel):
    lines: list[LineIn] = Field(min_length=1, max_length=200)
    customer_id: Id | None = Field(default=None, description="A customer the clerk already found")
    identifiers: list[IdentifierIn] = Field(
        default_factory=list, max_length=20,
        description="Find or create the customer by these (phone, email, loyalty_card), as order placement does",
    )
    coupons: list[CouponCode] = Field(default_factory=list, max_length=5, description="Coupons, as in any channel")
    points: int = Field(default=0, ge=0, le=10**12,
                        description="Loyalty points to spend; the customer is found by their card among `identifiers`")
    payment: PosPayment
    clerk: line_text(100) | None = None
    receipt: Code | None = Field(
        default=None, description="The till's receipt number: without an Idempotency-Key it is the sale's key"
    )


class PosStockHere(BaseModel):
    location: str
    on_hand: int
    reserved: int
    sellable: int = Field(description="On hand minus what click & collect orders hold: what the till may sell")


class PosStockElsewhere(BaseModel):
    location: str
    name_ru: str
    name_en: str
    address: str
    distance_km: float | None = Field(description="From this store; null when either has no coordinates")
    available: int = Field(description="What can be reserved there (on hand - reserved - safety stock)")
    pickup_enabled: bool
    pickup_today: bool = Field(description="Click & collect there today: pickup enabled, open for the rest of today, enough stock")


class PosStockRead(BaseModel):
    sku: str
    here: PosStockHere
    elsewhere: list[PosStockElsewhere]


# --- promotions ----------------------------------------------------------------------------------


class PromotionScope(RequestModel):
    skus: list[Code] = Field(default_factory=list, max_length=1000)
    categories: list[Code] = Field(default_factory=list, max_length=200)


class PromotionConditions(RequestModel):
    traits: dict[Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")], Any] | None = Field(
        default=None, description="Each trait must have this value on the profile (a segment)"
    )
    tiers: list[Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]] | None = Field(
        default=None, description="Loyalty tiers (decided by the loyalty module)"
    )

    @field_validator("traits")
    @classmethod
    def _json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return check_json_value(value)


class PromotionPut(RequestModel):
    name_ru: Name
    name_en: Name
    kind: Literal["percent", "fixed", "buy_x_get_y"]
    value: int = Field(default=0, ge=0, le=10**15, description="percent: 1-100; fixed: minor units; buy_x_get_y: 0")
    buy_quantity: int = Field(default=0, ge=0, le=1000)
    get_quantity: int = Field(default=0, ge=0, le=1000)
    scope: PromotionScope = Field(default_factory=PromotionScope)
    conditions: PromotionConditions = Field(default_factory=PromotionConditions)
    channels: list[Channel] = Field(
        default_factory=list, max_length=20, description="Only in these channels; empty = every channel"
    )
    min_subtotal: Amount = 0
    requires_coupon: bool = False
    priority: int = Field(default=100, ge=0, le=10_000)
    starts_at: AwareDateTime | None = None
    ends_at: AwareDateTime | None = None
    active: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> PromotionPut:
        if self.kind == "percent" and not 1 <= self.value <= 100:
            raise ValueError("a percent promotion needs a value from 1 to 100")
        if self.kind == "fixed" and self.value < 1:
            raise ValueError("a fixed promotion needs a positive value (minor units)")
        if self.kind == "buy_x_get_y" and (self.buy_quantity < 1 or self.get_quantity < 1):
            raise ValueError("buy_x_get_y needs buy_quantity and get_quantity of at least 1")
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class PromotionRead(PromotionPut):
    model_config = RESPONSE_CONFIG

    code: str
    scope: dict[str, Any]  # type: ignore[assignment]
    conditions: dict[str, Any]  # type: ignore[assignment]



class CouponPut(RequestModel):
    promotion: Code
    usage_limit: int | None = Field(default=None, ge=1, le=10**9, description="Uses by everyone; null = unlimited")
    per_customer_limit: int | None = Field(default=None, ge=1, le=10**6, description="Uses per customer; null = unlimited")
    active: bool = True


class CouponRead(CouponPut):
    model_config = RESPONSE_CONFIG

    code: str
    used: int = Field(description="Uses by orders that were not cancelled")


class QuoteIn(RequestModel):
    channel: Channel
    customer_id: Id | None = None
    lines: list[LineIn] = Field(min_length=1, max_length=200)
    coupons: list[CouponCode] = Field(default_factory=list, max_length=5)
    points: int = Field(default=0, ge=0, le=10**12, description="Loyalty points to spend (at most the program's share of the order)")


class PricedLineRead(BaseModel):
    sku: str
    name: str
    quantity: int
    unit_price: int
    discount: int
    total: int


class AppliedPromotionRead(BaseModel):
    code: str
    name: str
    amount: int
    coupon: str | None
    points: int | None = Field(default=None, description="Loyalty points spent (code LOYALTY_POINTS)")


class RejectedCoupon(BaseModel):
    code: str
    reason: str


class QuoteRead(BaseModel):
    currency: str
    lines: list[PricedLineRead]
    subtotal: int
    discount: int
    total: int
    promotions: list[AppliedPromotionRead]
    rejected_coupons: list[RejectedCoupon]
    points: int = 0


class ProductPromotionRead(BaseModel):
    code: str
    name_ru: str
    name_en: str
    kind: Literal["percent", "fixed", "buy_x_get_y"]
    value: int = Field(description="percent: 1-100; fixed: minor units off the lines in scope; buy_x_get_y: 0")
    buy_quantity: int
    get_quantity: int
    min_subtotal: int = Field(description="The lines in scope must reach this amount (minor units) in the cart")
    ends_at: datetime | None
    applies_to_one: bool = Field(description="It discounts one unit bought alone (else the cart needs more of it)")


class VariantPromotionsRead(BaseModel):
    sku: str
    currency: str
    price: int = Field(description="The price in the channel (minor units)")
    price_now: int = Field(description="One unit in a cart of its own for this customer, promotions taken off")
    promotions: list[ProductPromotionRead] = Field(description="In the order the engine applies them")


class ProductPromotionsRead(BaseModel):
    product: str
    channel: str | None
    customer_id: int | None
    variants: list[VariantPromotionsRead]


# --- carts ---------------------------------------------------------------------------------------


AnonymousId = Annotated[str, StringConstraints(min_length=1, max_length=320, pattern=r"^[^\x00-\x1f\x7f]+$")]


class CartLinePut(RequestModel):
    quantity: int = Field(ge=0, le=100_000, description="The new quantity; 0 removes the line")
    channel: Channel


class CartLineRead(PricedLineRead):
    available: int = Field(description="Sellable now across all locations (the cart does not hold stock)")
    channel: str = Field(description="Where it was put in the cart")


class CartRead(BaseModel):
    id: int | None = Field(description="null while the person has no cart yet")
    customer_id: int | None
    anonymous_id: str | None
    channel: str | None = Field(description="Channel of the last change")
    currency: str
    lines: list[CartLineRead]
    coupons: list[str]
    subtotal: int
    discount: int
    total: int
    promotions: list[AppliedPromotionRead]
    rejected_coupons: list[RejectedCoupon]
    unavailable: list[str] = Field(description="SKUs in the cart that are no longer sold (left out of the totals)")
    updated_at: datetime | None


class CartMergeIn(RequestModel):
    anonymous_id: AnonymousId
    customer_id: Id | None = None
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=20, description="Or find the customer by these")
    channel: Channel


class CartCheckoutIn(RequestModel):
    """The cart's lines and coupons become the order; the rest is as for `OrderCreate`."""

    channel: Channel
    fulfilment: FulfilmentIn
    payment_method: PaymentMethod = "on_pickup"
    points: int = Field(default=0, ge=0, le=10**12, description="Loyalty points to spend (at most the program's share of the order)")


# --- payments and returns (commerce/payments.py, commerce/returns.py) ------------------------------


class PaymentTransactionRead(BaseModel):
    kind: str = Field(description="authorization, capture, refund, failure")
    amount: int
    currency: str
    provider_reference: str
    refund_id: int | None
    at: datetime


class RefundRead(BaseModel):
    id: int
    return_id: int | None
    amount: int
    currency: str
    status: str = Field(description="requested (not yet sent), pending, succeeded, failed")
    provider_reference: str | None
    created_at: datetime


class PaymentDetailRead(PaymentRead):
    transactions: list[PaymentTransactionRead]
    refunds: list[RefundRead]


class PaymentsRead(BaseModel):
    order_id: int
    currency: str
    total: int
    status: str = Field(description="unpaid, pending, paid, partially_refunded, refunded")
    captured: int
    refunded: int
    paid: int
    payments: list[PaymentDetailRead]


class WebhookAck(BaseModel):
    status: Literal["applied", "ignored", "duplicate"]


class ReturnLineIn(RequestModel):
    sku: Code
    quantity: Quantity


class ReturnCreate(RequestModel):
    lines: list[ReturnLineIn] = Field(default_factory=list, max_length=200,
                                      description="What came back. Required unless `all` is true")
    all: bool = Field(default=False, description="Everything of the order not yet returned (instead of `lines`)")
    location: Code = Field(description="The store (or, for a courier return, the warehouse) where the goods came back")
    channel: Channel = Field(description="Where the return was accepted: store, courier, call_center...")
    reason: free_text(500) = ""


class ReturnLineRead(BaseModel):
    sku: str
    quantity: int
    amount: int = Field(description="Minor units refunded for these units (their share of the line total)")


class ReturnRead(BaseModel):
    id: int
    order_id: int
    customer_id: int | None
    location: str
    channel: str
    reason: str
    amount: int
    currency: str
    full: bool = Field(description="Nothing of the order is left with the customer")
    lines: list[ReturnLineRead]
    refunds: list[RefundRead]
    created_at: datetime


class StockImportReport(BaseModel):
    problems: list[dict[str, Any]] = Field(
        description="Each bad row or offer: `row` (CSV line) or `offer` (1-based), `field`, `reason`, and the SKU, "
        "location or value concerned; any problem rejects the whole file"
    )
    problems_total: int = Field(description="All problems found (the list keeps the first 1,000)")
    warnings: list[dict[str, Any]] = Field(
        description="Quantities below what is reserved for orders: on hand was kept at the reserved amount"
    )


class StockImportRead(BaseModel):
    id: int
    file_name: str
    sha256: str
    format: Literal["csv", "commerceml"]
    source: str = Field(description="cli, http or folder")
    status: Literal["applied", "rejected", "unchanged"] = Field(
        description="unchanged: the same content was applied before (`duplicate_of`), nothing was done"
    )
    duplicate_of: int | None
    rows: int = Field(description="CSV rows or CommerceML offers read")
    stock_lines: int = Field(description="(SKU, location) quantities in the file")
    movements: int = Field(description="`sync` stock movements written (only where on hand changed)")
    prices_changed: int
    clamped: int = Field(description="Quantities raised to what is reserved (see `report.warnings`)")
    report: StockImportReport
    started_at: datetime
    finished_at: datetime | None
