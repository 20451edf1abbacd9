"""What commerce adds to the customer 360, the timeline, export and erasure."""

from __future__ import annotations

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
from seamline.customers.timeline import TimelineItem, TimelineQuery, TimelineRegistry


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
            title=f"Order {order.id}: {status.status.replace('_', ' ')}",
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
            title=f"Return of order {view['order_id']} at {view['location']}" + (" (whole order)" if view["full"] else ""),
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
            title=" ".join(filter(None, [change.kind.replace("_", " ").capitalize(), change.sku, change.detail])),
            data={"cart_id": change.cart_id, "sku": change.sku, "quantity": change.quantity, "detail": change.detail},
        )
        for change in rows
    ]


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
    timeline.register("order", _order_timeline)
    timeline.register("return", _return_timeline)
    timeline.register("cart", _cart_timeline)
