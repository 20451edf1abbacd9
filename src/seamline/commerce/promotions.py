"""Promotions: one engine for every channel.

`apply` takes a priced cart (list prices) and takes discounts off its lines. The same cart, for
the same person, at the same moment, gets the same price in every channel, unless a promotion
was explicitly limited to some channels.

Rules, in this order:
- Candidates: active promotions inside their validity window that need no coupon, plus the
  promotions of the coupons given (a coupon code is case-insensitive). Those limited to
  channels apply only there; `conditions` must hold for the customer: `traits` (each named
  trait has that value; a segment as the profile sees it) and `tiers` (the loyalty tier, checked
  by a condition checker that the loyalty module registers; without one, no customer is in a
  tier). Anyone with a condition needs a known customer.
- They apply in `priority` order (then code), each to what the earlier ones left of the lines
  in its `scope` (SKUs and/or categories; empty = every line), and only when those lines'
  remaining amount reaches `min_subtotal`:
  * percent: `value` % off each line in scope, rounded down to the minor unit;
  * fixed: `value` off the lines in scope, shared in proportion to their amounts (largest
    remainder), never more than they cost;
  * buy_x_get_y: of the units in scope, priced highest first, every group of
    `buy_quantity + get_quantity` units gets its `get_quantity` cheapest free.
- A discount never takes a line below zero.

Coupons: their use is counted at checkout (`redeem`), under a lock on the coupon row, against
`usage_limit` (all customers) and `per_customer_limit`; a use by an order that was later cancelled
no longer counts. A coupon that cannot be used is reported in `rejected_coupons` when pricing a
cart and refused with 409 at checkout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seamline.commerce.catalog_cache import CatalogPromotion
from seamline.commerce.models import (
    CommerceCoupon,
    CommerceCouponRedemption,
    CommerceOrder,
    CommercePromotion,
)
from seamline.commerce.priced import AppliedPromotion, PricedCart, PricedLine
from seamline.commerce.schemas import CouponPut, PromotionPut
from seamline.core.errors import Conflict, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service

#: A condition checker: (session, profile id, the condition's value) -> whether the customer qualifies.
ConditionChecker = Callable[[Session, int, Any], bool]
_checkers: dict[str, ConditionChecker] = {}  # `traits` below; `tiers` from loyalty
#: A promotion as stored, or as the catalog snapshot keeps it (the engine reads either).
Promotion = CommercePromotion | CatalogPromotion


def register_condition(name: str, checker: ConditionChecker) -> None:
    """Let another module decide a condition (the loyalty module registers `tiers`)."""
    _checkers[name] = checker


def _has_traits(session: Session, profile_id: int, wanted: dict[str, Any]) -> bool:
    identity_ids = customers_service.identity_ids_of(session, profile_id)
    traits = customers_service.traits_of(session, identity_ids)
    return all(key in traits and traits[key]["value"] == value for key, value in wanted.items())


_checkers["traits"] = _has_traits  # the catalog's own condition

KNOWN_CONDITIONS = ("traits", "tiers")


class CouponUnavailable(Conflict):
    code = "coupon_unavailable"


# --- managing promotions and coupons ------------------------------------------------------------


def put_promotion(session: Session, *, code: str, data: PromotionPut) -> CommercePromotion:
    promotion = session.scalar(select(CommercePromotion).where(CommercePromotion.code == code))
    if promotion is None:
        promotion = CommercePromotion(code=code)
        session.add(promotion)
    values = data.model_dump()
    values["scope"] = {k: v for k, v in data.scope.model_dump().items() if v}
    values["conditions"] = data.conditions.model_dump(exclude_none=True)
    for field, value in values.items():
        setattr(promotion, field, value)
    session.flush()
    return promotion


def promotion_by_code(session: Session, code: str) -> CommercePromotion:
    promotion = session.scalar(select(CommercePromotion).where(CommercePromotion.code == code))
    if promotion is None:
        raise NotFound(f"Promotion {code!r} not found", code="promotion_not_found")
    return promotion


def list_promotions(session: Session) -> list[CommercePromotion]:
    return list(session.scalars(select(CommercePromotion).order_by(CommercePromotion.priority, CommercePromotion.code)))


def put_coupon(session: Session, *, code: str, data: CouponPut) -> CommerceCoupon:
    promotion = session.scalar(select(CommercePromotion).where(CommercePromotion.code == data.promotion))
    if promotion is None:
        raise Unprocessable(f"Unknown promotion {data.promotion!r}", code="unknown_promotion")
    coupon = session.scalar(select(CommerceCoupon).where(CommerceCoupon.code == code.upper()))
    if coupon is None:
        coupon = CommerceCoupon(code=code.upper())
        session.add(coupon)
    coupon.promotion_id, coupon.usage_limit = promotion.id, data.usage_limit
    coupon.per_customer_limit, coupon.active = data.per_customer_limit, data.active
    session.flush()
    return coupon


def coupon_view(session: Session, code: str) -> dict[str, Any]:
    coupon = session.scalar(select(CommerceCoupon).where(CommerceCoupon.code == code.upper()))
    if coupon is None:
        raise NotFound(f"Coupon {code!r} not found", code="coupon_not_found")
    promotion = session.get(CommercePromotion, coupon.promotion_id)
    return {"code": coupon.code, "promotion": promotion.code, "usage_limit": coupon.usage_limit,
            "per_customer_limit": coupon.per_customer_limit, "active": coupon.active,
            "used": _uses(session, coupon.id, None)}


def promotion_view(promotion: CommercePromotion) -> dict[str, Any]:
    return {field: getattr(promotion, field) for field in (
        "code", "name_ru", "name_en", "kind", "value", "buy_quantity", "get_quantity", "scope", "conditions",
        "channels", "min_subtotal", "requires_coupon", "priority", "starts_at", "ends_at", "active",
    )}


# --- the engine ---------------------------------------------------------------------------------


@dataclass
class _Candidate:
    promotion: Promotion
    coupon: CommerceCoupon | None


def _uses(session: Session, coupon_id: int, profile_id: int | None) -> int:
    """Uses of a coupon by orders that were not cancelled (by one customer when given)."""
    query = (
        select(func.count()).select_from(CommerceCouponRedemption)
        .join(CommerceOrder, CommerceOrder.id == CommerceCouponRedemption.order_id)
        .where(CommerceCouponRedemption.coupon_id == coupon_id, CommerceOrder.status != "cancelled")
    )
    if profile_id is not None:
        query = query.where(CommerceCouponRedemption.profile_id == profile_id)
    return session.scalar(query) or 0


def _coupon_problem(session: Session, coupon: CommerceCoupon | None, customer_id: int | None,
                    now: datetime | None = None) -> str | None:
    if coupon is None or not coupon.active:
        return "unknown or inactive coupon"
    if coupon.expires_at is not None and coupon.expires_at <= (now or utcnow()):
        return "the coupon has expired"
    if coupon.profile_id is not None and (
            customer_id is None or resolution.canonical_profile(session, coupon.profile_id).id != customer_id):
        return "the coupon is another customer's"
    if coupon.usage_limit is not None and _uses(session, coupon.id, None) >= coupon.usage_limit:
        return "the coupon has been used up"
    if coupon.per_customer_limit is not None:
        if customer_id is None:
            return "the coupon is for signed-in customers"
        if _uses(session, coupon.id, customer_id) >= coupon.per_customer_limit:
            return "you have already used this coupon"
    return None


def _qualifies(session: Session, promotion: Promotion, customer_id: int | None, channel: str | None) -> str | None:
    if promotion.channels and channel not in promotion.channels:
        return "not in this channel"
    for name, value in (promotion.conditions or {}).items():
        checker = _checkers.get(name)
        if customer_id is None or checker is None or not checker(session, customer_id, value):
            return "the customer is not eligible"
    return None


def _in_window(promotion: Promotion, now: datetime) -> bool:
    return promotion.active and (promotion.starts_at is None or promotion.starts_at <= now) and (
        promotion.ends_at is None or now < promotion.ends_at
    )


def apply(
    session: Session, cart: PricedCart, active: Sequence[Promotion], *, channel: str | None, customer_id: int | None,
    coupons: Sequence[str], now: datetime,
) -> PricedCart:
    """Take every applicable promotion of `active` (the active promotions, from the catalog
    snapshot) off the cart's lines (see the module doc); in place."""
    codes = list(dict.fromkeys(c.strip().upper() for c in coupons if c.strip()))
    found = {c.code: c for c in session.scalars(select(CommerceCoupon).where(CommerceCoupon.code.in_(codes)))} if codes else {}
    promotions = {p.id: p for p in active}
    candidates = [_Candidate(p, None) for p in _automatic(promotions.values(), now)]
    for code in codes:
        coupon = found.get(code)
        problem = _coupon_problem(session, coupon, customer_id, now)
        promotion = promotions.get(coupon.promotion_id) if coupon else None
        if problem is None and (promotion is None or not _in_window(promotion, now)):
            problem = "the promotion is not running"
        if problem is None and any(c.promotion.id == promotion.id for c in candidates):
            problem = "the promotion already applies"
        if problem is None:
            problem = _qualifies(session, promotion, customer_id, channel)
        if problem:
            cart.rejected_coupons.append({"code": code, "reason": problem})
        else:
            candidates.append(_Candidate(promotion, coupon))

    for candidate in sorted(candidates, key=lambda c: (c.promotion.priority, c.promotion.code)):
        promotion = candidate.promotion
        if candidate.coupon is None and _qualifies(session, promotion, customer_id, channel):
            continue
        lines = [line for line in cart.lines if _in_scope(promotion, line) and line.total > 0]
        if not lines or sum(line.total for line in lines) < promotion.min_subtotal:
            if candidate.coupon is not None:
                cart.rejected_coupons.append({"code": candidate.coupon.code, "reason": "the cart does not qualify"})
            continue
        taken = _discounts(promotion, lines)
        amount = 0
        for line, off in zip(lines, taken, strict=True):
            off = min(off, line.total)
            line.discount += off
            amount += off
        if amount:
            cart.promotions.append(AppliedPromotion(
                code=promotion.code, name=promotion.name_ru, amount=amount,
                coupon=candidate.coupon.code if candidate.coupon else None,
            ))
    return cart


def _automatic(active: Iterable[Promotion], now: datetime) -> list[Promotion]:
    """The promotions that apply without a coupon and are running now."""
    return [p for p in active if not p.requires_coupon and _in_window(p, now)]


def applicable(
    session: Session, active: Sequence[Promotion], *, sku: str, category_code: str | None, channel: str | None,
    customer_id: int | None, now: datetime,
) -> list[Promotion]:
    """The promotions a line of this SKU can get without a coupon, for this customer in this
    channel now, in the order `apply` takes them: running, the customer eligible, the SKU in
    scope. (Read-only, for a product page.) Whether one discounts a given cart also depends on
    the cart (`min_subtotal`, buy_x_get_y's units, what earlier promotions left of a line), which
    `apply` decides; price the cart to know."""
    found = [p for p in _automatic(active, now)
             if _covers(p, sku, category_code) and _qualifies(session, p, customer_id, channel) is None]
    return sorted(found, key=lambda p: (p.priority, p.code))


def _in_scope(promotion: Promotion, line: PricedLine) -> bool:
    return _covers(promotion, line.sku, line.category_code)


def _covers(promotion: Promotion, sku: str, category_code: str | None) -> bool:
    scope = promotion.scope or {}
    if not scope.get("skus") and not scope.get("categories"):
        return True
    return sku in scope.get("skus", ()) or category_code in scope.get("categories", ())


def _discounts(promotion: Promotion, lines: list[PricedLine]) -> list[int]:
    """Minor units off each line (before capping at what is left of it)."""
    if promotion.kind == "percent":
        return [line.total * promotion.value // 100 for line in lines]
    if promotion.kind == "fixed":
        return spread(promotion.value, lines)
    # buy_x_get_y: units highest price first; in each full group the last get_quantity are free.
    group = promotion.buy_quantity + promotion.get_quantity
    units = sorted(((line.unit_price, i) for i, line in enumerate(lines) for _ in range(line.quantity)), reverse=True)
    off = [0] * len(lines)
    for position, (price, i) in enumerate(units[: len(units) // group * group]):
        if position % group >= promotion.buy_quantity:
            off[i] += price
    return off


def spread(amount: int, lines: Sequence[PricedLine]) -> list[int]:
    """`amount` (at most what the lines cost) shared across lines in proportion to what is left
    of each, largest remainder first: the sum is exact."""
    base = sum(line.total for line in lines)
    amount = min(amount, base)
    if amount <= 0:
        return [0] * len(lines)
    shares = [amount * line.total // base for line in lines]
    remainders = sorted(range(len(lines)), key=lambda i: -(amount * lines[i].total % base))
    for i in remainders[: amount - sum(shares)]:
        shares[i] += 1
    return shares


def redeem(session: Session, cart: PricedCart, *, order_id: int, customer_id: int | None, postgres: bool) -> None:
    """Record the coupons an order used, checking their limits under a lock on each coupon row
    (a coupon with one use left goes to one of two simultaneous checkouts)."""
    codes = sorted({p.coupon for p in cart.promotions if p.coupon})
    if not codes:
        return
    query = select(CommerceCoupon).where(CommerceCoupon.code.in_(codes)).order_by(CommerceCoupon.id)
    if postgres:
        query = query.with_for_update()
    for coupon in session.scalars(query.execution_options(populate_existing=True)):
        problem = _coupon_problem(session, coupon, customer_id)
        if problem:
            raise CouponUnavailable(f"Coupon {coupon.code}: {problem}", details={"coupon": coupon.code, "reason": problem})
        session.add(CommerceCouponRedemption(coupon_id=coupon.id, order_id=order_id, profile_id=customer_id))
