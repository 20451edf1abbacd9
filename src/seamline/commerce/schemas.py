"""The commerce API contract."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from seamline.core.schemas import JsonObject, free_text, line_text
from seamline.customers.schemas import IdentifierIn

Code = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")]
Name = line_text(300)
OptionalName = line_text(300, min_length=0)
Channel = Annotated[str, StringConstraints(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Amount = Annotated[int, Field(ge=0, le=10**15, description="Minor units (kopecks, cents)")]
Quantity = Annotated[int, Field(ge=1, le=100_000)]


class CategoryPut(BaseModel):
    name_ru: Name
    name_en: Name
    parent: Code | None = None


class PriceIn(BaseModel):
    amount: Amount
    currency: Currency


class VariantIn(BaseModel):
    sku: Code
    name_ru: OptionalName = ""
    name_en: OptionalName = ""
    attributes: JsonObject = Field(default_factory=dict)
    price: PriceIn
    channel_prices: dict[Channel, PriceIn] = Field(
        default_factory=dict, description="Overrides for channels configured to have their own price"
    )
    active: bool = True


class ProductPut(BaseModel):
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


class LocationPut(BaseModel):
    kind: LocationKind
    name_ru: Name
    name_en: Name
    address: line_text(500, min_length=0) = ""
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    timezone: str = Field(default="Europe/Moscow", max_length=64)
    opening_hours: dict[Day, tuple[HourMinute, HourMinute]] = Field(default_factory=dict)
    pickup_enabled: bool = False
    safety_stock: int = Field(default=0, ge=0, le=1_000_000)
    active: bool = True

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
    model_config = ConfigDict(from_attributes=True)

    code: str


class MovementCreate(BaseModel):
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


class FulfilmentIn(BaseModel):
    kind: Literal["delivery", "pickup_point", "click_and_collect"]
    location: Code | None = Field(default=None, description="The store or pickup point (pickup kinds)")
    address: JsonObject | None = Field(
        default=None, description="Delivery address; `latitude` / `longitude` pick the nearest warehouse"
    )


class LineIn(BaseModel):
    sku: Code
    quantity: Quantity


class OrderCreate(BaseModel):
    channel: Channel
    customer_id: int | None = Field(default=None, ge=1, le=2**62)
    identifiers: list[IdentifierIn] = Field(
        default_factory=list, max_length=20, description="Find or create the customer by these (phone, email, card...)"
    )
    lines: list[LineIn] = Field(min_length=1, max_length=200)
    fulfilment: FulfilmentIn
    payment_method: Literal["on_pickup", "test"] = "on_pickup"


class OrderAction(BaseModel):
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
    total: int
    allocations: list[AllocationRead]


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
    total: int
    pickup_code: str | None = Field(description="Shown to the customer; the store asks for it at handover")
    reserved_until: datetime | None
    created_at: datetime
    lines: list[OrderLineRead]
    history: list[StatusRead]
