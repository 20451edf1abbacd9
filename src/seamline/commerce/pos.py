"""The store channel: what a store's POS and its clerk do through the API.

- Find a customer by phone (any format), email or loyalty card, read-only, with the orders
  waiting for them at this store and their recent orders from every channel.
- The store's pickup queue, and handover by pickup code (`orders.pick_up`, channel "store"); an
  order bound for another store is refused (409 `wrong_store`) before the code is looked at.
- In-store sales: a `CommerceOrder` of channel "store", fulfilment "in_store", born "completed",
  priced by `pricing.price_lines` like every channel, linked to the person's one profile through
  identity resolution exactly as order placement is, and sold from this store's stock. The till
  may sell what is on hand and not reserved for click & collect orders; the location's safety
  stock is kept back from *online* sale only (it is the display the customer takes from), so
  the till may sell it. A shortage is a 409 `insufficient_stock` listing every line short.
  The money is a captured payment of the till provider (`on_pickup`, payments.py), so a
  return refunds it like any order's; cash or card is written in the sale's history note.
  The sale's key is the `Idempotency-Key` header or else the receipt number, scoped to the store
  (receipt counters of two stores may both be at 42).
- Stock: this store's own, and the other stores holding the SKU, nearest first.

Returns at the till are `POST /v1/orders/{id}/returns` with the store's code as `location`
(commerce/returns.py); nothing here duplicates them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import case, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seamline.commerce import events, orders, promotions, redemption
from seamline.commerce.catalog import variants_by_sku
from seamline.commerce.models import (
    CommerceLocation,
    CommerceOrder,
    CommerceOrderLine,
    CommerceOrderStatus,
    CommerceReservation,
    CommerceStock,
)
from seamline.commerce.priced import PricedCart
from seamline.commerce.pricing import price_lines, quantities_of
from seamline.commerce.promotions import CouponUnavailable
from seamline.commerce.schemas import PosHandover, SaleCreate
from seamline.commerce.stock import (
    InsufficientStock,
    distance_km,
    lock_stock,
    move,
    open_rest_of_today,
)
from seamline.core.config import Settings
from seamline.core.errors import Conflict, NotFound, TransactionConflict, Unprocessable
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.models import CustomerIdentity

#: The identifier type a loyalty card is (core/config.py BUILTIN_IDENTIFIER_TYPES).
CARD_TYPE = "loyalty_card"
#: The POS search parameters and the identifier type each one looks up.
SEARCH_TYPES = {"phone": "phone", "email": "email", "card": CARD_TYPE}
#: Orders waiting at a store for their customer, in the order the clerk sees them.
WAITING = ("ready_for_pickup", "confirmed")
RECENT_ORDERS = 10
#: The payment provider of a till sale: paid at the till as the goods are handed over, refunds
#: paid out at the till (payments.py). Cash or card is written in the sale's history note.
TILL_PAYMENT = "on_pickup"
NOTE_LENGTH = 500  # CommerceOrderStatus.note


def store_by_code(session: Session, code: str) -> CommerceLocation:
    """The active store with this code: 404 `store_not_found`, or 422 `not_a_store` for a
    warehouse or pickup point."""
    location = session.scalar(select(CommerceLocation).where(CommerceLocation.code == code))
    if location is None or not location.active:
        raise NotFound(f"No store {code!r}", code="store_not_found", details={"store": code})
    if location.kind != "store":
        raise Unprocessable(
            f"{code} is a {location.kind.replace('_', ' ')}, not a store", code="not_a_store",
            details={"store": code, "kind": location.kind},
        )
    return location


def _note(*parts: str | None) -> str:
    return "; ".join(p for p in parts if p)[:NOTE_LENGTH]


# --- customers -----------------------------------------------------------------------------------


def _name(traits: dict[str, Any]) -> str | None:
    def text(key: str) -> str | None:
        value = traits.get(key)
        return value.strip() or None if isinstance(value, str) else None

    return text("name") or " ".join(filter(None, (text("first_name"), text("last_name")))) or None


def _shown_types(rules: IdentifierRules) -> set[str]:
    """Identifier types a clerk may read out: phones, emails, loyalty cards (not device ids)."""
    return {t for t, kind in rules.types.items() if kind in ("phone", "email")} | {CARD_TYPE}


def _customer_briefs(
    session: Session, rules: IdentifierRules, profile_ids: set[int], *, with_traits: bool = False
) -> dict[int, dict[str, Any]]:
    if not profile_ids:
        return {}
    shown = _shown_types(rules)
    identities: dict[int, list[CustomerIdentity]] = {pid: [] for pid in profile_ids}
    for identity in session.scalars(
        select(CustomerIdentity).where(CustomerIdentity.profile_id.in_(profile_ids)).order_by(CustomerIdentity.id)
    ):
        identities[identity.profile_id].append(identity)
    traits = customers_service.traits_by_profile(session, {pid: [i.id for i in ids] for pid, ids in identities.items()})
    briefs = {}
    for pid in profile_ids:
        values = {key: t["value"] for key, t in traits[pid].items()}
        briefs[pid] = {
            "id": pid, "name": _name(values),
            "identifiers": [{"type": i.type, "value": i.value} for i in identities[pid] if i.type in shown],
        }
        if with_traits:
            briefs[pid]["traits"] = values
    return briefs


def _render_orders(
    session: Session, rules: IdentifierRules, found: list[CommerceOrder], *, with_customer: bool
) -> list[dict[str, Any]]:
    """Orders as the till sees them (no pickup code), lines and customers read in bulk."""
    if not found:
        return []
    lines: dict[int, list[dict[str, Any]]] = {o.id: [] for o in found}
    for line in session.scalars(
        select(CommerceOrderLine).where(CommerceOrderLine.order_id.in_(list(lines))).order_by(CommerceOrderLine.id)
    ):
        lines[line.order_id].append({"sku": line.sku, "name": line.name, "quantity": line.quantity,
                                     "unit_price": line.unit_price, "total": line.total})
    location_ids = {o.pickup_location_id for o in found if o.pickup_location_id}
    codes = dict(session.execute(
        select(CommerceLocation.id, CommerceLocation.code).where(CommerceLocation.id.in_(location_ids))
    ).all()) if location_ids else {}
    owners: dict[int, int] = {}
    if with_customer:  # an order keeps the id it was placed under; show the profile it lives in now
        owners = {pid: resolution.canonical_profile(session, pid).id for pid in {o.profile_id for o in found if o.profile_id}}
    briefs = _customer_briefs(session, rules, set(owners.values()))
    return [
        {
            "id": o.id, "channel": o.channel, "completed_channel": o.completed_channel, "status": o.status,
            "fulfilment": o.fulfilment, "pickup_location": codes.get(o.pickup_location_id), "currency": o.currency,
            "total": o.total, "reserved_until": o.reserved_until, "created_at": o.created_at, "lines": lines[o.id],
            "customer": briefs.get(owners.get(o.profile_id)) if o.profile_id else None,
        }
        for o in found
    ]


def _waiting_at(store: CommerceLocation):  # noqa: ANN202 - a Select
    return (
        select(CommerceOrder)
        .where(CommerceOrder.pickup_location_id == store.id, CommerceOrder.status.in_(WAITING))
        .order_by(case((CommerceOrder.status == "ready_for_pickup", 0), else_=1), CommerceOrder.created_at, CommerceOrder.id)
    )


def find_customer(
    session: Session, *, rules: IdentifierRules, store: CommerceLocation, search: dict[str, str | None]
) -> dict[str, Any]:
    """The customer card for exactly one of phone, email or card. Reads only: an unknown
    identifier is a 404 `customer_not_found`, never a new profile."""
    given = {param: value for param, value in search.items() if value is not None}
    if len(given) != 1:
        raise Unprocessable(
            "Give exactly one of phone, email or card", code="one_identifier_required",
            details={"given": sorted(given), "accepted": sorted(SEARCH_TYPES)},
        )
    (param, value), = given.items()
    found = customers_service.lookup(session, rules=rules, type_name=SEARCH_TYPES[param], value=value)
    profile = customers_service.get_profile(session, found.id)
    profile_ids = customers_service.merged_profile_ids(session, profile.id)
    card = _customer_briefs(session, rules, {profile.id}, with_traits=True)[profile.id]
    waiting = list(session.scalars(_waiting_at(store).where(CommerceOrder.profile_id.in_(profile_ids))))
    recent = orders.orders_of_customer(session, profile_ids, limit=RECENT_ORDERS)
    card["pickups_here"] = _render_orders(session, rules, waiting, with_customer=False)
    card["recent_orders"] = _render_orders(session, rules, recent, with_customer=False)
    return card


# --- pickups -------------------------------------------------------------------------------------


def pickups(session: Session, *, rules: IdentifierRules, store: CommerceLocation, limit: int) -> list[dict[str, Any]]:
    """Orders waiting for their customer at this store: ready first, then oldest first."""
    return _render_orders(session, rules, list(session.scalars(_waiting_at(store).limit(limit))), with_customer=True)


def hand_over(session: Session, *, settings: Settings, store: CommerceLocation, data: PosHandover) -> CommerceOrder:
    """Handover at this store by pickup code, with the order's number or by the code alone (the
    order waiting here with it; two such orders: 409 `pickup_code_ambiguous`, none: 404
    `pickup_code_unknown`). An order to be collected elsewhere (or delivered) is a 409
    `wrong_store`; a wrong code a 422 `wrong_pickup_code` (`orders.pick_up`). An order still
    being prepared here (`confirmed`) is marked ready and handed over in the same transaction:
    its stock is reserved in this store, and the customer is at the counter."""
    order_id = data.order_id if data.order_id is not None else _waiting_with_code(session, store, data.code)
    order = orders.get_order(session, order_id, lock=True)
    if order.pickup_location_id != store.id:
        elsewhere = session.get(CommerceLocation, order.pickup_location_id) if order.pickup_location_id else None
        raise Conflict(
            f"Order {order.id} is collected at {elsewhere.code}, not {store.code}" if elsewhere
            else f"Order {order.id} is not collected in a store",
            code="wrong_store",
            details={"store": store.code, "pickup_location": elsewhere.code if elsewhere else None},
        )
    note = _note(store.code, f"clerk {data.clerk}" if data.clerk else None, data.note)
    if order.status == "confirmed":
        orders.mark_ready(session, settings=settings, order_id=order.id, channel="store", note=note)
    return orders.pick_up(session, order_id=order.id, code=data.code, channel="store", note=note)


def _waiting_with_code(session: Session, store: CommerceLocation, code: str) -> int:
    found = list(session.scalars(select(CommerceOrder.id).where(
        CommerceOrder.pickup_location_id == store.id, CommerceOrder.status.in_(WAITING), CommerceOrder.pickup_code == code,
    ).limit(2)))
    if len(found) > 1:
        raise Conflict("Several orders waiting here have this code: give the order's number", code="pickup_code_ambiguous")
    if not found:
        raise NotFound("No order waiting in this store has this pickup code", code="pickup_code_unknown")
    return found[0]


# --- sales ---------------------------------------------------------------------------------------


def _sale_key(store: CommerceLocation, key: str) -> str:
    """The order's idempotency key for a sale: scoped to the store (`commerce_order` keys are
    unique across channels), hashed when it would not fit the column."""
    scoped = f"pos:{store.code}:{key}"
    return scoped if len(scoped) <= 200 else f"pos:sha256:{hashlib.sha256(scoped.encode()).hexdigest()}"


def _sale_customer(session: Session, *, rules: IdentifierRules, store: CommerceLocation, data: SaleCreate) -> int | None:
    if data.customer_id is not None:
        return customers_service.get_profile(session, data.customer_id).id
    if not data.identifiers:
        return None
    usable, _blocked = rules.prepare([(i.type, i.value) for i in data.identifiers])
    if not usable:
        return None  # only placeholders ("0", a store's shared phone): an anonymous sale
    return resolution.resolve_identifiers(session, rules=rules, identifiers=usable, source=f"pos:{store.code}").profile_id


def _price_sale(session: Session, *, settings: Settings, data: SaleCreate, customer_id: int | None,
                now: datetime) -> PricedCart:
    """A sale's prices: the catalog's, then promotions, coupons and points (`pricing.price_lines`,
    as every channel)."""
    return price_lines(session, settings=settings, channel="store", quantities=quantities_of(data.lines),
                       customer_id=customer_id, coupons=data.coupons, now=now, points=data.points,
                       cards=orders.cards_of(data.identifiers))


def quote_sale(
    session: Session, *, settings: Settings, rules: IdentifierRules, data: SaleCreate, now: datetime | None = None,
) -> PricedCart:
    """What `record_sale` would charge for this sale now, writing nothing (the till shows the
    total before the customer pays): the same pricing for the customer it would be recorded
    against, `customer_id` or the first identifier someone already has. Identifiers nobody has
    yet are priced as an anonymous sale: the new customer `record_sale` makes has no tier, no
    traits and no points yet."""
    customer_id = customers_service.get_profile(session, data.customer_id).id if data.customer_id is not None else None
    if customer_id is None and data.identifiers:
        usable, _blocked = rules.prepare([(i.type, i.value) for i in data.identifiers])
        for identifier in usable:  # in priority order
            try:
                customer_id = customers_service.lookup(session, rules=rules, type_name=identifier.type,
                                                       value=identifier.value).id
                break
            except NotFound:
                continue
    return _price_sale(session, settings=settings, data=data, customer_id=customer_id, now=now or utcnow())


def record_sale(
    session: Session, *, settings: Settings, rules: IdentifierRules, store: CommerceLocation, data: SaleCreate,
    idempotency_key: str | None, now: datetime | None = None,
) -> orders.Placed:
    """Record a sale at the till in one transaction (see the module doc). A retry with the same
    key returns the first sale; the same key with another sale is a 422."""
    key = idempotency_key or data.receipt
    if not key:
        raise Unprocessable("A sale needs an Idempotency-Key header or a receipt number", code="idempotency_key_required")
    key = _sale_key(store, key)
    fingerprint = hashlib.sha256(
        orjson.dumps({"store": store.code, **data.model_dump(mode="json")}, option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    done = session.scalar(select(CommerceOrder).where(CommerceOrder.idempotency_key == key))
    if done is not None:
        if done.request_hash != fingerprint:
            raise Unprocessable("This key was used for a different sale", code="idempotency_key_reused")
        return orders.Placed(done, False)

    now = now or utcnow()
    customer_id = _sale_customer(session, rules=rules, store=store, data=data)
    priced = _price_sale(session, settings=settings, data=data, customer_id=customer_id, now=now)
    if priced.rejected_coupons:
        first = priced.rejected_coupons[0]
        raise CouponUnavailable(f"Coupon {first['code']}: {first['reason']}", details={"coupons": priced.rejected_coupons})
    if data.payment.amount is not None and data.payment.amount != priced.total:
        raise Unprocessable(
            f"The till charged {data.payment.amount}, the sale costs {priced.total} {priced.currency}",
            code="amount_mismatch",
            details={"expected": priced.total, "given": data.payment.amount, "currency": priced.currency},
        )
    order = CommerceOrder(
        profile_id=customer_id, channel="store", completed_channel="store", status="completed", fulfilment="in_store",
        pickup_location_id=store.id, payment_method=TILL_PAYMENT, currency=priced.currency,
        subtotal=priced.subtotal, discount=priced.discount, total=priced.total,
        promotions=[asdict(p) for p in priced.promotions],
        idempotency_key=key, request_hash=fingerprint, created_at=now, updated_at=now,
    )
    session.add(order)
    try:
        session.flush()  # claims the key before any stock is touched
    except IntegrityError:
        raise TransactionConflict() from None  # the same sale sent twice at once: the rerun finds it

    stock = lock_stock(session, [(line.variant_id, store.id) for line in priced.lines], create=False)
    shortages = []
    for line in priced.lines:
        row = stock.get((line.variant_id, store.id))
        sellable = 0 if row is None else max(0, row.on_hand - row.reserved)
        if sellable < line.quantity:
            shortages.append({"sku": line.sku, "requested": line.quantity, "available": sellable, "location": store.code})
    if shortages:
        first = shortages[0]
        raise InsufficientStock(
            f"Not enough {first['sku']} at {store.code}: {first['available']} of {first['requested']} not held for orders",
            details={"shortages": shortages},
        )

    lines = [
        CommerceOrderLine(order_id=order.id, variant_id=line.variant_id, sku=line.sku, name=line.name,
                          quantity=line.quantity, unit_price=line.unit_price, discount=line.discount, total=line.total)
        for line in priced.lines
    ]
    session.add_all(lines)
    session.flush()
    for line in lines:
        move(session, stock[(line.variant_id, store.id)], kind="sale", on_hand=-line.quantity, reference=f"order:{order.id}")
        session.add(CommerceReservation(order_id=order.id, line_id=line.id, variant_id=line.variant_id,
                                        location_id=store.id, quantity=line.quantity, status="committed"))
    note = _note(store.code, f"receipt {data.receipt}" if data.receipt else None,
                 f"clerk {data.clerk}" if data.clerk else None, f"paid by {data.payment.method}")
    session.add(CommerceOrderStatus(order_id=order.id, status="completed", channel="store", note=note, created_at=now))
    promotions.redeem(session, priced, order_id=order.id, customer_id=customer_id,
                      postgres=session.get_bind().dialect.name == "postgresql")
    redemption.debit(session, priced, order_id=order.id, customer_id=customer_id, channel="store")
    session.flush()
    events.order_placed(session, events.OrderPlaced(order.id, customer_id, "store", priced.total, priced.currency))
    # The goods leave with the customer now: payments records the till's capture (what a return
    # refunds), loyalty earns the points.
    events.order_handed_over(session, events.OrderHandedOver(order, "store"))
    return orders.Placed(order, True)


# --- stock ---------------------------------------------------------------------------------------


def stock_check(
    session: Session, *, store: CommerceLocation, sku: str, quantity: int, limit: int, now: datetime | None = None
) -> dict[str, Any]:
    """This store's stock of a SKU, and the other stores that can provide `quantity` of it,
    nearest first (stores without coordinates last)."""
    now = now or utcnow()
    variant = variants_by_sku(session, [sku])[sku]
    rows = session.execute(
        select(CommerceLocation, CommerceStock)
        .join(CommerceStock, CommerceStock.location_id == CommerceLocation.id)
        .where(CommerceStock.variant_id == variant.id, CommerceLocation.kind == "store", CommerceLocation.active.is_(True))
    ).all()
    here = {"location": store.code, "on_hand": 0, "reserved": 0, "sellable": 0}
    elsewhere = []
    for location, row in rows:
        if location.id == store.id:
            here.update(on_hand=row.on_hand, reserved=row.reserved, sellable=max(0, row.on_hand - row.reserved))
            continue
        available = row.on_hand - row.reserved - location.safety_stock
        if available < quantity:
            continue
        located = None not in (store.latitude, store.longitude, location.latitude, location.longitude)
        elsewhere.append({
            "location": location.code, "name_ru": location.name_ru, "name_en": location.name_en, "address": location.address,
            "distance_km": round(distance_km(store.latitude, store.longitude, location.latitude, location.longitude), 2)
            if located else None,
            "available": available, "pickup_enabled": location.pickup_enabled,
            "pickup_today": location.pickup_enabled and open_rest_of_today(location, now),
        })
    elsewhere.sort(key=lambda s: (s["distance_km"] is None, s["distance_km"] or 0.0, s["location"]))
    return {"sku": sku, "here": here, "elsewhere": elsewhere[:limit]}
