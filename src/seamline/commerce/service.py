"""What commerce adds to the customer 360, the timeline, export and erasure."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from seamline.commerce import carts, returns
from seamline.commerce.models import (
    CommerceCart,
    CommerceCartChange,
    CommerceCartLine,
    CommerceOrder,
    CommerceOrderStatus,
    CommerceReturn,
)
from seamline.commerce.order_views import order_view
from seamline.commerce.orders import orders_of_customer
from seamline.core.config import Settings
from seamline.customers import service as customers_service
from seamline.customers.sections import CustomerContext, SectionRegistry
from seamline.customers.timeline import TimelineItem, TimelineQuery, TimelineRegistry, titled

#: The timeline's titles (customers/timeline.py): English templates by title key, translated by the console.
TITLES = {
    "order.pending_payment": "Order %(order_id)s: pending payment",
    "order.confirmed": "Order %(order_id)s: confirmed",
    "order.ready_for_pickup": "Order %(order_id)s: ready for pickup",
    "order.shipped": "Order %(order_id)s: shipped",
    "order.completed": "Order %(order_id)s: completed",
    "order.cancelled": "Order %(order_id)s: cancelled",
    "order.returned": "Order %(order_id)s: returned",
    "order.partially_returned": "Order %(order_id)s: partially returned",
    "order.other": "Order %(order_id)s: %(status)s",
    "return.accepted": "Return of order %(order_id)s at %(location)s",
    "return.accepted.full": "Return of order %(order_id)s at %(location)s (whole order)",
    "cart.product_added": "Added to the cart: %(sku)s × %(quantity)s",
    "cart.product_removed": "Removed from the cart: %(sku)s",
    "cart.quantity_changed": "Quantity of %(sku)s in the cart: %(before)s → %(after)s",
    "cart.coupon_added": "Coupon added to the cart: %(coupon)s",
    "cart.coupon_removed": "Coupon removed from the cart: %(coupon)s",
    "cart.merged": "Cart %(cart_id)s joined this cart",
    "cart.adopted": "A visitor's cart became the customer's",
    "cart.ordered": "The cart became order %(order_id)s",
}


def _profile_ids(session: Session, profile_id: int) -> list[int]:
    return customers_service.merged_profile_ids(session, profile_id)



def _returns_by_order(session: Session, order_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    if order_ids:
        records = list(session.scalars(select(CommerceReturn).where(CommerceReturn.order_id.in_(order_ids)).order_by(CommerceReturn.id)))
        for view in returns.return_views(session, records):
            found.setdefault(view["order_id"], []).append(view)
    return found


def _orders_section(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    recent = orders_of_customer(session, _profile_ids(session, context.profile.id), limit=10)
    returned = _returns_by_order(session, [o.id for o in recent])
    return [
        {"id": o.id, "status": o.status, "channel": o.channel, "fulfilment": o.fulfilment, "total": o.total,
         "currency": o.currency, "created_at": o.created_at,
         "returns": [{k: r[k] for k in ("id", "amount", "full", "location", "channel", "created_at")} for r in returned.get(o.id, [])]}
        for o in recent
    ]


def _orders_export(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    every = orders_of_customer(session, _profile_ids(session, context.profile.id), limit=10**9)
    returned = _returns_by_order(session, [o.id for o in every])
    return [{**order_view(session, o), "returns": returned.get(o.id, [])} for o in every]


def _orders_erase(session: Session, context: CustomerContext) -> int:
    """Orders stay (they are the shop's books) but lose the person: no customer, no address."""
    orders = orders_of_customer(session, _profile_ids(session, context.profile.id), limit=10**9)
    for order in orders:
        order.profile_id, order.delivery_address = None, None
    session.execute(update(CommerceReturn).where(CommerceReturn.profile_id.in_(_profile_ids(session, context.profile.id)))
                    .values(profile_id=None))
    return len(orders)


def _order_timeline(session: Session, context: CustomerContext, query: TimelineQuery) -> list[TimelineItem]:
    """Each status of each order (placed, ready, completed, cancelled...), with its channel."""
    if not query.wants("order"):
        return []
    statuses = (
        select(CommerceOrderStatus, CommerceOrder)
        .join(CommerceOrder, CommerceOrder.id == CommerceOrderStatus.order_id)
        .where(CommerceOrder.profile_id.in_(_profile_ids(session, context.profile.id)),
               query.older_than_cursor(CommerceOrderStatus.created_at, CommerceOrderStatus.id))
    )
    if (wanted := query.subtypes("order")) is not None:
        statuses = statuses.where(CommerceOrderStatus.status.in_(wanted))
    rows = session.execute(statuses.order_by(CommerceOrderStatus.created_at.desc(), CommerceOrderStatus.id.desc()).limit(query.limit * 2))
    items = []
    for status, order in rows:
        channel = status.channel or order.channel
        if query.channels and channel not in query.channels:
            continue
        items.append(TimelineItem(
            kind="order", id=status.id, occurred_at=status.created_at, channel=channel, type=f"order.{status.status}",
            **(titled(TITLES, f"order.{status.status}", {"order_id": order.id}) if f"order.{status.status}" in TITLES
               else titled(TITLES, "order.other", {"order_id": order.id, "status": status.status.replace("_", " ")})),
            data={"order_id": order.id, "total": order.total, "currency": order.currency, "fulfilment": order.fulfilment,
                  "note": status.note},
        ))
    return items[: query.limit]


def _return_timeline(session: Session, context: CustomerContext, query: TimelineQuery) -> list[TimelineItem]:
    """Each return: what came back, where, in which channel, and the amount refunded for it."""
    wanted = query.subtypes("return")  # returns have one type: return.accepted
    if not query.wants("return") or (wanted is not None and "accepted" not in wanted):
        return []
    found = select(CommerceReturn).where(CommerceReturn.profile_id.in_(_profile_ids(session, context.profile.id)),
                                         query.older_than_cursor(CommerceReturn.created_at, CommerceReturn.id))
    if query.channels:
        found = found.where(CommerceReturn.channel.in_(query.channels))
    records = list(session.scalars(found.order_by(CommerceReturn.created_at.desc(), CommerceReturn.id.desc()).limit(query.limit)))
    return [
        TimelineItem(
            kind="return", id=view["id"], occurred_at=view["created_at"], channel=view["channel"], type="return.accepted",
            **titled(TITLES, "return.accepted.full" if view["full"] else "return.accepted",
                     {"order_id": view["order_id"], "location": view["location"]}),
            data={"order_id": view["order_id"], "return_id": view["id"], "location": view["location"], "amount": view["amount"],
                  "currency": view["currency"], "full": view["full"], "reason": view["reason"], "lines": view["lines"]},
        )
        for view in returns.return_views(session, records)
    ]


def _cart_timeline(session: Session, context: CustomerContext, query: TimelineQuery) -> list[TimelineItem]:
    """Every change of the person's carts (added, removed, quantity, coupon, merged, ordered), in
    the channel where it happened: the trail an abandoned-cart journey starts from."""
    if not query.wants("cart"):
        return []
    changes = (
        select(CommerceCartChange)
        .join(CommerceCart, CommerceCart.id == CommerceCartChange.cart_id)
        .where(CommerceCart.profile_id.in_(_profile_ids(session, context.profile.id)),
               query.older_than_cursor(CommerceCartChange.created_at, CommerceCartChange.id))
    )
    if (wanted := query.subtypes("cart")) is not None:
        changes = changes.where(CommerceCartChange.kind.in_(wanted))
    if query.channels:
        changes = changes.where(CommerceCartChange.channel.in_(query.channels))
    rows = session.scalars(changes.order_by(CommerceCartChange.created_at.desc(), CommerceCartChange.id.desc()).limit(query.limit))
    return [
        TimelineItem(
            kind="cart", id=change.id, occurred_at=change.created_at, channel=change.channel, type=f"cart.{change.kind}",
            **_cart_title(change),
            data={"cart_id": change.cart_id, "sku": change.sku, "quantity": change.quantity, "detail": change.detail},
        )
        for change in rows
    ]


def _cart_title(change: CommerceCartChange) -> dict[str, Any]:
    """A cart change's title from its kind and what carts.py keeps with it (`detail`: "cart 12",
    "order 7", "1 -> 3", a coupon code, "now the customer's cart")."""
    kind, detail = change.kind, change.detail or ""
    number = re.fullmatch(r"(?:cart|order) (\d+)", detail)
    if kind in ("product_added", "product_removed") and change.sku and change.quantity is not None:
        return titled(TITLES, f"cart.{kind}", {"sku": change.sku, "quantity": change.quantity})
    if kind == "quantity_changed" and change.sku and (moved := re.fullmatch(r"(\d+) -> (\d+)", detail)):
        return titled(TITLES, "cart.quantity_changed", {"sku": change.sku, "before": int(moved[1]), "after": int(moved[2])})
    if kind in ("coupon_added", "coupon_removed") and detail:
        return titled(TITLES, f"cart.{kind}", {"coupon": detail})
    if kind == "merged" and number and detail.startswith("cart"):
        return titled(TITLES, "cart.merged", {"cart_id": int(number[1])})
    if kind == "merged":
        return titled(TITLES, "cart.adopted", {})
    if kind == "ordered" and number and detail.startswith("order"):
        return titled(TITLES, "cart.ordered", {"order_id": int(number[1])})
    return {"title": " ".join(filter(None, [kind.replace("_", " ").capitalize(), change.sku, detail]))}


def register(sections: SectionRegistry, timeline: TimelineRegistry, *, settings: Settings) -> None:
    def cart_section(session: Session, context: CustomerContext) -> dict[str, Any]:
        owner = carts.Owner(context.profile.id, None, tuple(_profile_ids(session, context.profile.id)))
        return carts.cart_view(session, settings=settings, owner=owner, channel=None)

    def cart_export(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
        return [
            {"id": cart.id, "status": cart.status, "created_at": cart.created_at, "coupons": cart.coupons,
             "changes": [{"kind": c.kind, "sku": c.sku, "quantity": c.quantity, "channel": c.channel, "at": c.created_at}
                         for c in session.scalars(select(CommerceCartChange).where(CommerceCartChange.cart_id == cart.id)
                                                  .order_by(CommerceCartChange.id))]}
            for cart in carts.carts_of(session, _profile_ids(session, context.profile.id))
        ]

    def cart_erase(session: Session, context: CustomerContext) -> int:
        """Carts are about the person only: they go, lines and history with them."""
        gone = carts.carts_of(session, _profile_ids(session, context.profile.id))
        ids = [cart.id for cart in gone]
        if ids:
            session.execute(delete(CommerceCartChange).where(CommerceCartChange.cart_id.in_(ids)))
            session.execute(delete(CommerceCartLine).where(CommerceCartLine.cart_id.in_(ids)))
            session.execute(update(CommerceCart).where(CommerceCart.merged_into_id.in_(ids)).values(merged_into_id=None))
            session.execute(delete(CommerceCart).where(CommerceCart.id.in_(ids)))
        return len(ids)

    sections.register("orders", _orders_section, export=_orders_export, erase=_orders_erase)
    sections.register("cart", cart_section, export=cart_export, erase=cart_erase)
    timeline.register("order", _order_timeline, titles={k: v for k, v in TITLES.items() if k.startswith("order.")})
    timeline.register("return", _return_timeline, titles={k: v for k, v in TITLES.items() if k.startswith("return.")})
    timeline.register("cart", _cart_timeline, titles={k: v for k, v in TITLES.items() if k.startswith("cart.")})
