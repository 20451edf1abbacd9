"""Pricing: what a set of lines costs in a channel for a person, the same for a cart, a checkout
and a till. The list price comes from the catalog (a channel override only where configured);
promotions then apply through one engine (`promotions`), so every channel prices alike."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.commerce import promotions
from seamline.commerce.catalog import effective_prices, variants_by_sku
from seamline.commerce.models import CommerceCategory, CommerceProduct
from seamline.commerce.priced import PricedCart, PricedLine
from seamline.core.config import Settings
from seamline.core.errors import Unprocessable
from seamline.core.time import utcnow


def quantities_of(lines: Iterable[Any]) -> dict[str, int]:
    """{sku: total quantity} of request lines (a SKU may appear on several lines)."""
    quantities: dict[str, int] = {}
    for line in lines:
        quantities[line.sku] = quantities.get(line.sku, 0) + line.quantity
    return quantities


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
        pid: (name, category_code)
        for pid, name, category_code in session.execute(
            select(CommerceProduct.id, CommerceProduct.name_ru, CommerceCategory.code)
            .outerjoin(CommerceCategory, CommerceCategory.id == CommerceProduct.category_id)
            .where(CommerceProduct.id.in_({v.product_id for v in variants.values()}))
        )
    }
    lines = []
    for sku, quantity in quantities.items():
        variant = variants[sku]
        product_name, category_code = products[variant.product_id]
        lines.append(PricedLine(
            sku=sku, variant_id=variant.id, product_id=variant.product_id, category_code=category_code,
            name=" ".join(filter(None, [product_name, variant.name_ru])), quantity=quantity,
            unit_price=prices[variant.id].amount,
        ))
    cart = PricedCart(currency=settings.commerce_currency, lines=lines)
    return promotions.apply(session, cart, channel=channel, customer_id=customer_id, coupons=coupons, now=now or utcnow())
