"""What commerce adds to the customer 360, the timeline, export and erasure."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from seamline.commerce.models import (
    CommerceOrder,
    CommerceOrderStatus,
)
from seamline.commerce.orders import order_view, orders_of_customer
from seamline.customers import service as customers_service
from seamline.customers.sections import CustomerContext, SectionRegistry
from seamline.customers.timeline import TimelineItem, TimelineQuery, TimelineRegistry


def _profile_ids(session: Session, profile_id: int) -> list[int]:
    return customers_service.merged_profile_ids(session, profile_id)



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
