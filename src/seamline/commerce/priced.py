"""What a set of lines costs: the result of pricing, shared by the pricing and promotion code."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class PricedLine:
    sku: str
    variant_id: int
    product_id: int
    category_code: str | None
    name: str
    quantity: int
    unit_price: int
    #: Minor units taken off this line by promotions; `total` = unit_price * quantity - discount.
    discount: int = 0

    @property
    def subtotal(self) -> int:
        return self.unit_price * self.quantity

    @property
    def total(self) -> int:
        return self.subtotal - self.discount


@dataclass
class AppliedPromotion:
    code: str
    name: str
    amount: int
    coupon: str | None = None
    #: Loyalty points spent (the points line of `redemption`); None for promotions.
    points: int | None = None


@dataclass
class PricedCart:
    currency: str
    lines: list[PricedLine]
    promotions: list[AppliedPromotion] = field(default_factory=list)
    #: Coupons given but not applicable, with the reason (shown to the customer, not an error on read).
    rejected_coupons: list[dict[str, str]] = field(default_factory=list)
    #: Loyalty points spent on the cart (`redemption`).
    points: int = 0

    @property
    def subtotal(self) -> int:
        return sum(line.subtotal for line in self.lines)

    @property
    def discount(self) -> int:
        return sum(line.discount for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal - self.discount

    def view(self) -> dict[str, Any]:
        """As the API shows a quote."""
        return {
            "currency": self.currency, "subtotal": self.subtotal, "discount": self.discount, "total": self.total,
            "lines": [{"sku": p.sku, "name": p.name, "quantity": p.quantity, "unit_price": p.unit_price,
                       "discount": p.discount, "total": p.total} for p in self.lines],
            "promotions": [asdict(p) for p in self.promotions], "rejected_coupons": self.rejected_coupons,
            "points": self.points,
        }

    def line(self, sku: str) -> PricedLine:
        return next(line for line in self.lines if line.sku == sku)
