"""Orders: placement with reservation, the lifecycle, expiry.

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
  split across warehouses, nearest first."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session, make_transient_to_detached

from seamline.commerce import catalog_cache, events, promotions, redemption
from seamline.commerce.catalog_cache import CatalogLocation, CatalogSnapshot
from seamline.commerce.models import (
    CommerceLocation,
    CommerceOrder,
    CommerceOrderLine,
    CommerceOrderStatus,
    CommerceReservation,
)
from seamline.commerce.payment_providers import check_method
from seamline.commerce.priced import PricedCart
from seamline.commerce.pricing import price_lines, quantities_of
from seamline.commerce.promotions import CouponUnavailable
from seamline.commerce.schemas import (
    OrderCreate,
)
from seamline.commerce.stock import (
    InsufficientStock,
    distance_km,
    lock_stock,
    move,
)
from seamline.core.config import Settings
from seamline.core.db import DriverSQL
from seamline.core.errors import Conflict, NotFound, TransactionConflict, Unprocessable
from seamline.core.pagination import decode_cursor, page
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import IdentifierRules

OPEN_STATUSES = ("pending_payment", "confirmed", "ready_for_pickup")


@dataclass
class Placed:
    order: CommerceOrder
    created: bool
    #: What a new order's checkout wrote, so its view needs no reading back (`order_views`).
    lines: list[CommerceOrderLine] | None = None
    reservations: list[CommerceReservation] | None = None
    history: list[CommerceOrderStatus] | None = None
    location_codes: dict[int, str] | None = None


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
    sql = DriverSQL(session)
    if idempotency_key:
        found = sql.execute("SELECT id FROM commerce_order WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        done = session.get(CommerceOrder, found[0]) if found else None
        if done is not None:
            if done.request_hash != fingerprint:
                raise Unprocessable(
                    "This Idempotency-Key was used for a different order", code="idempotency_key_reused"
                )
            return Placed(done, False)

    check_method(settings, data.payment_method)
    quantities = quantities_of(data.lines)
    catalog = catalog_cache.snapshot(session)
    fulfilment = data.fulfilment
    pickup: CatalogLocation | None = None
    if fulfilment.kind == "delivery":
        if not fulfilment.address:
            raise Unprocessable("Delivery needs an address", code="address_required")
        candidates = _warehouses_nearest_first(catalog, fulfilment.address)
    else:
        if not fulfilment.location:
            raise Unprocessable("Choose the store or pickup point", code="location_required")
        pickup = catalog.location(fulfilment.location)
        expected_kind = "store" if fulfilment.kind == "click_and_collect" else "pickup_point"
        if pickup.kind not in (expected_kind, "store") or not pickup.pickup_enabled:
            raise Unprocessable(
                f"{pickup.code} does not hand over {fulfilment.kind.replace('_', ' ')} orders",
                code="pickup_not_available", details={"location": pickup.code},
            )
        candidates = [pickup]

    customer_id = _customer_id(session, rules=rules, data=data)
    priced = price_lines(session, settings=settings, channel=data.channel, quantities=quantities,
                         customer_id=customer_id, coupons=data.coupons, now=now, catalog=catalog,
                         points=data.points, cards=cards_of(data.identifiers))
    if priced.rejected_coupons:
        first = priced.rejected_coupons[0]
        raise CouponUnavailable(f"Coupon {first['code']}: {first['reason']}", details={"coupons": priced.rejected_coupons})
    variant_ids = {line.sku: line.variant_id for line in priced.lines}
    status = "confirmed" if data.payment_method == "on_pickup" else "pending_payment"
    # Only an order waiting for payment runs out (commerce_reservation_minutes); a confirmed one
    # keeps its stock until the store marks it ready (then the pickup hold runs) or it ships.
    reserved_until = now + timedelta(minutes=settings.commerce_reservation_minutes) if status == "pending_payment" else None
    order = _insert_order(sql, session, dict(
        profile_id=customer_id, channel=data.channel, status=status, fulfilment=fulfilment.kind,
        pickup_location_id=pickup.id if pickup else None, delivery_address=fulfilment.address,
        payment_method=data.payment_method, currency=settings.commerce_currency,
        subtotal=priced.subtotal, discount=priced.discount, total=priced.total,
        promotions=[asdict(p) for p in priced.promotions],
        pickup_code=f"{secrets.randbelow(10**6):06d}" if pickup else None,
        reserved_until=reserved_until, idempotency_key=idempotency_key, request_hash=fingerprint,
        created_at=now, updated_at=now,
    ))
    stock = _lock_stock_rows(sql, sorted({(v, loc.id) for v in variant_ids.values() for loc in candidates}))
    plan = _allocate(quantities, variant_ids, candidates, stock)
    lines, reservations, history = _write_checkout(sql, order, priced, plan, channel=data.channel, now=now)
    promotions.redeem(session, priced, order_id=order.id, customer_id=customer_id,
                      postgres=session.get_bind().dialect.name == "postgresql")
    redemption.debit(session, priced, order_id=order.id, customer_id=customer_id, channel=data.channel)
    events.order_placed(session, events.OrderPlaced(order.id, customer_id, data.channel, priced.total, settings.commerce_currency))
    return Placed(order, True, lines=lines, reservations=reservations, history=history,
                  location_codes={loc.id: loc.code for loc in candidates})


def cards_of(identifiers: Any) -> list[str]:
    """The loyalty card numbers a request identifies its customer by (a blocked one cannot spend points)."""
    return [i.value for i in identifiers if i.type == "loyalty_card"]


def _warehouses_nearest_first(catalog: CatalogSnapshot, address: dict[str, Any]) -> list[CatalogLocation]:
    warehouses = catalog.warehouses()
    lat, lon = address.get("latitude"), address.get("longitude")
    if isinstance(lat, (int, float)) and isinstance(lon, (int, float)):
        far = float("inf")
        warehouses.sort(key=lambda w: distance_km(lat, lon, w.latitude, w.longitude)
                        if w.latitude is not None and w.longitude is not None else far)
    if not warehouses:
        raise Unprocessable("No warehouse ships orders", code="no_warehouse")
    return warehouses


def _allocate(
    quantities: dict[str, int], variant_ids: dict[str, int], candidates: list[CatalogLocation],
    stock: dict[tuple[int, int], _StockRow],
) -> dict[str, list[tuple[int, int]]]:
    """{sku: [(location id, quantity)]}: the first candidate holding everything, else each line
    split nearest first; every shortage reported at once."""
    def available(sku: str, location: CatalogLocation) -> int:
        row = stock.get((variant_ids[sku], location.id))
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


def _insert_order(sql: DriverSQL, session: Session, values: dict[str, Any]) -> CommerceOrder:
    """Insert the order row through the driver, claiming its Idempotency-Key before any stock is
    touched, and return it as a persistent object of the session (no reading back)."""
    stored = {**values, "created_at": sql.time(values["created_at"]), "updated_at": sql.time(values["updated_at"]),
              "reserved_until": sql.time(values["reserved_until"]) if values["reserved_until"] is not None else None,
              "delivery_address": orjson.dumps(values["delivery_address"]).decode() if values["delivery_address"] is not None else None,
              "promotions": orjson.dumps(values["promotions"]).decode()}
    row = sql.execute(
        f"INSERT INTO commerce_order ({', '.join(stored)}) VALUES ({', '.join('?' * len(stored))}) "
        "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id", list(stored.values()),
    ).fetchone()
    if row is None:  # the same key at the same moment: the retry returns the order that won
        raise TransactionConflict()
    order = CommerceOrder(id=row[0], completed_channel=None, **values)
    make_transient_to_detached(order)
    session.add(order)
    return order


@dataclass(frozen=True, slots=True)
class _StockRow:
    on_hand: int
    reserved: int


def _lock_stock_rows(sql: DriverSQL, keys: list[tuple[int, int]]) -> dict[tuple[int, int], _StockRow]:
    """The running totals of these (variant, location) pairs, locked in that order (the
    checkout's hot path, through the driver: `stock.lock_stock` is the ORM form); a pair without
    a row has no stock and is left out."""
    if not keys:
        return {}
    pairs = " OR ".join(["(variant_id = ? AND location_id = ?)"] * len(keys))
    lock = "" if sql.sqlite else " FOR UPDATE"
    rows = sql.execute(
        f"SELECT variant_id, location_id, on_hand, reserved FROM commerce_stock WHERE {pairs} "
        f"ORDER BY variant_id, location_id{lock}", [value for key in keys for value in key],
    ).fetchall()
    return {(v, loc): _StockRow(on_hand, reserved) for v, loc, on_hand, reserved in rows}


def _write_checkout(
    sql: DriverSQL, order: CommerceOrder, priced: PricedCart, plan: dict[str, list[tuple[int, int]]], *, channel: str,
    now: datetime,
) -> tuple[list[CommerceOrderLine], list[CommerceReservation], list[CommerceOrderStatus]]:
    """Write a checkout's lines, reservations, stock movements, running totals and first status
    with a few driver-level statements (the rows of the stock were locked by `_lock_stock_rows`).
    Returns them as unsaved objects, for the order's view only: the rows are in the tables."""
    at, reference = sql.time(now), f"order:{order.id}"
    line_columns = ("order_id", "variant_id", "sku", "name", "quantity", "unit_price", "discount", "total")
    line_rows = [(order.id, p.variant_id, p.sku, p.name, p.quantity, p.unit_price, p.discount, p.total) for p in priced.lines]
    ids = dict((sku, line_id) for line_id, sku in sql.execute(
        f"INSERT INTO commerce_order_line ({', '.join(line_columns)}) VALUES "
        + ", ".join([f"({', '.join('?' * len(line_columns))})"] * len(line_rows)) + " RETURNING id, sku",
        [value for row in line_rows for value in row],
    ).fetchall())
    lines = [CommerceOrderLine(id=ids[row[2]], **dict(zip(line_columns, row, strict=True))) for row in line_rows]
    reservations = [
        CommerceReservation(order_id=order.id, line_id=line.id, variant_id=line.variant_id, location_id=location_id,
                            quantity=taken, status="active")
        for line in lines for location_id, taken in plan[line.sku]
    ]
    sql.executemany(
        "UPDATE commerce_stock SET reserved = reserved + ?, updated_at = ? WHERE variant_id = ? AND location_id = ?",
        [(r.quantity, at, r.variant_id, r.location_id) for r in reservations],
    )
    sql.insert_rows("commerce_stock_movement", ("variant_id", "location_id", "kind", "on_hand_delta", "reserved_delta",
                                                "reference", "created_at"),
                    [(r.variant_id, r.location_id, "reservation", 0, r.quantity, reference, at) for r in reservations])
    sql.insert_rows("commerce_reservation", ("order_id", "line_id", "variant_id", "location_id", "quantity", "status"),
                    [(r.order_id, r.line_id, r.variant_id, r.location_id, r.quantity, r.status) for r in reservations])
    history = [CommerceOrderStatus(order_id=order.id, status=order.status, channel=channel, note="", created_at=now)]
    sql.execute("INSERT INTO commerce_order_status (order_id, status, channel, note, created_at) VALUES (?, ?, ?, ?, ?)",
                (order.id, order.status, channel, "", at))
    return lines, reservations, history


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
    stock = lock_stock(session, [(r.variant_id, r.location_id) for r in reservations])
    for r in reservations:
        row = stock[(r.variant_id, r.location_id)]
        if outcome == "released":
            move(session, row, kind="release", reserved=-r.quantity, reference=f"order:{order.id}")
        else:
            move(session, row, kind="sale", on_hand=-r.quantity, reserved=-r.quantity, reference=f"order:{order.id}")
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
    was = order.status
    _transition(session, order, to="confirmed", allowed_from=("pending_payment",), channel=channel, note=note or "paid")
    if was != order.status:
        order.reserved_until = None  # paid: the payment window no longer applies
    return order


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


#: Notes of the order's history that record a customer's request without changing its status.
HOLD_EXTENDED = "hold extended"
RETURN_REQUESTED = "return requested"


def _noted(session: Session, order_id: int, note: str) -> bool:
    return session.scalar(select(func.count()).select_from(CommerceOrderStatus).where(
        CommerceOrderStatus.order_id == order_id, CommerceOrderStatus.note == note)) > 0


def extend_hold(session: Session, *, order_id: int, hours: int, channel: str | None,
                now: datetime | None = None) -> tuple[CommerceOrder, bool]:
    """A pickup order waiting for its customer waits `hours` longer, once (the stock stays held:
    expiry reads `reserved_until`). (The order, whether it was extended now.) A second request
    changes nothing; an order not waiting for pickup is a 409 `invalid_order_status`."""
    order = get_order(session, order_id, lock=True)
    if order.status != "ready_for_pickup" or order.reserved_until is None:
        raise Conflict(f"Order {order.id} is {order.status}: only an order waiting for pickup can wait longer",
                       code="invalid_order_status", details={"status": order.status})
    if _noted(session, order.id, HOLD_EXTENDED):
        return order, False
    now = now or utcnow()
    order.reserved_until = order.reserved_until + timedelta(hours=hours)
    order.updated_at = now
    session.add(CommerceOrderStatus(order_id=order.id, status=order.status, channel=channel, note=HOLD_EXTENDED, created_at=now))
    return order, True


def request_return(session: Session, *, order_id: int, channel: str | None, now: datetime | None = None) -> tuple[CommerceOrder, bool]:
    """The customer asked to return (part of) a received order: a note in its history, which the
    store sees when the goods come back (`returns.accept_return` does the refund). Once per order;
    an order not received yet is a 409 `invalid_order_status`."""
    order = get_order(session, order_id, lock=True)
    if order.status != "completed":
        raise Conflict(f"Order {order.id} is {order.status}: only a received order can be returned",
                       code="invalid_order_status", details={"status": order.status})
    if _noted(session, order.id, RETURN_REQUESTED):
        return order, False
    now = now or utcnow()
    order.updated_at = now
    session.add(CommerceOrderStatus(order_id=order.id, status=order.status, channel=channel, note=RETURN_REQUESTED, created_at=now))
    return order, True


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
    events.order_handed_over(session, events.OrderHandedOver(order, channel))  # pay on pickup: paid at the till now
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
    was = order.status
    _transition(session, order, to="completed", allowed_from=("shipped",), channel=channel, note=note)
    order.completed_channel = order.completed_channel or channel
    if was != order.status:
        events.order_handed_over(session, events.OrderHandedOver(order, channel))  # pay on pickup: paid to the courier
    return order


def cancel(session: Session, *, order_id: int, channel: str | None, note: str = "", now: datetime | None = None) -> CommerceOrder:
    order = get_order(session, order_id, lock=True)
    was = order.status
    _transition(session, order, to="cancelled", allowed_from=OPEN_STATUSES, channel=channel, note=note, now=now)
    if was != order.status:
        order.reserved_until = None
        _settle(session, order, outcome="released")
        events.order_cancelled(session, events.OrderCancelled(order_id=order.id, profile_id=order.profile_id,
                                                              currency=order.currency, total=order.total, channel=channel))
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


def orders_of_customer(session: Session, profile_ids: list[int], *, limit: int = 50) -> list[CommerceOrder]:
    return list(session.scalars(
        select(CommerceOrder).where(CommerceOrder.profile_id.in_(profile_ids))
        .order_by(CommerceOrder.created_at.desc(), CommerceOrder.id.desc()).limit(limit)
    ))


def list_orders(
    session: Session, *, status: str | None = None, channel: str | None = None, fulfilment: str | None = None,
    location: str | None = None, profile_ids: list[int] | None = None, limit: int = 50, offset: int = 0,
) -> list[CommerceOrder]:
    """Orders newest first, filtered by status, channel, fulfilment, the store or pickup point
    (its code) and the customer (a profile and those merged into it): the staff console's list."""
    query = select(CommerceOrder)
    if status:
        query = query.where(CommerceOrder.status == status)
    if channel:
        query = query.where(CommerceOrder.channel == channel)
    if fulfilment:
        query = query.where(CommerceOrder.fulfilment == fulfilment)
    if location:
        query = query.where(CommerceOrder.pickup_location_id.in_(
            select(CommerceLocation.id).where(CommerceLocation.code == location)))
    if profile_ids is not None:
        query = query.where(CommerceOrder.profile_id.in_(profile_ids))
    return list(session.scalars(
        query.order_by(CommerceOrder.created_at.desc(), CommerceOrder.id.desc()).limit(limit).offset(offset)
    ))


def find_orders(
    session: Session, *, customer_id: int | None = None, statuses: list[str] | None = None, channel: str | None = None,
    store: str | None = None, placed_from: datetime | None = None, placed_to: datetime | None = None,
    cursor: str | None = None, limit: int = 50,
) -> tuple[list[CommerceOrder], str | None]:
    """`GET /v1/orders`: one page of orders, newest first (by id), and the cursor of the next page.

    `customer_id` is the person: the profile it now lives in and every profile merged into it
    (an unknown id is a 404, an erased person a 410); `store` the code of the location where
    the order is collected or was sold (`pickup_location`; unknown: 422 `unknown_location`);
    `placed_from` is inclusive and `placed_to` exclusive, a time without a zone read as UTC."""
    query = select(CommerceOrder)
    if customer_id is not None:
        profile = customers_service.get_profile(session, customer_id)
        query = query.where(CommerceOrder.profile_id.in_(customers_service.merged_profile_ids(session, profile.id)))
    if statuses:
        query = query.where(CommerceOrder.status.in_(statuses))
    if channel:
        query = query.where(CommerceOrder.channel == channel)
    if store:
        location_id = session.scalar(select(CommerceLocation.id).where(CommerceLocation.code == store))
        if location_id is None:
            raise Unprocessable(f"Unknown location {store!r}", code="unknown_location", details={"location": store})
        query = query.where(CommerceOrder.pickup_location_id == location_id)
    if placed_from is not None:
        query = query.where(CommerceOrder.created_at >= _utc(placed_from, "placed_from"))
    if placed_to is not None:
        query = query.where(CommerceOrder.created_at < _utc(placed_to, "placed_to"))
    if (before := decode_cursor(cursor)) is not None:
        query = query.where(CommerceOrder.id < before)
    return page(list(session.scalars(query.order_by(CommerceOrder.id.desc()).limit(limit + 1))), limit)


def _utc(moment: datetime, name: str) -> datetime:
    """An aware UTC time (no zone: UTC); one that leaves the calendar in UTC (0001-01-01 at +03:00) is a 422."""
    try:
        return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except OverflowError:
        raise Unprocessable(f"{name} is out of range", code="validation_error", details={name: str(moment)}) from None


def sales_by_channel(session: Session, *, since: datetime) -> list[dict[str, Any]]:
    """Orders placed since `since` (not cancelled), counted and summed per channel and currency."""
    rows = session.execute(
        select(CommerceOrder.channel, CommerceOrder.currency, func.count(), func.coalesce(func.sum(CommerceOrder.total), 0))
        .where(CommerceOrder.created_at >= since, CommerceOrder.status != "cancelled")
        .group_by(CommerceOrder.channel, CommerceOrder.currency)
        .order_by(CommerceOrder.channel, CommerceOrder.currency)).all()
    return [{"channel": channel, "currency": currency, "orders": count, "revenue": int(total)}
            for channel, currency, count, total in rows]
