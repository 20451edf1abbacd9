"""The catalog: categories, products with variants (SKUs), and the one price list."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from seamline.commerce.models import (
    CommerceCategory,
    CommercePrice,
    CommerceProduct,
    CommerceVariant,
)
from seamline.commerce.schemas import (
    CategoryPut,
    ProductPut,
)
from seamline.core.config import Settings
from seamline.core.errors import Conflict, NotFound, Unprocessable


def put_category(session: Session, *, code: str, data: CategoryPut) -> CommerceCategory:
    category = session.scalar(select(CommerceCategory).where(CommerceCategory.code == code))
    parent_id = _category_id(session, data.parent) if data.parent else None
    if category is None:
        category = CommerceCategory(code=code)
        session.add(category)
    category.name_ru, category.name_en, category.parent_id = data.name_ru, data.name_en, parent_id
    session.flush()
    return category


def _category_id(session: Session, code: str) -> int:
    found = session.scalar(select(CommerceCategory.id).where(CommerceCategory.code == code))
    if found is None:
        raise Unprocessable(f"Unknown category {code!r}", code="unknown_category", details={"category": code})
    return found


def put_product(session: Session, *, settings: Settings, code: str, data: ProductPut) -> CommerceProduct:
    """Create or replace a product with its variants and prices (safe to repeat). A variant
    left out is deactivated, not deleted: orders refer to it."""
    for variant in data.variants:
        _check_price(settings, variant.sku, variant.price.currency)
        for channel, price in variant.channel_prices.items():
            if channel not in settings.commerce_price_override_channels:
                raise Unprocessable(
                    f"Channel {channel!r} is not configured to have its own prices",
                    code="price_override_not_allowed",
                    details={"sku": variant.sku, "channel": channel,
                             "allowed": settings.commerce_price_override_channels},
                )
            _check_price(settings, variant.sku, price.currency)
    category_id = _category_id(session, data.category) if data.category else None
    product = session.scalar(select(CommerceProduct).where(CommerceProduct.code == code))
    if product is None:
        product = CommerceProduct(code=code)
        session.add(product)
    for field in ("name_ru", "name_en", "description_ru", "description_en", "attributes", "image_urls", "active"):
        setattr(product, field, getattr(data, field))
    product.category_id = category_id
    session.flush()

    existing = {v.sku: v for v in session.scalars(select(CommerceVariant).where(CommerceVariant.sku.in_([v.sku for v in data.variants])))}
    for sku, variant in existing.items():
        if variant.product_id != product.id:
            raise Conflict(f"SKU {sku!r} belongs to another product", code="sku_taken", details={"sku": sku})
    for old in session.scalars(select(CommerceVariant).where(CommerceVariant.product_id == product.id)):
        if old.sku not in {v.sku for v in data.variants}:
            old.active = False
    for item in data.variants:
        variant = existing.get(item.sku) or CommerceVariant(sku=item.sku, product_id=product.id)
        variant.name_ru, variant.name_en, variant.attributes, variant.active = item.name_ru, item.name_en, item.attributes, item.active
        session.add(variant)
        session.flush()
        prices = {"": item.price, **item.channel_prices}
        for row in session.scalars(select(CommercePrice).where(CommercePrice.variant_id == variant.id)):
            if row.channel not in prices:
                session.delete(row)
        for channel, price in prices.items():
            row = session.scalar(select(CommercePrice).where(CommercePrice.variant_id == variant.id, CommercePrice.channel == channel))
            if row is None:
                row = CommercePrice(variant_id=variant.id, channel=channel)
                session.add(row)
            row.amount, row.currency = price.amount, price.currency
    session.flush()
    return product


def _check_price(settings: Settings, sku: str, currency: str) -> None:
    if currency != settings.commerce_currency:
        raise Unprocessable(
            f"Prices are in {settings.commerce_currency}; {sku} has {currency}",
            code="wrong_currency",
            details={"sku": sku, "currency": currency, "expected": settings.commerce_currency},
        )


def get_product(session: Session, code: str) -> CommerceProduct:
    product = session.scalar(select(CommerceProduct).where(CommerceProduct.code == code))
    if product is None:
        raise NotFound(f"Product {code!r} not found", code="product_not_found")
    return product


def effective_prices(session: Session, *, settings: Settings, variant_ids: list[int], channel: str | None) -> dict[int, CommercePrice]:
    """The price of each variant in a channel: the channel's override where that channel may
    have one, else the list price. The same in every channel unless configured otherwise."""
    wanted = [""]
    if channel and channel in settings.commerce_price_override_channels:
        wanted.append(channel)
    found: dict[int, CommercePrice] = {}
    for row in session.scalars(
        select(CommercePrice).where(CommercePrice.variant_id.in_(variant_ids), CommercePrice.channel.in_(wanted))
    ):
        if row.variant_id not in found or row.channel:
            found[row.variant_id] = row
    return found


def product_view(session: Session, *, settings: Settings, product: CommerceProduct, channel: str | None) -> dict[str, Any]:
    variants = list(session.scalars(select(CommerceVariant).where(CommerceVariant.product_id == product.id).order_by(CommerceVariant.id)))
    prices = effective_prices(session, settings=settings, variant_ids=[v.id for v in variants], channel=channel)
    category = session.get(CommerceCategory, product.category_id) if product.category_id else None
    return {
        "code": product.code, "name_ru": product.name_ru, "name_en": product.name_en,
        "description_ru": product.description_ru, "description_en": product.description_en,
        "category": category.code if category else None, "attributes": product.attributes,
        "image_urls": product.image_urls, "active": product.active,
        "variants": [
            {
                "sku": v.sku, "name_ru": v.name_ru, "name_en": v.name_en, "attributes": v.attributes, "active": v.active,
                "price": {"amount": p.amount, "currency": p.currency, "channel": p.channel or None, "override": bool(p.channel)}
                if (p := prices.get(v.id)) else None,
            }
            for v in variants
        ],
    }


def active_skus(session: Session, product: CommerceProduct) -> list[str]:
    """The product's SKUs on sale, in the order they were added."""
    return list(session.scalars(select(CommerceVariant.sku).where(CommerceVariant.product_id == product.id,
                                                                  CommerceVariant.active.is_(True))
                                .order_by(CommerceVariant.id)))


def variants_by_sku(session: Session, skus: Iterable[str]) -> dict[str, CommerceVariant]:
    wanted = sorted(set(skus))
    found = {v.sku: v for v in session.scalars(select(CommerceVariant).where(CommerceVariant.sku.in_(wanted)))}
    missing = [s for s in wanted if s not in found or not found[s].active]
    if missing:
        raise Unprocessable(f"Unknown SKU: {', '.join(missing)}", code="unknown_sku", details={"skus": missing})
    return found
