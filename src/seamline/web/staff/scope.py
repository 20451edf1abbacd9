"""The store scope of a staff account: which orders a store clerk may act on, and for which store.

A clerk works in one store (`StaffUser.store`, a location code). Roles in `STORE_BOUND_ROLES`
are limited to that store; the other roles are limited only by their permissions
(service.PERMISSIONS): an admin acts on every order of every store and channel, agents and
marketers on none. Every console route a clerk can reach asks here (`check_*`) before it works,
so the rules live in this one place (docs/console.md, "Store scope"):

- An order *belongs* to a store when it is collected there (click & collect) or was sold there
  (an in-store sale): its `pickup_location`. Delivery and pickup-point orders belong to no store.
  (`pickup_location` and `fulfilment` never change after an order is placed, so a check read
  just before the action's own transaction stays true.)
- ready, handover, cancel: only orders of the clerk's store.
- ship, complete: never by a clerk (delivery orders leave from warehouses).
- return: an order bought anywhere (a return in any store is a promise to the customer), but
  the goods come back into the clerk's own store only.
- The store screen (pickups, handover, returns, in-store sales): the clerk's own store only.
- The order list: the clerk's store's orders only. One order's page opens for any order (a
  return of an order bought elsewhere, the customer's profile), read-only outside the scope,
  and a store-bound person never sees pickup codes (as the till, commerce/pos.py).

A clerk without a store (`create_staff_user` refuses one) has nothing in scope. Refusals are a
403 `outside_store` whose `details.reason` says which rule (web/console/actions.py words it).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.commerce import orders
from seamline.commerce.models import CommerceLocation
from seamline.core.errors import Forbidden
from seamline.web.staff.models import StaffUser

#: Roles limited to their own store.
STORE_BOUND_ROLES = frozenset({"clerk"})
#: What can be done to an order in the console (the routes /console/orders/{id}/...).
ORDER_ACTIONS = ("ready", "handover", "ship", "complete", "cancel", "return")
#: Actions on an order of the clerk's own store.
OWN_STORE_ACTIONS = frozenset({"ready", "handover", "cancel"})


class OutsideStore(Forbidden):
    """Refused by the store scope. `details`: `reason` (no_store, other_store, other_order,
    delivery, return_elsewhere), `store` (the person's) and what was asked for."""

    code = "outside_store"


def bound_store(user: StaffUser) -> str | None:
    """The store code a person is limited to, or None when the role is not bound to a store.
    A bound person without a store gets "" (nothing is in scope)."""
    if user.role not in STORE_BOUND_ROLES:
        return None
    return user.store or ""


def sees_pickup_codes(user: StaffUser) -> bool:
    """A store-bound person never sees pickup codes: the code is what proves the customer."""
    return bound_store(user) is None


def _refuse(reason: str, message: str, **details: Any) -> OutsideStore:
    return OutsideStore(message, details={"reason": reason, **details})


def _own(user: StaffUser) -> str | None:
    store = bound_store(user)
    if store == "":
        raise _refuse("no_store", f"Staff account {user.email} has no store", store=None)
    return store


def check_store(user: StaffUser, requested: str | None) -> str | None:
    """The store a person works in on the store screen: a bound person's own (asking for another
    one is refused), else the one chosen (else their own, if any)."""
    requested = (requested or "").strip() or None
    store = _own(user)
    if store is None:
        return requested or user.store
    if requested is not None and requested != store:
        raise _refuse("other_store", f"A clerk of {store} may not act for {requested}", store=store, requested=requested)
    return store


def check_order_list(user: StaffUser, requested: str | None) -> str | None:
    """The store filter of the order list: a bound person's own store (another one is refused);
    anyone else's choice (None: every order)."""
    requested = (requested or "").strip() or None
    store = _own(user)
    if store is None:
        return requested
    if requested is not None and requested != store:
        raise _refuse("other_store", f"A clerk of {store} may not list the orders of {requested}", store=store,
                      requested=requested)
    return store


def refusal(store: str | None, action: str, *, fulfilment: str, order_store: str | None,
            location: str | None = None) -> str | None:
    """Why a person bound to `store` (None: not bound) may not do `action` to an order of this
    `fulfilment` belonging to `order_store` (its pickup location's code), with the goods of a
    return coming back at `location`: a reason, or None when allowed."""
    if action not in ORDER_ACTIONS:
        raise ValueError(f"unknown order action {action!r}")
    if store is None:
        return None
    if not store:
        return "no_store"
    if action in ("ship", "complete") or (action in OWN_STORE_ACTIONS and fulfilment == "delivery"):
        return "delivery"
    if action in OWN_STORE_ACTIONS:
        return None if order_store == store else "other_order"
    # return: of an order bought anywhere, into this store only
    return None if location == store else "return_elsewhere"


def allowed_actions(user: StaffUser, *, fulfilment: str, order_store: str | None) -> frozenset[str]:
    """The actions a person may do to such an order as far as the store scope goes (the order's
    state decides the rest); for a return, only into `return_locations`."""
    store = bound_store(user)
    return frozenset(a for a in ORDER_ACTIONS
                     if refusal(store, a, fulfilment=fulfilment, order_store=order_store,
                                location=store if a == "return" else None) is None)


def return_locations(user: StaffUser) -> set[str] | None:
    """The locations a person may take returned goods into (None: any store or warehouse)."""
    store = bound_store(user)
    return None if store is None else ({store} if store else set())


def check_order_action(session: Session, *, user: StaffUser, order_id: int, action: str,
                       location: str | None = None) -> None:
    """Refuse (403 `outside_store`) `action` on the order when it is outside the person's store
    scope; `location`: where a return's goods come back. An unknown order is the service's
    404 `order_not_found`."""
    store = bound_store(user)
    if store is None:
        return
    order = orders.get_order(session, order_id)
    order_store = session.scalar(select(CommerceLocation.code).where(CommerceLocation.id == order.pickup_location_id)) \
        if order.pickup_location_id is not None else None
    reason = refusal(store, action, fulfilment=order.fulfilment, order_store=order_store, location=location)
    if reason is None:
        return
    details = {"store": store or None, "action": action, "order_id": order.id, "order_store": order_store,
               "fulfilment": order.fulfilment}
    if reason == "return_elsewhere":
        details["location"] = location
    raise _refuse(reason, f"{action} of order {order.id} is outside the store scope of {user.email} ({reason})", **details)
