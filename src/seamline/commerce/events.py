"""Domain events of commerce, for modules that build on orders (payments records a capture at
handover; loyalty reverses points on a return).

Listeners are called inside the transaction that made the change, with its session: what a
listener writes (a points reversal in the loyalty ledger) commits or rolls back with the return
itself, so it happens exactly once, also when the client retries the request (a retry with the
same Idempotency-Key finds the return and publishes nothing). A listener that raises aborts the
whole request. Register at import or application start:

    from seamline.commerce import events
    events.on_order_returned(reverse_points)   # reverse_points(session, OrderReturned)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class ReturnedLine:
    sku: str
    variant_id: int
    quantity: int
    #: Minor units paid for these units (their share of the line total, after promotions).
    amount: int


@dataclass(frozen=True)
class OrderReturned:
    return_id: int
    order_id: int
    profile_id: int | None
    currency: str
    #: Sum of the lines' amounts.
    amount: int
    lines: tuple[ReturnedLine, ...]
    #: True when nothing of the order is left with the customer.
    full: bool
    channel: str
    location: str


@dataclass(frozen=True)
class OrderCancelled:
    order_id: int
    profile_id: int | None
    currency: str
    total: int
    channel: str | None


@dataclass(frozen=True)
class OrderHandedOver:
    """The customer has the goods: picked up in a store or pickup point, or delivered."""

    order: Any  # the CommerceOrder, in the session of the handover
    channel: str | None


@dataclass(frozen=True)
class RefundRequested:
    """Money of an order is going back to the customer through its payment's provider (written
    as `requested`; a local provider such as the wallet moves the money in its own ledger through
    `LocalProvider.refund_in`, not on this event)."""

    refund_id: int
    order_id: int
    provider: str
    amount: int
    currency: str
    return_id: int | None


@dataclass(frozen=True)
class OrderPlaced:
    """A new order (online, by phone, or a sale at a till)."""

    order_id: int
    profile_id: int | None
    channel: str
    total: int
    currency: str


@dataclass(frozen=True)
class CartChanged:
    """Something was put in, taken out of, or done to a cart (its change log has what)."""

    cart_id: int
    profile_id: int | None
    anonymous_id: str | None
    kind: str


_placed: list[Callable[[Session, OrderPlaced], None]] = []
_cart_changed: list[Callable[[Session, CartChanged], None]] = []
_returned: list[Callable[[Session, OrderReturned], None]] = []
_cancelled: list[Callable[[Session, OrderCancelled], None]] = []
_handed_over: list[Callable[[Session, OrderHandedOver], None]] = []
_refund_requested: list[Callable[[Session, RefundRequested], None]] = []


def _subscribe(listeners: list, callback: Callable) -> Callable[[], None]:
    if callback not in listeners:  # subscribing again is a no-op: an effect never runs twice
        listeners.append(callback)

    def unsubscribe() -> None:
        if callback in listeners:
            listeners.remove(callback)

    return unsubscribe


def on_order_placed(callback: Callable[[Session, OrderPlaced], None]) -> Callable[[], None]:
    """Call `callback(session, event)` for every new order (not for a retried request)."""
    return _subscribe(_placed, callback)


def on_cart_changed(callback: Callable[[Session, CartChanged], None]) -> Callable[[], None]:
    """Call `callback(session, event)` for every change of a cart."""
    return _subscribe(_cart_changed, callback)


def order_placed(session: Session, event: OrderPlaced) -> None:
    for listener in list(_placed):
        listener(session, event)


def cart_changed(session: Session, event: CartChanged) -> None:
    for listener in list(_cart_changed):
        listener(session, event)


def on_order_returned(callback: Callable[[Session, OrderReturned], None]) -> Callable[[], None]:
    """Call `callback(session, event)` for every return; returns a function that unsubscribes."""
    return _subscribe(_returned, callback)


def on_order_cancelled(callback: Callable[[Session, OrderCancelled], None]) -> Callable[[], None]:
    """Call `callback(session, event)` when an open order is cancelled (by staff or expiry)."""
    return _subscribe(_cancelled, callback)


def on_order_handed_over(callback: Callable[[Session, OrderHandedOver], None]) -> Callable[[], None]:
    """Call `callback(session, event)` when an order reaches the customer (payments records a
    pay-on-pickup capture then)."""
    return _subscribe(_handed_over, callback)


def on_refund_requested(callback: Callable[[Session, RefundRequested], None]) -> Callable[[], None]:
    """Call `callback(session, event)` for every refund written (a return, a cancellation)."""
    return _subscribe(_refund_requested, callback)


def refund_requested(session: Session, event: RefundRequested) -> None:
    for listener in list(_refund_requested):
        listener(session, event)


def order_handed_over(session: Session, event: OrderHandedOver) -> None:
    for listener in list(_handed_over):
        listener(session, event)


def order_returned(session: Session, event: OrderReturned) -> None:
    for listener in list(_returned):
        listener(session, event)


def order_cancelled(session: Session, event: OrderCancelled) -> None:
    for listener in list(_cancelled):
        listener(session, event)
