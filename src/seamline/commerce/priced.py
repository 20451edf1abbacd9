"""What a set of lines costs: the result of pricing, shared by the pricing and promotion code."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass
class PricedCart:
    currency: str
    lines: list[PricedLine]
    promotions: list[AppliedPromotion] = field(default_factory=list)
    #: Coupons given but not applicable, with the reason (shown to the customer, not an error on read).
    rejected_coupons: list[dict[str, str]] = field(default_factory=list)

    @property
    def subtotal(self) -> int:
        return sum(line.subtotal for line in self.lines)

    @property
    def discount(self) -> int:
        return sum(line.discount for line in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal - self.discount

    def line(self, sku: str) -> PricedLine:
        return next(line for line in self.lines if line.sku == sku)
