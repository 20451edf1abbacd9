"""Pricing: what a set of lines costs in a channel for a person, the same for a cart, a checkout
and a till. The list price comes from the catalog (a channel override only where configured);
promotions then apply through one engine (`promotions`), so every channel prices alike. Both
are read from the process's catalog snapshot (`catalog_cache`), current to the last commit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from seamline.commerce import catalog_cache, promotions, redemption
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
    catalog: catalog_cache.CatalogSnapshot | None = None, points: int = 0, cards: Sequence[str] = (),
) -> PricedCart:
    """Price {sku: quantity} in a channel for a customer (None: anonymous). Unknown or inactive
    SKUs and SKUs without a price are a 422 naming them. `points`: loyalty points to spend,
    taken off last (`redemption`)."""
    catalog = catalog or catalog_cache.snapshot(session)
    variants = catalog.variants(session, quantities)
    prices = {sku: variant.price(settings, channel) for sku, variant in variants.items()}
    unpriced = [sku for sku, price in prices.items() if price is None]
    if unpriced:
        raise Unprocessable(f"No price for {', '.join(unpriced)}", code="no_price", details={"skus": unpriced})
    lines = [
        PricedLine(sku=sku, variant_id=variants[sku].id, product_id=variants[sku].product_id,
                   category_code=variants[sku].category_code, name=variants[sku].name, quantity=quantity,
                   unit_price=prices[sku])  # type: ignore[arg-type]
        for sku, quantity in quantities.items()
    ]
    cart = PricedCart(currency=settings.commerce_currency, lines=lines)
    promotions.apply(session, cart, catalog.promotions, channel=channel, customer_id=customer_id, coupons=coupons, now=now or utcnow())
    return redemption.apply(session, cart, points=points, customer_id=customer_id, channel=channel, cards=cards)


def product_promotions(
    session: Session, *, settings: Settings, channel: str | None, skus: Sequence[str], customer_id: int | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """What the promotions do for these SKUs, read-only, for a product page: per SKU with a price,
    its price, what one unit costs in a cart of its own for this customer in this channel
    (`price_lines`: the same engine as carts, checkouts and the till), and the promotions that
    can apply to it (`promotions.applicable`), each marked `applies_to_one` when it discounts that
    one unit (else it needs more in the cart: `min_subtotal`, buy_x_get_y's units)."""
    now = now or utcnow()
    catalog = catalog_cache.snapshot(session)
    found = []
    variants = catalog.variants(session, skus)
    for sku in dict.fromkeys(skus):  # in the order asked
        variant = variants[sku]
        price = variant.price(settings, channel)
        if price is None:
            continue
        one = price_lines(session, settings=settings, channel=channel, quantities={sku: 1}, customer_id=customer_id,
                          now=now, catalog=catalog)
        discounting = {p.code for p in one.promotions}
        found.append({
            "sku": sku, "currency": one.currency, "price": price, "price_now": one.total,
            "promotions": [
                {"code": p.code, "name_ru": p.name_ru, "name_en": p.name_en, "kind": p.kind, "value": p.value,
                 "buy_quantity": p.buy_quantity, "get_quantity": p.get_quantity, "min_subtotal": p.min_subtotal,
                 "ends_at": p.ends_at, "applies_to_one": p.code in discounting}
                for p in promotions.applicable(session, catalog.promotions, sku=sku, category_code=variant.category_code,
                                               channel=channel, customer_id=customer_id, now=now)
            ],
        })
    return found
