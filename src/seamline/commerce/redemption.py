"""Paying part of an order with loyalty points: the last step of pricing, in every channel.

Points are spent as a discount (as Russian retail prints them on the receipt): after the
promotions, the points' value is taken off the lines in proportion to what is left of each
(`promotions.spread`), so a later return gives back the money actually paid for the units
returned. The order's total, and so what the payment provider or the till charges, is what
remains.

Commerce knows nothing of accounts: the loyalty module registers a `PointsRedeemer` that
values the points and checks the program's cap (`quote`, when pricing), and debits the account
inside the checkout's transaction (`debit`, after the order row exists), under a lock on the
account, so two channels spending the same points at once cannot both succeed. Without a
registered redeemer, asking to spend points is a 422.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from sqlalchemy.orm import Session

from seamline.commerce import promotions
from seamline.commerce.priced import AppliedPromotion, PricedCart
from seamline.core.errors import Unprocessable

#: The code points appear under in an order's `promotions`.
POINTS_CODE = "LOYALTY_POINTS"


class PointsRedeemer(Protocol):
    def quote(
        self, session: Session, *, customer_id: int, points: int, cart: PricedCart, channel: str | None,
        card_numbers: Sequence[str],
    ) -> int:
        """What `points` take off this cart (minor units); raises when the program's cap, the
        balance or a blocked card (`card_numbers`: the cards the request was identified by)
        forbids them."""
        ...

    def debit(self, session: Session, *, customer_id: int, points: int, order_id: int, channel: str | None) -> None:
        """Spend the points for this order, in its transaction; raises when they are no longer there."""
        ...


_redeemer: list[PointsRedeemer] = []


def register(redeemer: PointsRedeemer) -> None:
    _redeemer[:] = [redeemer]


def apply(
    session: Session, cart: PricedCart, *, points: int, customer_id: int | None, channel: str | None,
    cards: Sequence[str] = (),
) -> PricedCart:
    """Take `points` off the priced cart (in place)."""
    if not points:
        return cart
    if not _redeemer:
        raise Unprocessable("Points cannot be spent: no loyalty program runs here", code="loyalty_not_available")
    if customer_id is None:
        raise Unprocessable("Spending points needs a known customer", code="customer_required")
    amount = _redeemer[0].quote(session, customer_id=customer_id, points=points, cart=cart, channel=channel,
                                card_numbers=cards)
    lines = [line for line in cart.lines if line.total > 0]
    for line, off in zip(lines, promotions.spread(amount, lines), strict=True):
        line.discount += off
    cart.points = points
    cart.promotions.append(AppliedPromotion(code=POINTS_CODE, name="Оплата баллами", amount=amount, points=points))
    return cart


def debit(session: Session, cart: PricedCart, *, order_id: int, customer_id: int | None, channel: str | None) -> None:
    """Spend the points a priced cart was quoted with, for the order just written."""
    if cart.points and customer_id is not None:
        _redeemer[0].debit(session, customer_id=customer_id, points=cart.points, order_id=order_id, channel=channel)
