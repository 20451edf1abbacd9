"""Serving recommendations: precomputed rows of the active model, filtered at request time.

What every function here returns is a list of plain dicts, best first:

    {"product_id", "code", "name_ru", "name_en", "image", "category_id",
     "price": {"amount", "currency", "sku"} | None,   # the lowest list price of its active SKUs
     "reason": "for_you" | "popular_in_store" | "popular" | "bought_together" | "similar",
     "score", "rank", "model_version"}

`reason` is a code (a list name to translate in the shop, the console or a template), never a
sentence. Serving rules, the same for every list (docs/recommendations.md):

- only active products with stock available where the person shops: the `location` given (a
  location code), else the store where most of the person's orders were collected, else their
  `store` trait (a location code), else any active location;
- never a product the person bought within `recommendations_recent_days`, unless it is
  consumable (attribute `consumable: true`, or a learned repeat-purchase rate of at least
  `recommendations_consumable_repeat_rate` among at least 5 buyers);
- never the product being viewed, what is in the cart, or `exclude_product_ids`.

A person's list that is short after filtering is topped up with popular in their store, then
popular overall. Nothing here writes; each call is a handful of indexed reads.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from seamline.commerce import catalog
from seamline.commerce import stock as commerce_stock
from seamline.commerce.models import (
    CommerceOrder,
    CommerceOrderLine,
    CommerceProduct,
    CommerceVariant,
)
from seamline.core.config import Settings
from seamline.core.errors import Unprocessable
from seamline.core.time import utcnow
from seamline.customers import service as customers_service
from seamline.recommendations.models import (
    RecommendationForPerson,
    RecommendationModel,
    RecommendationPopular,
    RecommendationProduct,
    RecommendationRelated,
)

Reason = Literal["for_you", "popular_in_store", "popular", "bought_together", "similar"]
REASONS: tuple[str, ...] = ("for_you", "popular_in_store", "popular", "bought_together", "similar")
RelatedKind = Literal["bought_together", "similar"]
MAX_LIMIT = 50
#: A person's orders looked at for their usual store and recent purchases.
HISTORY_ORDERS = 200


def active_version(session: Session) -> int | None:
    """The version serving reads, None before the first training."""
    return session.scalar(select(RecommendationModel.version).where(RecommendationModel.status == "active")
                          .order_by(RecommendationModel.version.desc()).limit(1))


def model_info(session: Session) -> dict[str, Any] | None:
    """The active model: version, when trained, counts, parameters."""
    model = session.scalar(select(RecommendationModel).where(RecommendationModel.status == "active")
                           .order_by(RecommendationModel.version.desc()).limit(1))
    if model is None:
        return None
    return {"version": model.version, "trained_at": model.trained_at, "activated_at": model.activated_at,
            "counts": model.counts, "params": model.params, "seconds": model.seconds}


def _limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise Unprocessable(f"limit must be 1 to {MAX_LIMIT}", code="invalid_limit", details={"limit": limit})
    return limit


def _location_id(session: Session, location: str | None) -> int | None:
    return commerce_stock.location_by_code(session, location).id if location else None


# --- the person ---------------------------------------------------------------------------------


def person_history(session: Session, settings: Settings, profile_id: int) -> dict[str, Any]:
    """The canonical person of a profile id, their usual store and what they bought recently."""
    person = customers_service.get_profile(session, profile_id)  # 404 unknown, 410 erased
    profile_ids = customers_service.merged_profile_ids(session, person.id)
    rows = session.execute(
        select(CommerceOrder.id, CommerceOrder.pickup_location_id, CommerceOrder.created_at, CommerceVariant.product_id)
        .join(CommerceOrderLine, CommerceOrderLine.order_id == CommerceOrder.id)
        .join(CommerceVariant, CommerceVariant.id == CommerceOrderLine.variant_id)
        .where(CommerceOrder.profile_id.in_(profile_ids), CommerceOrder.status != "cancelled")
        .order_by(CommerceOrder.created_at.desc()).limit(HISTORY_ORDERS * 4)
    ).all()
    since = utcnow() - timedelta(days=settings.recommendations_recent_days)
    recent = {product for _, _, created_at, product in rows if settings.recommendations_recent_days and created_at >= since}
    by_store = Counter({order_id: location for order_id, location, _, _ in rows if location}.values())
    store = by_store.most_common(1)[0][0] if by_store else None
    if store is None:
        trait = customers_service.traits_of(session, customers_service.identity_ids_of(session, person.id)).get("store")
        code = trait.get("value") if isinstance(trait, dict) else trait
        if isinstance(code, str) and code:
            try:
                store = commerce_stock.location_by_code(session, code).id
            except Unprocessable:
                store = None
    return {"person_id": person.id, "store_id": store, "recent": recent}


def _consumable(session: Session, version: int | None, product_ids: set[int]) -> set[int]:
    if not product_ids:
        return set()
    found = set()
    if version is not None:
        found = set(session.scalars(select(RecommendationProduct.product_id).where(
            RecommendationProduct.model_version == version, RecommendationProduct.product_id.in_(sorted(product_ids)),
            RecommendationProduct.consumable.is_(True))))
    for pid, attributes in session.execute(select(CommerceProduct.id, CommerceProduct.attributes)
                                           .where(CommerceProduct.id.in_(sorted(product_ids - found)))):
        if isinstance(attributes, dict) and attributes.get("consumable") is True:
            found.add(pid)
    return found


# --- reading precomputed rows -------------------------------------------------------------------


def _popular_rows(session: Session, version: int, location_id: int) -> list[tuple[int, float]]:
    return [tuple(r) for r in session.execute(  # type: ignore[misc]
        select(RecommendationPopular.product_id, RecommendationPopular.score)
        .where(RecommendationPopular.model_version == version, RecommendationPopular.location_id == location_id)
        .order_by(RecommendationPopular.rank))]


def _related_rows(session: Session, version: int, kind: str, product_ids: list[int]) -> dict[int, list[tuple[int, float]]]:
    found: dict[int, list[tuple[int, float]]] = {}
    for product_id, related_id, score in session.execute(
        select(RecommendationRelated.product_id, RecommendationRelated.related_product_id, RecommendationRelated.score)
        .where(RecommendationRelated.model_version == version, RecommendationRelated.kind == kind,
               RecommendationRelated.product_id.in_(product_ids))
        .order_by(RecommendationRelated.product_id, RecommendationRelated.rank)
    ):
        found.setdefault(product_id, []).append((related_id, score))
    return found


def _serve(session: Session, settings: Settings, version: int | None, candidates: list[tuple[int, float, str]], *,
           location_id: int | None, exclude: set[int], limit: int) -> list[dict[str, Any]]:
    """The first `limit` candidates in stock and not excluded, decorated (one pass, few queries)."""
    seen: set[int] = set()
    ordered = []
    for product_id, score, reason in candidates:
        if product_id not in exclude and product_id not in seen:
            seen.add(product_id)
            ordered.append((product_id, score, reason))
    if not ordered:
        return []
    in_stock = commerce_stock.products_in_stock(session, [p for p, _, _ in ordered], location_id=location_id)
    chosen = [c for c in ordered if c[0] in in_stock][:limit]
    info = describe(session, settings, [p for p, _, _ in chosen])
    return [{**info[p], "reason": reason, "score": round(float(score), 6), "rank": rank, "model_version": version}
            for rank, (p, score, reason) in enumerate(chosen, 1) if p in info]


def describe(session: Session, settings: Settings, product_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Product id -> what a list shows of it: code, names, first image, category, lowest list price."""
    if not product_ids:
        return {}
    products = session.execute(select(CommerceProduct.id, CommerceProduct.code, CommerceProduct.name_ru, CommerceProduct.name_en,
                                      CommerceProduct.image_urls, CommerceProduct.category_id)
                               .where(CommerceProduct.id.in_(product_ids))).all()
    variants = session.execute(select(CommerceVariant.id, CommerceVariant.product_id, CommerceVariant.sku)
                               .where(CommerceVariant.product_id.in_(product_ids), CommerceVariant.active.is_(True))).all()
    prices = catalog.effective_prices(session, settings=settings, variant_ids=[v for v, _, _ in variants], channel=None)
    cheapest: dict[int, dict[str, Any]] = {}
    for variant_id, product_id, sku in variants:
        price = prices.get(variant_id)
        if price is not None and (product_id not in cheapest or price.amount < cheapest[product_id]["amount"]):
            cheapest[product_id] = {"amount": price.amount, "currency": price.currency, "sku": sku}
    return {pid: {"product_id": pid, "code": code, "name_ru": name_ru, "name_en": name_en,
                  "image": (images or [None])[0] if isinstance(images, list) else None, "category_id": category_id,
                  "price": cheapest.get(pid)}
            for pid, code, name_ru, name_en, images, category_id in products}


# --- the lists ----------------------------------------------------------------------------------


def for_person(session: Session, settings: Settings, profile_id: int, *, location: str | None = None, limit: int = 10,
               exclude_product_ids: Iterable[int] = ()) -> list[dict[str, Any]]:
    """"for_you": the person's ALS list; short lists topped up with popular_in_store, then popular.
    Cold start (no history in the model) is the popular lists alone."""
    limit = _limit(limit)
    history = person_history(session, settings, profile_id)
    location_id = _location_id(session, location) if location else history["store_id"]
    version = active_version(session)
    if version is None or not settings.recommendations_enabled:
        return []
    recent = history["recent"]
    exclude = set(exclude_product_ids) | (recent - _consumable(session, version, recent))
    candidates = [(p, s, "for_you") for p, s in session.execute(
        select(RecommendationForPerson.product_id, RecommendationForPerson.score)
        .where(RecommendationForPerson.model_version == version, RecommendationForPerson.person_id == history["person_id"])
        .order_by(RecommendationForPerson.rank))]
    found = _serve(session, settings, version, candidates, location_id=location_id, exclude=exclude, limit=limit)
    if len(found) < limit:
        found = _top_up(session, settings, version, found, location_id=location_id, exclude=exclude, limit=limit)
    return found


def _top_up(session: Session, settings: Settings, version: int, found: list[dict[str, Any]], *, location_id: int | None,
            exclude: set[int], limit: int) -> list[dict[str, Any]]:
    candidates = [(p, s, "popular_in_store") for p, s in _popular_rows(session, version, location_id)] if location_id else []
    candidates += [(p, s, "popular") for p, s in _popular_rows(session, version, 0)]
    more = _serve(session, settings, version, candidates, location_id=location_id,
                  exclude=exclude | {f["product_id"] for f in found}, limit=limit - len(found))
    return [{**item, "rank": rank} for rank, item in enumerate(found + more, 1)]


def popular(session: Session, settings: Settings, *, location: str | None = None, limit: int = 10,
            exclude_product_ids: Iterable[int] = ()) -> list[dict[str, Any]]:
    """"popular_in_store" at `location` (topped up with "popular"), or "popular" overall."""
    limit = _limit(limit)
    location_id = _location_id(session, location)
    version = active_version(session)
    if version is None or not settings.recommendations_enabled:
        return []
    return _top_up(session, settings, version, [], location_id=location_id, exclude=set(exclude_product_ids), limit=limit)


def related(session: Session, settings: Settings, product_code: str, *, kind: RelatedKind = "bought_together",
            location: str | None = None, limit: int = 10, exclude_product_ids: Iterable[int] = (),
            same_category_first: bool = True) -> list[dict[str, Any]]:
    """Product -> products: "bought_together" (co-purchase lift, then ALS similarity) or
    "similar" (ALS item similarity; with `same_category_first`, the product's own category
    first). Unknown product: 404 `product_not_found`."""
    limit = _limit(limit)
    if kind not in ("bought_together", "similar"):
        raise Unprocessable(f"Unknown kind {kind!r}", code="invalid_kind", details={"kind": kind})
    product = catalog.get_product(session, product_code)
    location_id = _location_id(session, location)
    version = active_version(session)
    if version is None or not settings.recommendations_enabled:
        return []
    rows = _related_rows(session, version, kind, [product.id]).get(product.id, [])
    if kind == "similar" and same_category_first and product.category_id is not None and rows:
        categories = dict(session.execute(select(CommerceProduct.id, CommerceProduct.category_id)
                                          .where(CommerceProduct.id.in_([p for p, _ in rows]))).all())
        rows = sorted(rows, key=lambda r: categories.get(r[0]) != product.category_id)  # stable: rank kept within
    candidates = [(p, s, kind) for p, s in rows]
    return _serve(session, settings, version, candidates, location_id=location_id,
                  exclude=set(exclude_product_ids) | {product.id}, limit=limit)


def for_cart(session: Session, settings: Settings, skus: Iterable[str], *, location: str | None = None, limit: int = 10,
             exclude_product_ids: Iterable[int] = ()) -> list[dict[str, Any]]:
    """"bought_together" of every product in the cart, merged by reciprocal rank (a product
    related to several lines comes first); the cart's own products never. Unknown SKU: 422."""
    limit = _limit(limit)
    variants = catalog.variants_by_sku(session, skus)
    in_cart = {v.product_id for v in variants.values()}
    location_id = _location_id(session, location)
    version = active_version(session)
    if version is None or not settings.recommendations_enabled or not in_cart:
        return []
    fused: dict[int, float] = {}
    for found in _related_rows(session, version, "bought_together", sorted(in_cart)).values():
        for rank, (p, _) in enumerate(found, 1):
            fused[p] = fused.get(p, 0.0) + 1.0 / (rank + 10)
    candidates = [(p, s, "bought_together") for p, s in sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))]
    return _serve(session, settings, version, candidates, location_id=location_id,
                  exclude=set(exclude_product_ids) | in_cart, limit=limit)


# --- the customer 360 ---------------------------------------------------------------------------

#: How many products the agent's and the console's "What to offer" shows.
SECTION_LIMIT = 5


def section(settings: Settings) -> Any:
    """The customer-360 section "recommendations" (what to offer them: the agent's panel beside a
    conversation, the customer page): their "for you" list as serving gives it."""
    def offers(session: Session, context: Any) -> list[dict[str, Any]]:
        return for_person(session, settings, context.profile.id, limit=SECTION_LIMIT)
    return offers


# --- privacy ------------------------------------------------------------------------------------


def export(session: Session, context: Any) -> list[dict[str, Any]]:
    """The person's precomputed "for you" list (their privacy export)."""
    ids = customers_service.merged_profile_ids(session, context.profile.id)
    rows = session.execute(select(RecommendationForPerson.model_version, RecommendationForPerson.rank, CommerceProduct.code,
                                  RecommendationForPerson.score)
                           .join(CommerceProduct, CommerceProduct.id == RecommendationForPerson.product_id)
                           .where(RecommendationForPerson.person_id.in_(ids))
                           .order_by(RecommendationForPerson.model_version, RecommendationForPerson.rank))
    return [{"model_version": v, "rank": rank, "product": code, "score": score} for v, rank, code, score in rows]


def erase(session: Session, context: Any) -> int:
    """At erasure the person's precomputed rows go (the next training leaves them out too)."""
    ids = customers_service.merged_profile_ids(session, context.profile.id)
    return session.execute(delete(RecommendationForPerson).where(RecommendationForPerson.person_id.in_(ids))).rowcount or 0
