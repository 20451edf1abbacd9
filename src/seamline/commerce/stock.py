"""Locations and the stock ledger.

Every change of stock is a movement row (receipt, sale, reservation, release, return,
adjustment, sync) plus the matching change of the running totals in `commerce_stock`, written in
the same transaction with the row locked; `check_stock` proves the totals equal the ledger.
Available = on hand - reserved - the location's safety stock."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seamline.commerce.catalog import variants_by_sku
from seamline.commerce.models import (
    CommerceLocation,
    CommerceProduct,
    CommerceStock,
    CommerceStockMovement,
    CommerceVariant,
)
from seamline.commerce.schemas import (
    LocationPut,
    MovementCreate,
)
from seamline.core.errors import Conflict, TransactionConflict, Unprocessable
from seamline.core.time import utcnow


class InsufficientStock(Conflict):
    code = "insufficient_stock"


# --- locations -----------------------------------------------------------------------------------


def put_location(session: Session, *, code: str, data: LocationPut) -> CommerceLocation:
    location = session.scalar(select(CommerceLocation).where(CommerceLocation.code == code))
    if data.external_id is not None:
        holder = session.scalar(select(CommerceLocation.code).where(CommerceLocation.external_id == data.external_id))
        if holder is not None and holder != code:
            raise Conflict(f"External id {data.external_id!r} belongs to location {holder!r}", code="external_id_taken",
                           details={"external_id": data.external_id, "location": holder})
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


def lock_stock(
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


def move(
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
    stock = lock_stock(session, [(variant.id, location.id)])[(variant.id, location.id)]
    delta = data.quantity - stock.on_hand if data.kind == "count" else data.quantity
    if stock.on_hand + delta < stock.reserved:
        raise Conflict(
            f"On hand would be {stock.on_hand + delta}, below the {stock.reserved} reserved for orders",
            code="below_reserved",
            details={"sku": data.sku, "location": data.location, "on_hand": stock.on_hand, "reserved": stock.reserved},
        )
    movement = move(session, stock, kind="sync" if data.kind == "count" else data.kind, on_hand=delta,
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


def products_in_stock(session: Session, product_ids: Iterable[int], *, location_id: int | None = None) -> set[int]:
    """Which of these products are active with at least one active variant available (on hand -
    reserved - safety stock > 0) at the location, or at any active location when None."""
    wanted = sorted(set(product_ids))
    if not wanted:
        return set()
    free = CommerceStock.on_hand - CommerceStock.reserved - CommerceLocation.safety_stock
    query = (
        select(CommerceVariant.product_id).distinct()
        .join(CommerceStock, CommerceStock.variant_id == CommerceVariant.id)
        .join(CommerceLocation, CommerceLocation.id == CommerceStock.location_id)
        .join(CommerceProduct, CommerceProduct.id == CommerceVariant.product_id)
        .where(CommerceVariant.product_id.in_(wanted), CommerceVariant.active.is_(True), CommerceProduct.active.is_(True),
               CommerceLocation.active.is_(True), free > 0)
    )
    if location_id is not None:
        query = query.where(CommerceStock.location_id == location_id)
    return set(session.scalars(query))


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
