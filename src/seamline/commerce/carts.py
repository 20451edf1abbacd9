"""Carts: one active cart per person, shared by every channel.

A cart belongs to a customer profile, or, before the person is known, to an `anonymous_id` (the
tracker's first-party id). It holds SKUs and quantities only; prices and promotions are applied
on every read (`cart_view`), so the app, the site, the call center and the till show the same
amounts. It holds no stock: `available` is shown per line, and the checkout reserves.

Merge rule. An anonymous cart joins the person's cart as soon as its anonymous id belongs to the
profile (an `identify`/`alias` event linked it, a login called `POST /v1/carts/merge`, or an order
carried it), and the carts of profiles merged into one another join the same way. It happens on
the next access to either cart. When the person has no active cart, the anonymous cart simply
becomes theirs. Otherwise, per SKU the quantities are summed, capped by what is sellable across
all locations, but never below the larger of the two (the shopper keeps what either cart
showed; the checkout reports any shortage). Coupons are united (at most 5). The absorbed cart is
kept, marked `merged`, so its history stays on the person's timeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seamline.commerce import events, orders
from seamline.commerce.catalog import variants_by_sku
from seamline.commerce.models import (
    CommerceCart,
    CommerceCartChange,
    CommerceCartLine,
    CommerceCoupon,
    CommerceLocation,
    CommerceOrder,
    CommerceStock,
    CommerceVariant,
)
from seamline.commerce.pricing import price_lines
from seamline.commerce.schemas import CartCheckoutIn, OrderCreate
from seamline.commerce.stock import InsufficientStock
from seamline.core.config import Settings
from seamline.core.errors import Conflict, TransactionConflict, Unprocessable
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import Identifier, IdentifierRules
from seamline.customers.models import CustomerIdentity

MAX_COUPONS = 5
MAX_LINES = 200  # what one order may hold


@dataclass(frozen=True)
class Owner:
    """Whose cart: a live profile (with every profile merged into it), or an anonymous id not yet
    linked to anyone."""

    profile_id: int | None
    anonymous_id: str | None
    profile_ids: tuple[int, ...] = ()


def owner_of(session: Session, *, rules: IdentifierRules, customer_id: int | None, anonymous_id: str | None) -> Owner:
    if (customer_id is None) == (anonymous_id is None):
        raise Unprocessable("Give either customer_id or anonymous_id", code="cart_owner_required")
    if customer_id is not None:
        profile = customers_service.get_profile(session, customer_id)
        return Owner(profile.id, None, tuple(customers_service.merged_profile_ids(session, profile.id)))
    identifier = rules.normalize("anonymous_id", anonymous_id)
    linked = session.scalar(select(CustomerIdentity.profile_id).where(
        CustomerIdentity.type == identifier.type, CustomerIdentity.value == identifier.value
    ))
    if linked is not None:
        profile = resolution.canonical_profile(session, linked)
        if profile.status == "active":
            return Owner(profile.id, None, tuple(customers_service.merged_profile_ids(session, profile.id)))
    return Owner(None, identifier.value)


def _active_cart(session: Session, owner: Owner) -> CommerceCart | None:
    query = select(CommerceCart).where(CommerceCart.status == "active")
    if owner.profile_id is not None:
        query = query.where(CommerceCart.profile_id == owner.profile_id)
    else:
        query = query.where(CommerceCart.profile_id.is_(None), CommerceCart.anonymous_id == owner.anonymous_id)
    return session.scalar(query)


def _strays(session: Session, owner: Owner) -> list[CommerceCart]:
    """Active carts that now belong to this person but are not theirs yet: carts of anonymous
    ids linked to the profile, and carts of profiles merged into it."""
    if owner.profile_id is None:
        return []
    anonymous_ids = select(CustomerIdentity.value).where(
        CustomerIdentity.type == "anonymous_id", CustomerIdentity.profile_id.in_(owner.profile_ids)
    )
    return list(session.scalars(
        select(CommerceCart).where(
            CommerceCart.status == "active",
            or_(
                CommerceCart.profile_id.in_([p for p in owner.profile_ids if p != owner.profile_id]),
                (CommerceCart.profile_id.is_(None) & CommerceCart.anonymous_id.in_(anonymous_ids)),
            ),
        ).order_by(CommerceCart.id)
    ))


def needs_merge(session: Session, owner: Owner) -> bool:
    return bool(_strays(session, owner))


def sellable(session: Session, variant_ids: list[int]) -> dict[int, int]:
    """Units of each variant that could be sold now across all active locations."""
    if not variant_ids:
        return {}
    free = func.sum(func.max(0, CommerceStock.on_hand - CommerceStock.reserved - CommerceLocation.safety_stock)) \
        if session.get_bind().dialect.name == "sqlite" else \
        func.sum(func.greatest(0, CommerceStock.on_hand - CommerceStock.reserved - CommerceLocation.safety_stock))
    rows = session.execute(
        select(CommerceStock.variant_id, free)
        .join(CommerceLocation, CommerceLocation.id == CommerceStock.location_id)
        .where(CommerceStock.variant_id.in_(variant_ids), CommerceLocation.active.is_(True))
        .group_by(CommerceStock.variant_id)
    )
    found = {variant_id: int(units or 0) for variant_id, units in rows}
    return {v: found.get(v, 0) for v in variant_ids}


def _change(session: Session, cart: CommerceCart, kind: str, *, channel: str, now: datetime, sku: str | None = None,
            quantity: int | None = None, detail: str = "") -> None:
    session.add(CommerceCartChange(cart_id=cart.id, kind=kind, sku=sku, quantity=quantity, detail=detail[:200],
                                   channel=channel, created_at=now))
    cart.channel, cart.updated_at = channel, now
    events.cart_changed(session, events.CartChanged(cart.id, cart.profile_id, cart.anonymous_id, kind))


def merge_strays(session: Session, owner: Owner, *, channel: str, now: datetime | None = None) -> CommerceCart | None:
    """Bring every stray cart of the person into their cart (the merge rule in the module doc).
    Returns the person's active cart, if they have one."""
    now = now or utcnow()
    target = _active_cart(session, owner)
    for stray in _strays(session, owner):
        if target is None:
            stray.profile_id = owner.profile_id  # adopted as it is
            _change(session, stray, "merged", channel=channel, now=now, detail="now the customer's cart")
            target = stray
            continue
        lines = {line.variant_id: line for line in _lines(session, target)}
        incoming = _lines(session, stray)
        free = sellable(session, [line.variant_id for line in incoming])
        for line in incoming:
            mine = lines.get(line.variant_id)
            if mine is None:
                session.add(CommerceCartLine(cart_id=target.id, variant_id=line.variant_id, sku=line.sku,
                                             quantity=line.quantity, channel=line.channel, updated_at=now))
            else:
                mine.quantity = min(mine.quantity + line.quantity, max(free[line.variant_id], mine.quantity, line.quantity))
                mine.updated_at = now
        target.coupons = list(dict.fromkeys([*target.coupons, *stray.coupons]))[:MAX_COUPONS]
        stray.status, stray.merged_into_id, stray.profile_id = "merged", target.id, owner.profile_id
        stray.updated_at = now  # the stamp says the cart changed (the analytics mirror reads by it)
        _change(session, target, "merged", channel=channel, now=now, detail=f"cart {stray.id}")
    session.flush()
    return target


def _lines(session: Session, cart: CommerceCart) -> list[CommerceCartLine]:
    return list(session.scalars(select(CommerceCartLine).where(CommerceCartLine.cart_id == cart.id).order_by(CommerceCartLine.id)))


def _cart_for_change(session: Session, owner: Owner, *, channel: str, now: datetime) -> CommerceCart:
    cart = merge_strays(session, owner, channel=channel, now=now)
    if cart is None:
        cart = CommerceCart(profile_id=owner.profile_id, anonymous_id=owner.anonymous_id, status="active",
                            coupons=[], channel=channel, created_at=now, updated_at=now)
        session.add(cart)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise TransactionConflict() from None  # another channel made it at the same moment: use that one
    return cart


def set_line(session: Session, owner: Owner, *, sku: str, quantity: int, channel: str,
             now: datetime | None = None) -> CommerceCart:
    """Put `quantity` of a SKU in the cart (0 removes it). Setting, not adding, so a retry
    changes nothing. More than is sellable anywhere is refused. `now`: for imports and the demo."""
    now = now or utcnow()
    variant = variants_by_sku(session, [sku])[sku]
    cart = _cart_for_change(session, owner, channel=channel, now=now)
    line = session.scalar(select(CommerceCartLine).where(CommerceCartLine.cart_id == cart.id,
                                                         CommerceCartLine.variant_id == variant.id))
    before = line.quantity if line else 0
    if quantity == before:
        return cart
    if line is None and session.scalar(select(func.count()).where(CommerceCartLine.cart_id == cart.id)) >= MAX_LINES:
        raise Conflict(f"A cart holds at most {MAX_LINES} different SKUs", code="cart_full")
    if quantity > before:
        free = sellable(session, [variant.id])[variant.id]
        if quantity > free:
            raise InsufficientStock(
                f"Only {free} of {sku} can be sold now", details={"shortages": [{"sku": sku, "requested": quantity, "available": free}]}
            )
    if quantity == 0:
        session.delete(line)
        _change(session, cart, "product_removed", channel=channel, now=now, sku=sku, quantity=before)
    elif line is None:
        session.add(CommerceCartLine(cart_id=cart.id, variant_id=variant.id, sku=sku, quantity=quantity,
                                     channel=channel, updated_at=now))
        _change(session, cart, "product_added", channel=channel, now=now, sku=sku, quantity=quantity)
    else:
        line.quantity, line.updated_at = quantity, now
        _change(session, cart, "quantity_changed", channel=channel, now=now, sku=sku, quantity=quantity,
                detail=f"{before} -> {quantity}")
    session.flush()
    return cart


def add_coupon(session: Session, owner: Owner, *, code: str, channel: str) -> CommerceCart:
    code = code.strip().upper()
    coupon = session.scalar(select(CommerceCoupon).where(CommerceCoupon.code == code))
    if coupon is None or not coupon.active:
        raise Unprocessable(f"Unknown coupon {code!r}", code="unknown_coupon", details={"coupon": code})
    now = utcnow()
    cart = _cart_for_change(session, owner, channel=channel, now=now)
    if code not in cart.coupons:
        if len(cart.coupons) >= MAX_COUPONS:
            raise Conflict(f"At most {MAX_COUPONS} coupons per cart", code="too_many_coupons")
        cart.coupons = [*cart.coupons, code]
        _change(session, cart, "coupon_added", channel=channel, now=now, detail=code)
    session.flush()
    return cart


def remove_coupon(session: Session, owner: Owner, *, code: str, channel: str) -> CommerceCart | None:
    code = code.strip().upper()
    now = utcnow()
    cart = merge_strays(session, owner, channel=channel, now=now)
    if cart is not None and code in cart.coupons:
        cart.coupons = [c for c in cart.coupons if c != code]
        _change(session, cart, "coupon_removed", channel=channel, now=now, detail=code)
        session.flush()
    return cart


def link_and_merge(
    session: Session, *, rules: IdentifierRules, anonymous_id: str, customer_id: int | None,
    identifiers: list[tuple[str, str]], channel: str,
) -> Owner:
    """Login: the anonymous id becomes an identifier of the person (as an `identify` would make
    it), and the carts merge now."""
    if customer_id is None and not identifiers:
        raise Unprocessable("Give customer_id or identifiers", code="cart_owner_required")
    wanted = [("anonymous_id", anonymous_id), *identifiers]
    if customer_id is not None:
        profile = customers_service.get_profile(session, customer_id)
        anchor = customers_service.anchor_identity(session, profile.id)
        if anchor is None:
            raise Unprocessable(f"Customer {customer_id} has no identifier to link to", code="cart_owner_required")
        wanted.append((anchor.type, anchor.value))
    usable, _blocked = rules.prepare(wanted)
    handles = [Identifier(anchor.type, anchor.value)] if customer_id is not None else []
    resolved = resolution.resolve_identifiers(session, rules=rules, identifiers=usable, source=f"carts:{channel}",
                                              handles=handles)
    profile = resolution.canonical_profile(session, resolved.profile_id)
    owner = Owner(profile.id, None, tuple(customers_service.merged_profile_ids(session, profile.id)))
    merge_strays(session, owner, channel=channel)
    return owner


def cart_view(session: Session, *, settings: Settings, owner: Owner, channel: str | None) -> dict[str, Any]:
    """The cart priced now, for this channel and person (prices and promotions of this moment)."""
    cart = _active_cart(session, owner)
    lines = _lines(session, cart) if cart else []
    variants = {v.id: v for v in session.scalars(
        select(CommerceVariant).where(CommerceVariant.id.in_([line.variant_id for line in lines]))
    )} if lines else {}
    live = [line for line in lines if variants[line.variant_id].active]
    view: dict[str, Any] = {
        "id": cart.id if cart else None, "customer_id": owner.profile_id, "anonymous_id": owner.anonymous_id,
        "channel": cart.channel if cart else None, "currency": settings.commerce_currency, "lines": [],
        "coupons": list(cart.coupons) if cart else [], "subtotal": 0, "discount": 0, "total": 0,
        "promotions": [], "rejected_coupons": [], "unavailable": [line.sku for line in lines if line not in live],
        "updated_at": cart.updated_at if cart else None,
    }
    if not live:
        return view
    priced = price_lines(session, settings=settings, channel=channel, quantities={line.sku: line.quantity for line in live},
                         customer_id=owner.profile_id, coupons=cart.coupons)
    free = sellable(session, [line.variant_id for line in live])
    view.update(
        lines=[
            {"sku": p.sku, "name": p.name, "quantity": p.quantity, "unit_price": p.unit_price, "discount": p.discount,
             "total": p.total, "available": free[line.variant_id], "channel": line.channel}
            for line, p in ((line, priced.line(line.sku)) for line in live)
        ],
        subtotal=priced.subtotal, discount=priced.discount, total=priced.total,
        promotions=[{"code": a.code, "name": a.name, "amount": a.amount, "coupon": a.coupon} for a in priced.promotions],
        rejected_coupons=priced.rejected_coupons,
    )
    return view


def checkout(
    session: Session, *, settings: Settings, rules: IdentifierRules, owner: Owner, data: CartCheckoutIn,
    idempotency_key: str | None, now: datetime | None = None,
) -> orders.Placed:
    """The cart becomes an order (priced, allocated and reserved as any order); the person starts
    a new cart. A retry with the same Idempotency-Key returns the same order. `now`: for the demo."""
    if idempotency_key:
        done = session.scalar(select(CommerceOrder).where(CommerceOrder.idempotency_key == idempotency_key))
        if done is not None:
            return orders.Placed(done, False)
    now = now or utcnow()
    cart = merge_strays(session, owner, channel=data.channel, now=now)
    lines = _lines(session, cart) if cart else []
    if not lines:
        raise Conflict("The cart is empty", code="cart_empty")
    order_data = OrderCreate(
        channel=data.channel, customer_id=owner.profile_id,
        identifiers=[] if owner.profile_id else [{"type": "anonymous_id", "value": owner.anonymous_id}],
        lines=[{"sku": line.sku, "quantity": line.quantity} for line in lines], coupons=cart.coupons,
        fulfilment=data.fulfilment, payment_method=data.payment_method, points=data.points,
    )
    placed = orders.place_order(session, settings=settings, rules=rules, data=order_data,
                                idempotency_key=idempotency_key, now=now)
    cart.status, cart.order_id = "ordered", placed.order.id
    if cart.profile_id is None:
        cart.profile_id = placed.order.profile_id
    _change(session, cart, "ordered", channel=data.channel, now=now, detail=f"order {placed.order.id}")
    session.flush()
    return placed


def carts_of(session: Session, profile_ids: list[int]) -> list[CommerceCart]:
    return list(session.scalars(select(CommerceCart).where(CommerceCart.profile_id.in_(profile_ids)).order_by(CommerceCart.id)))
