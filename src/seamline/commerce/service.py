"""Commerce: the catalog and its one price list, locations, the stock ledger, orders.

Stock never sells twice. Every checkout runs in one transaction that locks the stock rows of
its SKUs in (variant, location) order (PostgreSQL `FOR UPDATE`; SQLite admits one writer at a
time with `BEGIN IMMEDIATE`), checks every line, collects every shortage into one error, and
only then writes reservations and their ledger movements (Saleor's `allocate_stocks` habit).

Available = on hand - reserved - the location's safety stock. A reservation is released when
its order is cancelled or expires, and committed (on hand and reserved both go down: a sale)
when the order is handed over or shipped.

Allocation (which location's stock an order takes):
- click & collect and pickup points: the location the customer chose, nowhere else; a store
  that does not hold the stock is a shortage, never a silent reservation somewhere else;
- delivery: warehouses only, nearest first to the address's coordinates (by code when there
  are none): the nearest warehouse that holds every line whole; if none does, each line is
  split across warehouses, nearest first.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seamline.commerce.models import (
    CommerceCategory,
    CommerceLocation,
    CommerceOrder,
    CommerceOrderLine,
    CommerceOrderStatus,
    CommercePrice,
    CommerceProduct,
    CommerceReservation,
    CommerceStock,
    CommerceStockMovement,
    CommerceVariant,
)
from seamline.commerce.schemas import CategoryPut, LocationPut, MovementCreate, OrderCreate, ProductPut
from seamline.core.config import Settings
from seamline.core.errors import Conflict, NotFound, TransactionConflict, Unprocessable
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.sections import CustomerContext, SectionRegistry
from seamline.customers.timeline import TimelineItem, TimelineQuery, TimelineRegistry

OPEN_STATUSES = ("pending_payment", "confirmed", "ready_for_pickup")


class InsufficientStock(Conflict):
    code = "insufficient_stock"


# --- catalog -------------------------------------------------------------------------------------


def put_category(session: Session, *, code: str, data: CategoryPut) -> CommerceCategory:
    category = session.scalar(select(CommerceCategory).where(CommerceCategory.code == code))
    parent_id = _category_id(session, data.parent) if data.parent else None
    if category is None:
        category = CommerceCategory(code=code)
        session.add(category)
    category.name_ru, category.name_en, category.parent_id = data.name_ru, data.name_en, parent_id
    session.flush()
    return category


def _category_id(session: Session, code: str) -> int:
    found = session.scalar(select(CommerceCategory.id).where(CommerceCategory.code == code))
    if found is None:
        raise Unprocessable(f"Unknown category {code!r}", code="unknown_category", details={"category": code})
    return found


def put_product(session: Session, *, settings: Settings, code: str, data: ProductPut) -> CommerceProduct:
    """Create or replace a product with its variants and prices (safe to repeat). A variant
    left out is deactivated, not deleted: orders refer to it."""
    for variant in data.variants:
        _check_price(settings, variant.sku, variant.price.currency)
        for channel, price in variant.channel_prices.items():
            if channel not in settings.commerce_price_override_channels:
                raise Unprocessable(
                    f"Channel {channel!r} is not configured to have its own prices",
                    code="price_override_not_allowed",
                    details={"sku": variant.sku, "channel": channel,
                             "allowed": settings.commerce_price_override_channels},
                )
            _check_price(settings, variant.sku, price.currency)
    category_id = _category_id(session, data.category) if data.category else None
    product = session.scalar(select(CommerceProduct).where(CommerceProduct.code == code))
    if product is None:
        product = CommerceProduct(code=code)
        session.add(product)
    for field in ("name_ru", "name_en", "description_ru", "description_en", "attributes", "image_urls", "active"):
        setattr(product, field, getattr(data, field))
    product.category_id = category_id
    session.flush()

    existing = {v.sku: v for v in session.scalars(select(CommerceVariant).where(CommerceVariant.sku.in_([v.sku for v in data.variants])))}
    for sku, variant in existing.items():
        if variant.product_id != product.id:
            raise Conflict(f"SKU {sku!r} belongs to another product", code="sku_taken", details={"sku": sku})
    for old in session.scalars(select(CommerceVariant).where(CommerceVariant.product_id == product.id)):
        if old.sku not in {v.sku for v in data.variants}:
            old.active = False
    for item in data.variants:
        variant = existing.get(item.sku) or CommerceVariant(sku=item.sku, product_id=product.id)
        variant.name_ru, variant.name_en, variant.attributes, variant.active = item.name_ru, item.name_en, item.attributes, item.active
        session.add(variant)
        session.flush()
        prices = {"": item.price, **item.channel_prices}
        for row in session.scalars(select(CommercePrice).where(CommercePrice.variant_id == variant.id)):
            if row.channel not in prices:
                session.delete(row)
        for channel, price in prices.items():
            row = session.scalar(select(CommercePrice).where(CommercePrice.variant_id == variant.id, CommercePrice.channel == channel))
            if row is None:
                row = CommercePrice(variant_id=variant.id, channel=channel)
                session.add(row)
            row.amount, row.currency = price.amount, price.currency
    session.flush()
    return product


def _check_price(settings: Settings, sku: str, currency: str) -> None:
    if currency != settings.commerce_currency:
        raise Unprocessable(
            f"Prices are in {settings.commerce_currency}; {sku} has {currency}",
            code="wrong_currency",
            details={"sku": sku, "currency": currency, "expected": settings.commerce_currency},
        )


def get_product(session: Session, code: str) -> CommerceProduct:
    product = session.scalar(select(CommerceProduct).where(CommerceProduct.code == code))
    if product is None:
        raise NotFound(f"Product {code!r} not found", code="product_not_found")
    return product


def effective_prices(session: Session, *, settings: Settings, variant_ids: list[int], channel: str | None) -> dict[int, CommercePrice]:
    """The price of each variant in a channel: the channel's override where that channel may
    have one, else the list price. The same in every channel unless configured otherwise."""
    wanted = [""]
    if channel and channel in settings.commerce_price_override_channels:
        wanted.append(channel)
    found: dict[int, CommercePrice] = {}
    for row in session.scalars(
        select(CommercePrice).where(CommercePrice.variant_id.in_(variant_ids), CommercePrice.channel.in_(wanted))
    ):
        if row.variant_id not in found or row.channel:
            found[row.variant_id] = row
    return found


def product_view(session: Session, *, settings: Settings, product: CommerceProduct, channel: str | None) -> dict[str, Any]:
    variants = list(session.scalars(select(CommerceVariant).where(CommerceVariant.product_id == product.id).order_by(CommerceVariant.id)))
    prices = effective_prices(session, settings=settings, variant_ids=[v.id for v in variants], channel=channel)
    category = session.get(CommerceCategory, product.category_id) if product.category_id else None
    return {
        "code": product.code, "name_ru": product.name_ru, "name_en": product.name_en,
        "description_ru": product.description_ru, "description_en": product.description_en,
        "category": category.code if category else None, "attributes": product.attributes,
        "image_urls": product.image_urls, "active": product.active,
        "variants": [
            {
                "sku": v.sku, "name_ru": v.name_ru, "name_en": v.name_en, "attributes": v.attributes, "active": v.active,
                "price": {"amount": p.amount, "currency": p.currency, "channel": p.channel or None, "override": bool(p.channel)}
                if (p := prices.get(v.id)) else None,
            }
            for v in variants
        ],
    }


def variants_by_sku(session: Session, skus: Iterable[str]) -> dict[str, CommerceVariant]:
    wanted = sorted(set(skus))
    found = {v.sku: v for v in session.scalars(select(CommerceVariant).where(CommerceVariant.sku.in_(wanted)))}
    missing = [s for s in wanted if s not in found or not found[s].active]
    if missing:
        raise Unprocessable(f"Unknown SKU: {', '.join(missing)}", code="unknown_sku", details={"skus": missing})
    return found


# --- locations -----------------------------------------------------------------------------------


def put_location(session: Session, *, code: str, data: LocationPut) -> CommerceLocation:
    location = session.scalar(select(CommerceLocation).where(CommerceLocation.code == code))
    if location is None:
        location = CommerceLocation(code=code)
        session.add(location)
    values = data.model_dump()
    values["opening_hours"] = {day: list(hours) for day, hours in data.opening_hours.items()}
    for field, value in values.items():
        setattr(location, field, value)
    session.flush()
    return location


def list_locations(session: Session) -> list[CommerceLocation]:
    return list(session.scalars(select(CommerceLocation).order_by(CommerceLocation.code)))


def location_by_code(session: Session, code: str) -> CommerceLocation:
    location = session.scalar(select(CommerceLocation).where(CommerceLocation.code == code))
    if location is None or not location.active:
        raise Unprocessable(f"Unknown location {code!r}", code="unknown_location", details={"location": code})
    return location


def open_rest_of_today(location: CommerceLocation, now: datetime) -> bool:
    """Whether the location is open now or later today, in its own time zone."""
    local = now.astimezone(ZoneInfo(location.timezone))
    hours = location.opening_hours.get(("mon", "tue", "wed", "thu", "fri", "sat", "sun")[local.weekday()])
    return bool(hours) and local.strftime("%H:%M") < hours[1]


# --- stock ---------------------------------------------------------------------------------------


def _lock_stock(
    session: Session, keys: Iterable[tuple[int, int]], *, create: bool = True
) -> dict[tuple[int, int], CommerceStock]:
    """The stock rows of these (variant, location) pairs, locked in (variant, location) order;
    missing ones are created first (`create`), or left out (a checkout: no row, no stock)."""
    ordered = sorted(set(keys))
    if not ordered:
        return {}
    postgres = session.get_bind().dialect.name == "postgresql"
    if create:
        table = CommerceStock.__table__
        insert = (postgresql_insert if postgres else sqlite_insert)(table).on_conflict_do_nothing(
            index_elements=[table.c.variant_id, table.c.location_id]
        )
        now = utcnow()
        session.execute(insert, [{"variant_id": v, "location_id": loc, "on_hand": 0, "reserved": 0, "updated_at": now}
                                 for v, loc in ordered])
    query = (
        select(CommerceStock)
        .where(or_(*(and_(CommerceStock.variant_id == v, CommerceStock.location_id == loc) for v, loc in ordered)))
        .order_by(CommerceStock.variant_id, CommerceStock.location_id)
        .execution_options(populate_existing=True)
    )
    if postgres:
        query = query.with_for_update()
    return {(s.variant_id, s.location_id): s for s in session.scalars(query)}


def _move(
    session: Session, stock: CommerceStock, *, kind: str, on_hand: int = 0, reserved: int = 0, reference: str,
    idempotency_key: str | None = None,
) -> CommerceStockMovement:
    """One ledger row and the matching change of the running totals (rows already locked)."""
    stock.on_hand += on_hand
    stock.reserved += reserved
    movement = CommerceStockMovement(
        variant_id=stock.variant_id, location_id=stock.location_id, kind=kind, on_hand_delta=on_hand,
        reserved_delta=reserved, reference=reference, idempotency_key=idempotency_key,
    )
    session.add(movement)
    return movement


def record_movement(session: Session, *, data: MovementCreate, idempotency_key: str | None) -> tuple[CommerceStockMovement, bool]:
    """A receipt, an adjustment or a count; returns (movement, created). A key already used
    returns its movement; on-hand never goes below what is reserved or below zero."""
    if idempotency_key:
        done = session.scalar(select(CommerceStockMovement).where(CommerceStockMovement.idempotency_key == idempotency_key))
        if done is not None:
            return done, False
    variant = variants_by_sku(session, [data.sku])[data.sku]
    location = location_by_code(session, data.location)
    if data.kind == "receipt" and data.quantity <= 0:
        raise Unprocessable("A receipt needs a positive quantity", code="invalid_quantity")
    if data.kind == "count" and data.quantity < 0:
        raise Unprocessable("A count cannot be negative", code="invalid_quantity")
    stock = _lock_stock(session, [(variant.id, location.id)])[(variant.id, location.id)]
    delta = data.quantity - stock.on_hand if data.kind == "count" else data.quantity
    if stock.on_hand + delta < stock.reserved:
        raise Conflict(
            f"On hand would be {stock.on_hand + delta}, below the {stock.reserved} reserved for orders",
            code="below_reserved",
            details={"sku": data.sku, "location": data.location, "on_hand": stock.on_hand, "reserved": stock.reserved},
        )
    movement = _move(session, stock, kind="sync" if data.kind == "count" else data.kind, on_hand=delta,
                     reference=data.reference, idempotency_key=idempotency_key)
    try:
        session.flush()
    except IntegrityError:
        raise TransactionConflict() from None  # the same key at the same moment: look again
    return movement, True


def availability(session: Session, sku: str) -> list[dict[str, Any]]:
    variant = variants_by_sku(session, [sku])[sku]
    rows = session.execute(
        select(CommerceLocation, CommerceStock)
        .join(CommerceStock, CommerceStock.location_id == CommerceLocation.id)
        .where(CommerceStock.variant_id == variant.id, CommerceLocation.active.is_(True))
        .order_by(CommerceLocation.code)
    ).all()
    return [
        {"location": loc.code, "kind": loc.kind, "on_hand": s.on_hand, "reserved": s.reserved,
         "available": max(0, s.on_hand - s.reserved - loc.safety_stock)}
        for loc, s in rows
    ]


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * 6371.0088 * math.asin(math.sqrt(a))


def nearby_stores(
    session: Session, *, sku: str, latitude: float, longitude: float, quantity: int, limit: int, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Pickup locations holding `quantity` of the SKU, nearest first."""
    now = now or utcnow()
    variant = variants_by_sku(session, [sku])[sku]
    rows = session.execute(
        select(CommerceLocation, CommerceStock)
        .join(CommerceStock, CommerceStock.location_id == CommerceLocation.id)
        .where(
            CommerceStock.variant_id == variant.id, CommerceLocation.active.is_(True),
            CommerceLocation.pickup_enabled.is_(True), CommerceLocation.latitude.is_not(None),
            CommerceLocation.longitude.is_not(None),
        )
    ).all()
    found = []
    for location, stock in rows:
        available = stock.on_hand - stock.reserved - location.safety_stock
        if available < quantity:
            continue
        found.append({
            "location": location.code, "name_ru": location.name_ru, "name_en": location.name_en,
            "address": location.address,
            "distance_km": round(distance_km(latitude, longitude, location.latitude, location.longitude), 2),
            "available": available, "pickup_today": open_rest_of_today(location, now),
        })
    return sorted(found, key=lambda f: (f["distance_km"], f["location"]))[:limit]


def check_stock(session: Session) -> list[dict[str, Any]]:
    """Every (SKU, location) whose running totals differ from the sum of its ledger: empty when
    the books are right."""
    ledger = {
        (v, loc): (on_hand, reserved)
        for v, loc, on_hand, reserved in session.execute(
            select(CommerceStockMovement.variant_id, CommerceStockMovement.location_id,
                   func.sum(CommerceStockMovement.on_hand_delta), func.sum(CommerceStockMovement.reserved_delta))
            .group_by(CommerceStockMovement.variant_id, CommerceStockMovement.location_id)
        )
    }
    wrong = []
    for stock in session.scalars(select(CommerceStock)):
        expected = ledger.pop((stock.variant_id, stock.location_id), (0, 0))
        if (stock.on_hand, stock.reserved) != tuple(int(x) for x in expected) or stock.reserved < 0 or stock.on_hand < 0:
            wrong.append({"variant_id": stock.variant_id, "location_id": stock.location_id,
                          "totals": [stock.on_hand, stock.reserved], "ledger": [int(x) for x in expected]})
    wrong.extend({"variant_id": v, "location_id": loc, "totals": None, "ledger": list(x)} for (v, loc), x in ledger.items())
    return wrong


# --- orders --------------------------------------------------------------------------------------


@dataclass
class Placed:
    order: CommerceOrder
    created: bool


def _request_hash(data: OrderCreate) -> str:
    return hashlib.sha256(orjson.dumps(data.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)).hexdigest()


def _customer_id(session: Session, *, rules: IdentifierRules, data: OrderCreate) -> int | None:
    if data.customer_id is not None:
        return resolution.canonical_profile(session, data.customer_id).id
    if not data.identifiers:
        return None
    usable, _blocked = rules.prepare([(i.type, i.value) for i in data.identifiers])
    if not usable:
        return None
    return resolution.resolve_identifiers(session, rules=rules, identifiers=usable, source=f"orders:{data.channel}").profile_id


def place_order(
    session: Session, *, settings: Settings, rules: IdentifierRules, data: OrderCreate, idempotency_key: str | None,
    now: datetime | None = None,
) -> Placed:
    """Price, allocate and reserve an order in one transaction (see the module doc). With an
    `Idempotency-Key`, a retry returns the order the first request made."""
    now = now or utcnow()
    fingerprint = _request_hash(data)
    if idempotency_key:
        done = session.scalar(select(CommerceOrder).where(CommerceOrder.idempotency_key == idempotency_key))
        if done is not None:
            if done.request_hash != fingerprint:
                raise Unprocessable(
                    "This Idempotency-Key was used for a different order", code="idempotency_key_reused"
                )
            return Placed(done, False)

    quantities: dict[str, int] = {}
    for line in data.lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    variants = variants_by_sku(session, quantities)
    prices = effective_prices(session, settings=settings, variant_ids=[v.id for v in variants.values()], channel=data.channel)
    unpriced = [sku for sku, v in variants.items() if v.id not in prices]
    if unpriced:
        raise Unprocessable(f"No price for {', '.join(unpriced)}", code="no_price", details={"skus": unpriced})

    fulfilment = data.fulfilment
    pickup: CommerceLocation | None = None
    if fulfilment.kind == "delivery":
        if not fulfilment.address:
            raise Unprocessable("Delivery needs an address", code="address_required")
        candidates = _warehouses_nearest_first(session, fulfilment.address)
    else:
        if not fulfilment.location:
            raise Unprocessable("Choose the store or pickup point", code="location_required")
        pickup = location_by_code(session, fulfilment.location)
        expected_kind = "store" if fulfilment.kind == "click_and_collect" else "pickup_point"
        if pickup.kind not in (expected_kind, "store") or not pickup.pickup_enabled:
            raise Unprocessable(
                f"{pickup.code} does not hand over {fulfilment.kind.replace('_', ' ')} orders",
                code="pickup_not_available", details={"location": pickup.code},
            )
        candidates = [pickup]

    customer_id = _customer_id(session, rules=rules, data=data)
    reserved_until = now + timedelta(minutes=settings.commerce_reservation_minutes)
    status = "confirmed" if data.payment_method == "on_pickup" else "pending_payment"
    order = CommerceOrder(
        profile_id=customer_id, channel=data.channel, status=status, fulfilment=fulfilment.kind,
        pickup_location_id=pickup.id if pickup else None, delivery_address=fulfilment.address,
        payment_method=data.payment_method, currency=settings.commerce_currency, total=0,
        pickup_code=f"{secrets.randbelow(10**6):06d}" if pickup else None,
        reserved_until=reserved_until, idempotency_key=idempotency_key, request_hash=fingerprint,
        created_at=now, updated_at=now,
    )
    session.add(order)
    try:
        session.flush()  # claims the Idempotency-Key before any stock is touched
    except IntegrityError:
        raise TransactionConflict() from None  # the same key at the same moment: the retry finds it

    stock = _lock_stock(session, [(v.id, loc.id) for v in variants.values() for loc in candidates], create=False)
    plan = _allocate(quantities, variants, candidates, stock)
    names = dict(session.execute(
        select(CommerceProduct.id, CommerceProduct.name_ru).where(CommerceProduct.id.in_({v.product_id for v in variants.values()}))
    ).all())
    lines = {
        sku: CommerceOrderLine(
            order_id=order.id, variant_id=variants[sku].id, sku=sku,
            name=" ".join(filter(None, [names[variants[sku].product_id], variants[sku].name_ru])), quantity=quantity,
            unit_price=prices[variants[sku].id].amount, total=prices[variants[sku].id].amount * quantity,
        )
        for sku, quantity in quantities.items()
    }
    session.add_all(lines.values())
    session.flush()
    for sku, line in lines.items():
        for location_id, taken in plan[sku]:
            _move(session, stock[(line.variant_id, location_id)], kind="reservation", reserved=taken, reference=f"order:{order.id}")
            session.add(CommerceReservation(order_id=order.id, line_id=line.id, variant_id=line.variant_id,
                                            location_id=location_id, quantity=taken))
    order.total = sum(line.total for line in lines.values())
    session.add(CommerceOrderStatus(order_id=order.id, status=status, channel=data.channel, created_at=now))
    session.flush()
    return Placed(order, True)


def _warehouses_nearest_first(session: Session, address: dict[str, Any]) -> list[CommerceLocation]:
    warehouses = list(session.scalars(
        select(CommerceLocation).where(CommerceLocation.kind == "warehouse", CommerceLocation.active.is_(True))
        .order_by(CommerceLocation.code)
    ))
    lat, lon = address.get("latitude"), address.get("longitude")
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
        far = float("inf")
        warehouses.sort(key=lambda w: distance_km(lat, lon, w.latitude, w.longitude)
                        if w.latitude is not None and w.longitude is not None else far)
    if not warehouses:
        raise Unprocessable("No warehouse ships orders", code="no_warehouse")
    return warehouses


def _allocate(
    quantities: dict[str, int], variants: dict[str, CommerceVariant], candidates: list[CommerceLocation],
    stock: dict[tuple[int, int], CommerceStock],
) -> dict[str, list[tuple[int, int]]]:
    """{sku: [(location id, quantity)]}: the first candidate holding everything, else each line
    split nearest first; every shortage reported at once."""
    def available(sku: str, location: CommerceLocation) -> int:
        row = stock.get((variants[sku].id, location.id))
        return 0 if row is None else max(0, row.on_hand - row.reserved - location.safety_stock)

    for location in candidates:
        if all(available(sku, location) >= q for sku, q in quantities.items()):
            return {sku: [(location.id, q)] for sku, q in quantities.items()}
    plan: dict[str, list[tuple[int, int]]] = {}
    shortages = []
    for sku, quantity in quantities.items():
        left, parts = quantity, []
        for location in candidates:
            take = min(left, available(sku, location))
            if take > 0:
                parts.append((location.id, take))
                left -= take
            if left == 0:
                break
        if left:
            shortages.append({
                "sku": sku, "requested": quantity, "available": quantity - left,
                "locations": [loc.code for loc in candidates] if len(candidates) < 10 else None,
            })
        plan[sku] = parts
    if shortages:
        first = shortages[0]
        raise InsufficientStock(
            f"Not enough {first['sku']}: {first['available']} of {first['requested']} available",
            details={"shortages": shortages},
        )
    return plan


def get_order(session: Session, order_id: int, *, lock: bool = False) -> CommerceOrder:
    query = select(CommerceOrder).where(CommerceOrder.id == order_id)
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    order = session.scalar(query)
    if order is None:
        raise NotFound(f"Order {order_id} not found", code="order_not_found")
    return order


def _settle(session: Session, order: CommerceOrder, *, outcome: str) -> None:
    """Release (cancel, expiry) or commit (handover, shipping) every active reservation."""
    reservations = list(session.scalars(
        select(CommerceReservation).where(CommerceReservation.order_id == order.id, CommerceReservation.status == "active")
    ))
    stock = _lock_stock(session, [(r.variant_id, r.location_id) for r in reservations])
    for r in reservations:
        row = stock[(r.variant_id, r.location_id)]
        if outcome == "released":
            _move(session, row, kind="release", reserved=-r.quantity, reference=f"order:{order.id}")
        else:
            _move(session, row, kind="sale", on_hand=-r.quantity, reserved=-r.quantity, reference=f"order:{order.id}")
        r.status = outcome


def _transition(
    session: Session, order: CommerceOrder, *, to: str, allowed_from: tuple[str, ...], channel: str | None, note: str,
    now: datetime | None = None,
) -> CommerceOrder:
    if order.status == to:
        return order  # a retried action is a no-op
    if order.status not in allowed_from:
        raise Conflict(
            f"Order {order.id} is {order.status}; it cannot become {to}", code="invalid_order_status",
            details={"status": order.status, "wanted": to},
        )
    now = now or utcnow()
    order.status, order.updated_at = to, now
    session.add(CommerceOrderStatus(order_id=order.id, status=to, channel=channel, note=note, created_at=now))
    return order


def pay_order(session: Session, *, order_id: int, channel: str | None, note: str = "") -> CommerceOrder:
    """The test payment provider: marks a pending order paid."""
    order = get_order(session, order_id, lock=True)
    return _transition(session, order, to="confirmed", allowed_from=("pending_payment",), channel=channel, note=note or "paid")


def mark_ready(session: Session, *, settings: Settings, order_id: int, channel: str | None, note: str = "") -> CommerceOrder:
    """Click & collect or pickup point: the order waits for the customer, for the hold period."""
    order = get_order(session, order_id, lock=True)
    if order.fulfilment == "delivery":
        raise Conflict("A delivery order is shipped, not picked up", code="invalid_order_status")
    was = order.status
    _transition(session, order, to="ready_for_pickup", allowed_from=("confirmed",), channel=channel, note=note)
    if was != order.status:
        order.reserved_until = utcnow() + timedelta(hours=settings.commerce_pickup_hold_hours)
    return order


def pick_up(session: Session, *, order_id: int, code: str, channel: str | None, note: str = "") -> CommerceOrder:
    """Handover in the store: the pickup code must match; the stock is sold."""
    order = get_order(session, order_id, lock=True)
    if order.status == "completed":
        return order
    if order.pickup_code is None or not hmac.compare_digest(order.pickup_code, code):
        raise Unprocessable("The pickup code does not match", code="wrong_pickup_code")
    _transition(session, order, to="completed", allowed_from=("ready_for_pickup",), channel=channel, note=note)
    order.completed_channel, order.reserved_until = channel, None
    _settle(session, order, outcome="committed")
    return order


def ship(session: Session, *, order_id: int, channel: str | None, note: str = "") -> CommerceOrder:
    order = get_order(session, order_id, lock=True)
    if order.fulfilment != "delivery":
        raise Conflict("Only delivery orders are shipped", code="invalid_order_status")
    was = order.status
    _transition(session, order, to="shipped", allowed_from=("confirmed",), channel=channel, note=note)
    if was != order.status:
        order.reserved_until = None
        _settle(session, order, outcome="committed")
    return order


def complete(session: Session, *, order_id: int, channel: str | None, note: str = "") -> CommerceOrder:
    """A shipped order delivered."""
    order = get_order(session, order_id, lock=True)
    _transition(session, order, to="completed", allowed_from=("shipped",), channel=channel, note=note)
    order.completed_channel = order.completed_channel or channel
    return order


def cancel(session: Session, *, order_id: int, channel: str | None, note: str = "", now: datetime | None = None) -> CommerceOrder:
    order = get_order(session, order_id, lock=True)
    was = order.status
    _transition(session, order, to="cancelled", allowed_from=OPEN_STATUSES, channel=channel, note=note, now=now)
    if was != order.status:
        order.reserved_until = None
        _settle(session, order, outcome="released")
    return order


def expire_orders(session: Session, *, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Cancel open orders whose hold ran out (unpaid, or ready and never collected); their stock
    goes back on sale. Returns the ids cancelled."""
    now = now or utcnow()
    due = list(session.scalars(
        select(CommerceOrder.id).where(CommerceOrder.status.in_(OPEN_STATUSES), CommerceOrder.reserved_until < now)
        .order_by(CommerceOrder.id).limit(limit)
    ))
    for order_id in due:
        order = get_order(session, order_id, lock=True)
        if order.status in OPEN_STATUSES and order.reserved_until is not None and order.reserved_until < now:
            cancel(session, order_id=order_id, channel=None, note="hold expired", now=now)
    return due


def order_view(session: Session, order: CommerceOrder) -> dict[str, Any]:
    lines = list(session.scalars(select(CommerceOrderLine).where(CommerceOrderLine.order_id == order.id).order_by(CommerceOrderLine.id)))
    reservations = list(session.scalars(select(CommerceReservation).where(CommerceReservation.order_id == order.id).order_by(CommerceReservation.id)))
    location_ids = {r.location_id for r in reservations} | ({order.pickup_location_id} if order.pickup_location_id else set())
    codes = {i: c for i, c in session.execute(
        select(CommerceLocation.id, CommerceLocation.code).where(CommerceLocation.id.in_(location_ids))
    )} if location_ids else {}
    history = session.scalars(select(CommerceOrderStatus).where(CommerceOrderStatus.order_id == order.id).order_by(CommerceOrderStatus.id))
    return {
        "id": order.id, "customer_id": order.profile_id, "channel": order.channel, "completed_channel": order.completed_channel,
        "status": order.status, "fulfilment": order.fulfilment,
        "pickup_location": codes.get(order.pickup_location_id), "delivery_address": order.delivery_address,
        "payment_method": order.payment_method, "currency": order.currency, "total": order.total,
        "pickup_code": order.pickup_code, "reserved_until": order.reserved_until, "created_at": order.created_at,
        "lines": [
            {"sku": line.sku, "name": line.name, "quantity": line.quantity, "unit_price": line.unit_price, "total": line.total,
             "allocations": [{"location": codes[r.location_id], "quantity": r.quantity, "status": r.status}
                             for r in reservations if r.line_id == line.id]}
            for line in lines
        ],
        "history": [{"status": h.status, "channel": h.channel, "note": h.note, "at": h.created_at} for h in history],
    }


def orders_of_customer(session: Session, profile_ids: list[int], *, limit: int = 50) -> list[CommerceOrder]:
    return list(session.scalars(
        select(CommerceOrder).where(CommerceOrder.profile_id.in_(profile_ids))
        .order_by(CommerceOrder.created_at.desc(), CommerceOrder.id.desc()).limit(limit)
    ))


def _profile_ids(session: Session, profile_id: int) -> list[int]:
    return customers_service.merged_profile_ids(session, profile_id)


# --- what this module adds to the customer 360 and timeline -----------------------------------


def _orders_section(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    return [
        {"id": o.id, "status": o.status, "channel": o.channel, "fulfilment": o.fulfilment, "total": o.total,
         "currency": o.currency, "created_at": o.created_at}
        for o in orders_of_customer(session, _profile_ids(session, context.profile.id), limit=10)
    ]


def _orders_export(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    return [order_view(session, o) for o in orders_of_customer(session, _profile_ids(session, context.profile.id), limit=10**9)]


def _orders_erase(session: Session, context: CustomerContext) -> int:
    """Orders stay (they are the shop's books) but lose the person: no customer, no address."""
    orders = orders_of_customer(session, _profile_ids(session, context.profile.id), limit=10**9)
    for order in orders:
        order.profile_id, order.delivery_address = None, None
    return len(orders)


def _order_timeline(session: Session, context: CustomerContext, query: TimelineQuery) -> list[TimelineItem]:
    """Each status of each order (placed, ready, completed, cancelled...), with its channel."""
    if query.types is not None and "order" not in query.types and not any(t.startswith("order.") for t in query.types):
        return []
    statuses = (
        select(CommerceOrderStatus, CommerceOrder)
        .join(CommerceOrder, CommerceOrder.id == CommerceOrderStatus.order_id)
        .where(CommerceOrder.profile_id.in_(_profile_ids(session, context.profile.id)))
    )
    if query.before is not None:
        at, last_id = query.before
        statuses = statuses.where(or_(CommerceOrderStatus.created_at < at,
                                      and_(CommerceOrderStatus.created_at == at, CommerceOrderStatus.id < last_id)))
    if query.types and "order" not in query.types:
        statuses = statuses.where(CommerceOrderStatus.status.in_([t.split(".", 1)[1] for t in query.types if t.startswith("order.")]))
    rows = session.execute(statuses.order_by(CommerceOrderStatus.created_at.desc(), CommerceOrderStatus.id.desc()).limit(query.limit * 2))
    items = []
    for status, order in rows:
        channel = status.channel or order.channel
        if query.channels and channel not in query.channels:
            continue
        items.append(TimelineItem(
            kind="order", id=status.id, occurred_at=status.created_at, channel=channel, type=f"order.{status.status}",
            title=f"Order {order.id}: {status.status.replace('_', ' ')}",
            data={"order_id": order.id, "total": order.total, "currency": order.currency, "fulfilment": order.fulfilment,
                  "note": status.note},
        ))
    return items[: query.limit]


def register(sections: SectionRegistry, timeline: TimelineRegistry) -> None:
    sections.register("orders", _orders_section, export=_orders_export, erase=_orders_erase)
    timeline.register("order", _order_timeline)
