"""The catalog as a process keeps it between requests: what pricing and checkout read on every
call (SKUs with their names, categories and prices; locations; active promotions).

Correctness comes from the database, not from a time-to-live: triggers raise the one number in
`commerce_catalog_version` whenever a product, variant, category, price, location or promotion
changes, in the changing transaction. A request reads that number (one tiny statement) and uses
the snapshot cached under it; a new number starts a new snapshot. So a price change is seen by
the very next request in every process, exactly as if the tables had been read, and a
checkout's prices are those committed when it read the number.

A snapshot loads locations and promotions whole when it starts (small tables), and the SKUs
whole too when there are at most `PRELOAD_SKUS`; a bigger catalog is loaded lazily, the
missing SKUs of a request in one query, so 100,000 SKUs are never loaded at once.
Snapshots are per database engine (tests run many databases in one process) and immutable once
built, so the server's threads share them without locks (two threads may load the same SKUs at
once; both load the same rows)."""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from seamline.commerce.models import (
    CommerceCategory,
    CommerceLocation,
    CommercePrice,
    CommerceProduct,
    CommercePromotion,
    CommerceVariant,
)
from seamline.core.config import Settings
from seamline.core.errors import Unprocessable


@dataclass(frozen=True, slots=True)
class CatalogVariant:
    id: int
    sku: str
    product_id: int
    #: The product's name with the variant's (Russian, as receipts and orders keep it).
    name: str
    category_code: str | None
    #: {channel: amount in minor units}; "" is the list price.
    prices: dict[str, int]

    def price(self, settings: Settings, channel: str | None) -> int | None:
        """The channel's override where that channel may have one, else the list price."""
        if channel and channel in settings.commerce_price_override_channels and channel in self.prices:
            return self.prices[channel]
        return self.prices.get("")


@dataclass(frozen=True, slots=True)
class CatalogLocation:
    id: int
    code: str
    kind: str
    pickup_enabled: bool
    safety_stock: int
    latitude: float | None
    longitude: float | None


@dataclass(frozen=True, slots=True)
class CatalogPromotion:
    """The fields of `CommercePromotion` the engine reads (`promotions.apply` takes either)."""

    id: int
    code: str
    name_ru: str
    name_en: str
    kind: str
    value: int
    buy_quantity: int
    get_quantity: int
    scope: dict[str, Any]
    conditions: dict[str, Any]
    channels: list[str]
    min_subtotal: int
    requires_coupon: bool
    priority: int
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool


_PROMOTION_FIELDS = CatalogPromotion.__dataclass_fields__.keys()

#: A catalog of up to this many SKUs is loaded whole when its snapshot starts (one query, tens
#: of milliseconds); a bigger one SKU by SKU as requests ask for them.
PRELOAD_SKUS = 20_000


class CatalogSnapshot:
    def __init__(self, session: Session, version: int):
        self.version = version
        self._variants: dict[str, CatalogVariant | None] = {}
        self.locations = {
            row.code: CatalogLocation(row.id, row.code, row.kind, row.pickup_enabled, row.safety_stock, row.latitude, row.longitude)
            for row in session.execute(select(
                CommerceLocation.id, CommerceLocation.code, CommerceLocation.kind, CommerceLocation.pickup_enabled,
                CommerceLocation.safety_stock, CommerceLocation.latitude, CommerceLocation.longitude,
            ).where(CommerceLocation.active.is_(True)))
        }
        self.promotions = [
            CatalogPromotion(**{f: getattr(p, f) for f in _PROMOTION_FIELDS})
            for p in session.scalars(select(CommercePromotion).where(CommercePromotion.active.is_(True)))
        ]
        self.complete = (session.scalar(select(func.count()).select_from(CommerceVariant)) or 0) <= PRELOAD_SKUS
        if self.complete:
            self._load(session, None)

    def variants(self, session: Session, skus: Iterable[str]) -> dict[str, CatalogVariant]:
        """The active variants of these SKUs; an unknown or inactive one is a 422 naming them all."""
        wanted = sorted(set(skus))
        missing = [] if self.complete else [sku for sku in wanted if sku not in self._variants]
        if missing:
            self._load(session, missing)
        unknown = [sku for sku in wanted if self._variants.get(sku) is None]
        if unknown:
            raise Unprocessable(f"Unknown SKU: {', '.join(unknown)}", code="unknown_sku", details={"skus": unknown})
        return {sku: self._variants[sku] for sku in wanted}  # type: ignore[misc]

    def _load(self, session: Session, skus: list[str] | None) -> None:
        """These SKUs (None: every one) with their prices."""
        query = (
            select(CommerceVariant.id, CommerceVariant.sku, CommerceVariant.product_id, CommerceVariant.name_ru,
                   CommerceVariant.active, CommerceProduct.name_ru, CommerceCategory.code)
            .join(CommerceProduct, CommerceProduct.id == CommerceVariant.product_id)
            .outerjoin(CommerceCategory, CommerceCategory.id == CommerceProduct.category_id)
        )
        rows = session.execute(query if skus is None else query.where(CommerceVariant.sku.in_(skus))).all()
        prices: dict[int, dict[str, int]] = {}
        if rows:
            price_query = select(CommercePrice.variant_id, CommercePrice.channel, CommercePrice.amount)
            if skus is not None:
                price_query = price_query.where(CommercePrice.variant_id.in_([row[0] for row in rows]))
            for variant_id, channel, amount in session.execute(price_query):
                prices.setdefault(variant_id, {})[channel] = amount
        found: dict[str, CatalogVariant | None] = dict.fromkeys(skus or ())
        for variant_id, sku, product_id, variant_name, active, product_name, category_code in rows:
            if active:
                found[sku] = CatalogVariant(variant_id, sku, product_id, " ".join(filter(None, [product_name, variant_name])),
                                            category_code, prices.get(variant_id, {}))
        self._variants.update(found)

    def location(self, code: str) -> CatalogLocation:
        location = self.locations.get(code)
        if location is None:
            raise Unprocessable(f"Unknown location {code!r}", code="unknown_location", details={"location": code})
        return location

    def warehouses(self) -> list[CatalogLocation]:
        """Active warehouses by code."""
        return sorted((loc for loc in self.locations.values() if loc.kind == "warehouse"), key=lambda loc: loc.code)


_snapshots: weakref.WeakKeyDictionary[Engine, CatalogSnapshot] = weakref.WeakKeyDictionary()
_VERSION = text("SELECT version FROM commerce_catalog_version WHERE id = 1")


def snapshot(session: Session) -> CatalogSnapshot:
    """The catalog as of now, for this session's database."""
    engine = session.get_bind()
    version = session.execute(_VERSION).scalar()
    if version is None:  # the row was deleted by hand: nothing can be cached
        return CatalogSnapshot(session, -1)
    current = _snapshots.get(engine)
    if current is None or current.version != version:
        current = CatalogSnapshot(session, version)
        if version >= getattr(_snapshots.get(engine), "version", -1):
            _snapshots[engine] = current
    return current
