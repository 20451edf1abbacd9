"""Returns: the whole order or some lines, in any store or by courier, for orders of any channel.

One transaction per return: the order is locked, the quantities checked against what was
bought less what came back before (every problem reported at once), the goods go back on hand
at the location where they came back (a `return` movement, the stock row created if that
location never held the SKU), the refund is written (paid at once by local providers; sent to
a remote provider after the commit), the order's history gets an entry (`returned` when
nothing is left with the customer, else `partially_returned` with the status unchanged), and
the `OrderReturned` domain event is published to listeners in the same transaction.

Refund amounts come from what was paid for each line (its total, after promotions): returning
`q` units of a line of `n` whose `r` units came back before refunds
`total * (r + q) // n - total * r // n`, so every unit returned, however split across returns,
adds up to exactly the line's total.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from seamline.commerce import events, orders, payments
from seamline.commerce.models import (
    CommerceLocation,
    CommerceOrderLine,
    CommerceOrderStatus,
    CommerceRefund,
    CommerceReturn,
    CommerceReturnLine,
)
from seamline.commerce.schemas import ReturnCreate
from seamline.commerce.stock import location_by_code, lock_stock, move
from seamline.core.config import Settings
from seamline.core.errors import Conflict, NotFound, TransactionConflict, Unprocessable

#: Orders whose goods are with the customer.
RETURNABLE_STATUSES = ("completed", "shipped")
#: Where returned goods can be taken back into stock.
RETURN_LOCATION_KINDS = ("store", "warehouse")


@dataclass
class Accepted:
    record: CommerceReturn
    created: bool


def refund_share(line_total: int, line_quantity: int, already_returned: int, quantity: int) -> int:
    """What `quantity` more units of a line are worth (see the module doc)."""
    return line_total * (already_returned + quantity) // line_quantity - line_total * already_returned // line_quantity


def returned_quantities(session: Session, order_id: int) -> dict[int, int]:
    """{order line id: units returned so far}."""
    return returned_quantities_of(session, [order_id]).get(order_id, {})


def returned_quantities_of(session: Session, order_ids: list[int]) -> dict[int, dict[int, int]]:
    """{order id: {order line id: units returned so far}} of several orders in one query."""
    found: dict[int, dict[int, int]] = {}
    if order_ids:
        for order_id, line_id, quantity in session.execute(
            select(CommerceReturn.order_id, CommerceReturnLine.order_line_id, func.sum(CommerceReturnLine.quantity))
            .join(CommerceReturn, CommerceReturn.id == CommerceReturnLine.return_id)
            .where(CommerceReturn.order_id.in_(order_ids))
            .group_by(CommerceReturn.order_id, CommerceReturnLine.order_line_id)
        ):
            found.setdefault(order_id, {})[line_id] = int(quantity)
    return found


def _request_hash(order_id: int, data: ReturnCreate) -> str:
    body = {"order_id": order_id, **data.model_dump(mode="json")}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def accept_return(
    session: Session, *, settings: Settings, order_id: int, data: ReturnCreate, idempotency_key: str | None
) -> Accepted:
    """Take goods of an order back (see the module doc). With an `Idempotency-Key`, a retry
    returns the first return and changes nothing."""
    fingerprint = _request_hash(order_id, data)
    if idempotency_key:
        done = session.scalar(select(CommerceReturn).where(CommerceReturn.idempotency_key == idempotency_key))
        if done is not None:
            if done.request_hash != fingerprint:
                raise Unprocessable("This Idempotency-Key was used for a different return", code="idempotency_key_reused")
            return Accepted(done, False)

    order = orders.get_order(session, order_id, lock=True)
    if order.status not in RETURNABLE_STATUSES:
        raise Conflict(
            f"Order {order.id} is {order.status}; only goods handed over (completed or shipped) can be returned",
            code="order_not_returnable", details={"status": order.status},
        )
    location = location_by_code(session, data.location)
    if location.kind not in RETURN_LOCATION_KINDS:
        raise Unprocessable(f"{location.code} is a {location.kind.replace('_', ' ')}; returns are taken in a store or a warehouse",
                            code="return_location_not_accepted", details={"location": location.code})

    lines = list(session.scalars(select(CommerceOrderLine).where(CommerceOrderLine.order_id == order.id).order_by(CommerceOrderLine.id)))
    returned = returned_quantities(session, order.id)
    left = {line.id: line.quantity - returned.get(line.id, 0) for line in lines}
    wanted = _wanted(data, lines, left)

    record = CommerceReturn(
        order_id=order.id, profile_id=order.profile_id, location_id=location.id, channel=data.channel, reason=data.reason,
        amount=0, currency=order.currency, full=all(wanted.get(line.id, 0) == left[line.id] for line in lines),
        idempotency_key=idempotency_key, request_hash=fingerprint,
    )
    session.add(record)
    try:
        session.flush()  # claims the Idempotency-Key before any stock moves
    except IntegrityError:
        raise TransactionConflict() from None

    by_id = {line.id: line for line in lines}
    stock = lock_stock(session, [(by_id[line_id].variant_id, location.id) for line_id in wanted])
    event_lines = []
    for line_id, quantity in wanted.items():
        line = by_id[line_id]
        amount = refund_share(line.total, line.quantity, returned.get(line.id, 0), quantity)
        session.add(CommerceReturnLine(return_id=record.id, order_line_id=line.id, variant_id=line.variant_id, sku=line.sku,
                                       quantity=quantity, amount=amount))
        move(session, stock[(line.variant_id, location.id)], kind="return", on_hand=quantity, reference=f"return:{record.id}")
        record.amount += amount
        event_lines.append(events.ReturnedLine(sku=line.sku, variant_id=line.variant_id, quantity=quantity, amount=amount))

    note = f"return {record.id} at {location.code}"
    if record.full:
        orders._transition(session, order, to="returned", allowed_from=RETURNABLE_STATUSES, channel=data.channel, note=note)
    else:
        session.add(CommerceOrderStatus(order_id=order.id, status="partially_returned", channel=data.channel, note=note))
    session.flush()
    payments.request_refunds(session, settings=settings, order=order, amount=record.amount, return_id=record.id)
    events.order_returned(session, events.OrderReturned(
        return_id=record.id, order_id=order.id, profile_id=order.profile_id, currency=order.currency, amount=record.amount,
        lines=tuple(event_lines), full=record.full, channel=data.channel, location=location.code,
    ))
    session.flush()
    return Accepted(record, True)


def _wanted(data: ReturnCreate, lines: list[CommerceOrderLine], left: dict[int, int]) -> dict[int, int]:
    """{order line id: units to take back}; every unknown SKU and over-return reported at once."""
    if bool(data.lines) == data.all:
        raise Unprocessable("Give the lines that came back, or \"all\": true for everything not yet returned (not both)",
                            code="return_lines_required")
    if data.all:
        wanted = {line_id: quantity for line_id, quantity in left.items() if quantity > 0}
        if not wanted:
            raise Conflict("Everything of this order has been returned already", code="nothing_to_return")
        return wanted
    requested: dict[str, int] = {}
    for item in data.lines:
        requested[item.sku] = requested.get(item.sku, 0) + item.quantity
    by_sku: dict[str, list[CommerceOrderLine]] = {}
    for line in lines:
        by_sku.setdefault(line.sku, []).append(line)
    unknown = [sku for sku in requested if sku not in by_sku]
    if unknown:
        raise Unprocessable(f"Not in this order: {', '.join(unknown)}", code="not_in_order", details={"skus": unknown})
    wanted, too_many = {}, []
    for sku, quantity in requested.items():
        available = sum(left[line.id] for line in by_sku[sku])
        if quantity > available:
            bought = sum(line.quantity for line in by_sku[sku])
            too_many.append({"sku": sku, "requested": quantity, "bought": bought, "returnable": available})
            continue
        for line in by_sku[sku]:  # a SKU on several lines: the earliest first
            take = min(quantity, left[line.id])
            if take:
                wanted[line.id] = take
                quantity -= take
    if too_many:
        first = too_many[0]
        raise Conflict(f"Only {first['returnable']} of {first['sku']} can be returned", code="over_return",
                       details={"lines": too_many})
    return wanted


def get_return(session: Session, order_id: int, return_id: int) -> CommerceReturn:
    record = session.get(CommerceReturn, return_id)
    if record is None or record.order_id != order_id:
        raise NotFound(f"Return {return_id} of order {order_id} not found", code="return_not_found")
    return record


def returns_of_order(session: Session, order_id: int) -> list[CommerceReturn]:
    orders.get_order(session, order_id)
    return list(session.scalars(select(CommerceReturn).where(CommerceReturn.order_id == order_id).order_by(CommerceReturn.id)))


def returns_of_customer(session: Session, profile_ids: list[int], *, limit: int = 50) -> list[CommerceReturn]:
    return list(session.scalars(
        select(CommerceReturn).where(CommerceReturn.profile_id.in_(profile_ids))
        .order_by(CommerceReturn.created_at.desc(), CommerceReturn.id.desc()).limit(limit)
    ))


def return_views(session: Session, records: list[CommerceReturn]) -> list[dict[str, Any]]:
    if not records:
        return []
    ids = [r.id for r in records]
    lines = list(session.scalars(select(CommerceReturnLine).where(CommerceReturnLine.return_id.in_(ids)).order_by(CommerceReturnLine.id)))
    refunds = list(session.scalars(select(CommerceRefund).where(CommerceRefund.return_id.in_(ids)).order_by(CommerceRefund.id)))
    codes = dict(session.execute(select(CommerceLocation.id, CommerceLocation.code)
                                 .where(CommerceLocation.id.in_({r.location_id for r in records}))).all())
    return [
        {"id": r.id, "order_id": r.order_id, "customer_id": r.profile_id, "location": codes[r.location_id],
         "channel": r.channel, "reason": r.reason, "amount": r.amount, "currency": r.currency, "full": r.full,
         "created_at": r.created_at,
         "lines": [{"sku": line.sku, "quantity": line.quantity, "amount": line.amount} for line in lines if line.return_id == r.id],
         "refunds": [{"id": f.id, "return_id": f.return_id, "amount": f.amount, "currency": f.currency, "status": f.status,
                      "provider_reference": f.provider_reference, "created_at": f.created_at}
                     for f in refunds if f.return_id == r.id]}
        for r in records
    ]


def return_view(session: Session, record: CommerceReturn) -> dict[str, Any]:
    return return_views(session, [record])[0]
