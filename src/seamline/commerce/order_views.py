"""The order as the API shows it: lines with their allocations and returns, the status history,
the payments. Above `orders`, `payments` and `returns`, which it reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.commerce import payments, returns
from seamline.commerce.models import (
    CommerceLocation,
    CommerceOrder,
    CommerceOrderLine,
    CommerceOrderStatus,
    CommerceReservation,
)
from seamline.commerce.orders import Placed


def order_view(session: Session, order: CommerceOrder) -> dict[str, Any]:
    lines = list(session.scalars(select(CommerceOrderLine).where(CommerceOrderLine.order_id == order.id).order_by(CommerceOrderLine.id)))
    reservations = list(session.scalars(select(CommerceReservation).where(CommerceReservation.order_id == order.id).order_by(CommerceReservation.id)))
    location_ids = {r.location_id for r in reservations} | ({order.pickup_location_id} if order.pickup_location_id else set())
    codes = {i: c for i, c in session.execute(
        select(CommerceLocation.id, CommerceLocation.code).where(CommerceLocation.id.in_(location_ids))
    )} if location_ids else {}
    history = list(session.scalars(select(CommerceOrderStatus).where(CommerceOrderStatus.order_id == order.id).order_by(CommerceOrderStatus.id)))
    returned = returns.returned_quantities(session, order.id) if order.status in ("completed", "shipped", "returned") else {}
    return _view(order, lines, reservations, codes, history, returned, payments.payment_summary(session, order))


def order_views(session: Session, orders: list[CommerceOrder]) -> list[dict[str, Any]]:
    """`order_view` of a page of orders, in a fixed number of queries (not a handful per order)."""
    if not orders:
        return []
    ids = [o.id for o in orders]
    lines: dict[int, list[CommerceOrderLine]] = {i: [] for i in ids}
    for line in session.scalars(select(CommerceOrderLine).where(CommerceOrderLine.order_id.in_(ids)).order_by(CommerceOrderLine.id)):
        lines[line.order_id].append(line)
    reservations: dict[int, list[CommerceReservation]] = {i: [] for i in ids}
    for r in session.scalars(select(CommerceReservation).where(CommerceReservation.order_id.in_(ids)).order_by(CommerceReservation.id)):
        reservations[r.order_id].append(r)
    history: dict[int, list[CommerceOrderStatus]] = {i: [] for i in ids}
    for h in session.scalars(select(CommerceOrderStatus).where(CommerceOrderStatus.order_id.in_(ids)).order_by(CommerceOrderStatus.id)):
        history[h.order_id].append(h)
    location_ids = {r.location_id for rs in reservations.values() for r in rs} | {
        o.pickup_location_id for o in orders if o.pickup_location_id}
    codes = {i: c for i, c in session.execute(
        select(CommerceLocation.id, CommerceLocation.code).where(CommerceLocation.id.in_(location_ids))
    )} if location_ids else {}
    returned = returns.returned_quantities_of(
        session, [o.id for o in orders if o.status in ("completed", "shipped", "returned")])
    paid = payments.payment_summaries(session, ids)
    return [_view(o, lines[o.id], reservations[o.id], codes, history[o.id], returned.get(o.id, {}), paid[o.id])
            for o in orders]


def placed_view(session: Session, placed: Placed) -> dict[str, Any]:
    """The view of an order a checkout just placed, from what it wrote (nothing read back; a
    new order has no payments or returns yet); a retried checkout's order is read."""
    if placed.lines is None or placed.reservations is None or placed.history is None or placed.location_codes is None:
        return order_view(session, placed.order)
    return _view(placed.order, placed.lines, placed.reservations, placed.location_codes, placed.history, {},
                 {**payments.NO_PAYMENTS, "payments": []})


def _view(
    order: CommerceOrder, lines: list[CommerceOrderLine], reservations: list[CommerceReservation], codes: dict[int, str],
    history: list[CommerceOrderStatus], returned: dict[int, int], payment: dict[str, Any],
) -> dict[str, Any]:
    return {
        "id": order.id, "customer_id": order.profile_id, "channel": order.channel, "completed_channel": order.completed_channel,
        "status": order.status, "fulfilment": order.fulfilment,
        "pickup_location": codes.get(order.pickup_location_id), "delivery_address": order.delivery_address,  # type: ignore[arg-type]
        "payment_method": order.payment_method, "currency": order.currency,
        "subtotal": order.subtotal, "discount": order.discount, "total": order.total, "promotions": order.promotions or [],
        "pickup_code": order.pickup_code, "reserved_until": order.reserved_until, "created_at": order.created_at,
        "lines": [
            {"sku": line.sku, "name": line.name, "quantity": line.quantity, "unit_price": line.unit_price,
             "discount": line.discount, "total": line.total,
             "allocations": [{"location": codes[r.location_id], "quantity": r.quantity, "status": r.status}
                             for r in reservations if r.line_id == line.id],
             "returned": returned.get(line.id, 0)}
            for line in lines
        ],
        "history": [{"status": h.status, "channel": h.channel, "note": h.note, "at": h.created_at} for h in history],
        "payment": payment,
    }
