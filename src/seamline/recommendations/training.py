"""Training: interactions per person -> ALS and co-purchase -> precomputed lists in tables.

`train(database, settings, now=...)` reads, fits and writes a new model version, then makes it
the active one and deletes the older versions' rows. It is what the periodic task
`recommendations.retrain`, `seamline recommendations train` and `POST /v1/recommendations/train`
run.

Interactions are per person: an order, a cart line or a view filed under any profile (or any
identifier) of a person counts for the person's canonical profile, so an order in the app and a
view on the website shape the same recommendations. A purchase weighs `WEIGHTS["purchase"]`, a
line in the person's cart `WEIGHTS["cart"]`, a product view `WEIGHTS["view"]`; ALS sees the
confidence 1 + alpha * log1p(sum of weights) of each (person, product).

`build_lists` is the pure part (arrays in, lists out): the offline bench evaluates exactly it.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
from scipy import sparse
from sqlalchemy import case, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from seamline.commerce.models import (
    CommerceCart,
    CommerceCartLine,
    CommerceOrder,
    CommerceOrderLine,
    CommerceProduct,
    CommerceVariant,
)
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.time import utcnow
from seamline.customers.models import CustomerIdentity, CustomerProfile
from seamline.events.models import EventRecord
from seamline.recommendations.models import (
    RESULT_TABLES,
    RecommendationForPerson,
    RecommendationModel,
    RecommendationPopular,
    RecommendationProduct,
    RecommendationRelated,
)

WEIGHTS = {"purchase": 4.0, "cart": 2.0, "view": 1.0}
#: Orders in these states are not purchases.
NOT_BOUGHT = ("cancelled",)
#: A product needs this many buyers before its repeat rate can make it consumable.
MIN_BUYERS_FOR_REPEAT = 5
#: Fixed seed: the same data trains the same model.
RANDOM_STATE = 42
_WRITE_BATCH = 20_000


@dataclass
class Params:
    factors: int = 64
    regularization: float = 0.05
    iterations: int = 15
    alpha: float = 10.0
    threads: int = 1
    top_n: int = 50
    min_support: int = 2
    consumable_repeat_rate: float = 0.3

    @classmethod
    def of(cls, settings: Settings) -> Params:
        return cls(factors=settings.recommendations_factors, regularization=settings.recommendations_regularization,
                   iterations=settings.recommendations_iterations, alpha=settings.recommendations_alpha,
                   threads=settings.recommendations_threads, top_n=settings.recommendations_top_n,
                   min_support=settings.recommendations_min_support,
                   consumable_repeat_rate=settings.recommendations_consumable_repeat_rate)


@dataclass
class Interactions:
    """Everything a training reads, as plain arrays (person = canonical profile id)."""

    #: (person, product, weight) of every purchase line, cart line and view
    person: list[int] = field(default_factory=list)
    product: list[int] = field(default_factory=list)
    weight: list[float] = field(default_factory=list)
    #: purchases: (order key, person, product, pickup location or 0, created_at)
    orders: list[tuple[int, int, int, int, datetime]] = field(default_factory=list)
    #: products whose attribute `consumable` is true
    consumable: set[int] = field(default_factory=set)
    counts: Counter = field(default_factory=Counter)

    def add(self, person: int, product: int, kind: str) -> None:
        self.person.append(person)
        self.product.append(product)
        self.weight.append(WEIGHTS[kind])
        self.counts[kind] += 1


@dataclass
class Lists:
    """The precomputed lists, keyed by database ids."""

    for_person: dict[int, list[tuple[int, float]]]
    related: dict[str, dict[int, list[tuple[int, float, str]]]]
    popular: dict[int, list[tuple[int, float]]]
    products: dict[int, tuple[int, float, bool]]
    people: int
    items: int


# --- reading ------------------------------------------------------------------------------------


def canonical_map(session: Session) -> tuple[dict[int, int], set[int]]:
    """Every merged profile id -> the profile its chain ends in, and the erased profile ids."""
    links = dict(session.execute(select(CustomerProfile.id, CustomerProfile.merged_into_id)
                                 .where(CustomerProfile.status == "merged", CustomerProfile.merged_into_id.is_not(None))).all())
    erased = set(session.scalars(select(CustomerProfile.id).where(CustomerProfile.status == "erased")))
    resolved: dict[int, int] = {}
    for start in links:
        current, seen = start, {start}
        while current in links and links[current] not in seen:
            current = links[current]
            seen.add(current)
        resolved[start] = current
    return resolved, erased


def load(session: Session, *, since: datetime) -> Interactions:
    """The interactions since `since`, per person."""
    canonical, erased = canonical_map(session)

    def person_of(profile_id: int) -> int | None:
        person = canonical.get(profile_id, profile_id)
        return None if person in erased else person

    data = Interactions()
    products = session.execute(select(CommerceProduct.id, CommerceProduct.code, CommerceProduct.attributes)).all()
    by_code = {code: pid for pid, code, _ in products}
    data.consumable = {pid for pid, _, attributes in products if isinstance(attributes, dict) and attributes.get("consumable") is True}
    by_sku = dict(session.execute(select(CommerceVariant.sku, CommerceVariant.product_id)).all())

    lines = session.execute(
        select(CommerceOrder.id, CommerceOrder.profile_id, CommerceOrder.pickup_location_id, CommerceOrder.created_at,
               CommerceVariant.product_id)
        .join(CommerceOrderLine, CommerceOrderLine.order_id == CommerceOrder.id)
        .join(CommerceVariant, CommerceVariant.id == CommerceOrderLine.variant_id)
        .where(CommerceOrder.profile_id.is_not(None), CommerceOrder.status.not_in(NOT_BOUGHT), CommerceOrder.created_at >= since)
    )
    for order_id, profile_id, location_id, created_at, product_id in lines:
        person = person_of(profile_id)
        if person is not None:
            data.add(person, product_id, "purchase")
            data.orders.append((order_id, person, product_id, location_id or 0, created_at))

    carts = session.execute(
        select(CommerceCart.profile_id, CommerceVariant.product_id)
        .join(CommerceCartLine, CommerceCartLine.cart_id == CommerceCart.id)
        .join(CommerceVariant, CommerceVariant.id == CommerceCartLine.variant_id)
        .where(CommerceCart.profile_id.is_not(None), CommerceCart.status == "active", CommerceCartLine.updated_at >= since)
    )
    for profile_id, product_id in carts:
        person = person_of(profile_id)
        if person is not None:
            data.add(person, product_id, "cart")

    # Views from every channel: filed under "u:<userId>" / "a:<anonymousId>"; the profile is
    # whichever holds that identifier now (events/models.py).
    key = case((CustomerIdentity.type == "user_id", literal("u:")), else_=literal("a:")) + CustomerIdentity.value
    owners = dict(session.execute(select(key, CustomerIdentity.profile_id)
                                  .where(CustomerIdentity.type.in_(("user_id", "anonymous_id")))).all())
    views = session.execute(select(EventRecord.person, EventRecord.payload)
                            .where(EventRecord.type == "track", EventRecord.name == "Product Viewed",
                                   EventRecord.timestamp >= since))
    for person_key, payload in views:
        profile_id = owners.get(person_key)
        if profile_id is None:
            continue
        person = person_of(profile_id)
        if person is None:
            continue
        try:
            properties = orjson.loads(payload).get("properties") or {}
        except (orjson.JSONDecodeError, AttributeError):
            continue
        product_id = by_code.get(properties.get("product_id")) or by_sku.get(properties.get("sku"))
        if product_id is not None:
            data.add(person, product_id, "view")
    return data


# --- fitting ------------------------------------------------------------------------------------


def fit_als(user_items: sparse.csr_matrix, params: Params):
    """implicit's ALS on one BLAS thread (as implicit asks), with a fixed seed."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(factors=params.factors, regularization=params.regularization, alpha=params.alpha,
                                        iterations=params.iterations, num_threads=params.threads, random_state=RANDOM_STATE)
        model.fit(user_items, show_progress=False)
    return model


def user_item_matrix(person: Iterable[int], product: Iterable[int], weight: Iterable[float]
                     ) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray]:
    """(persons x products) of log1p(summed weights), and the ids of its rows and columns."""
    person, product = np.asarray(list(person), dtype=np.int64), np.asarray(list(product), dtype=np.int64)
    people, rows = np.unique(person, return_inverse=True)
    items, cols = np.unique(product, return_inverse=True)
    matrix = sparse.csr_matrix((np.asarray(list(weight), dtype=np.float32), (rows, cols)), shape=(len(people), len(items)))
    matrix.sum_duplicates()
    matrix.data = np.log1p(matrix.data).astype(np.float32)
    return matrix, people, items


def recommend_all(model, user_items: sparse.csr_matrix, n: int, batch: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Top-n item indices and scores of every row (already seen items included: serving decides)."""
    n = min(n, user_items.shape[1])
    ids, scores = [], []
    for start in range(0, user_items.shape[0], batch):
        rows = np.arange(start, min(start + batch, user_items.shape[0]))
        i, s = model.recommend(rows, user_items[rows], N=n, filter_already_liked_items=False)
        ids.append(np.asarray(i).reshape(len(rows), -1))
        scores.append(np.asarray(s).reshape(len(rows), -1))
    if not ids:
        return np.zeros((0, n), dtype=np.int64), np.zeros((0, n), dtype=np.float32)
    return np.vstack(ids), np.vstack(scores)


def similar_all(model, n_items: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-n most similar items (cosine of item factors) of each item, itself left out."""
    factors = np.asarray(model.item_factors, dtype=np.float32)
    norms = np.linalg.norm(factors, axis=1)
    normalized = factors / np.where(norms == 0, 1, norms)[:, None]
    n = min(n, n_items - 1)
    ids = np.zeros((n_items, n), dtype=np.int64)
    scores = np.zeros((n_items, n), dtype=np.float32)
    for start in range(0, n_items, 2048):
        block = normalized[start:start + 2048] @ normalized.T
        block[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = -np.inf
        top = np.argpartition(-block, n - 1, axis=1)[:, :n] if n < n_items else np.argsort(-block, axis=1)[:, :n]
        top_scores = np.take_along_axis(block, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        ids[start:start + block.shape[0]] = np.take_along_axis(top, order, axis=1)
        scores[start:start + block.shape[0]] = np.take_along_axis(top_scores, order, axis=1)
    return ids, scores


def co_purchase(orders: list[tuple[int, int, int, int, datetime]], *, min_support: int, top_n: int
                ) -> dict[int, list[tuple[int, float]]]:
    """Product -> products seen in the same orders at least `min_support` times, by lift
    (P(a and b) / P(a) P(b)), then by how many orders hold both."""
    if not orders:
        return {}
    order_keys = np.asarray([o[0] for o in orders], dtype=np.int64)
    products = np.asarray([o[2] for o in orders], dtype=np.int64)
    okeys, rows = np.unique(order_keys, return_inverse=True)
    items, cols = np.unique(products, return_inverse=True)
    baskets = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(okeys), len(items)))
    baskets.data[:] = 1.0  # a product twice in one order is one basket
    baskets.sum_duplicates()
    baskets.data[:] = 1.0
    together = (baskets.T @ baskets).tocsr()
    counts = together.diagonal()
    n_orders = float(len(okeys))
    found: dict[int, list[tuple[int, float]]] = {}
    for i in range(together.shape[0]):
        start, end = together.indptr[i], together.indptr[i + 1]
        js, cs = together.indices[start:end], together.data[start:end]
        keep = (js != i) & (cs >= min_support)
        if not keep.any():
            continue
        js, cs = js[keep], cs[keep]
        lift = cs * n_orders / (counts[i] * counts[js])
        order = np.lexsort((-cs, -lift))[:top_n]
        found[int(items[i])] = [(int(items[js[k]]), float(lift[k])) for k in order]
    return found


def repeat_rates(orders: list[tuple[int, int, int, int, datetime]]) -> dict[int, tuple[int, float]]:
    """Product -> (buyers, share of its buyers who bought it in two or more orders)."""
    orders_of: dict[tuple[int, int], set[int]] = defaultdict(set)
    for order_key, person, product, _, _ in orders:
        orders_of[(person, product)].add(order_key)
    buyers: Counter = Counter()
    repeaters: Counter = Counter()
    for (_, product), keys in orders_of.items():
        buyers[product] += 1
        repeaters[product] += len(keys) >= 2
    return {product: (n, repeaters[product] / n) for product, n in buyers.items()}


def popular_lists(orders: list[tuple[int, int, int, int, datetime]], *, since: datetime, top_n: int
                  ) -> dict[int, list[tuple[int, float]]]:
    """Location id (0: all) -> products by distinct buyers since `since` (all orders when none)."""
    recent = [o for o in orders if o[4] >= since] or orders
    buyers: dict[int, dict[int, set[int]]] = defaultdict(lambda: defaultdict(set))
    for _, person, product, location, _ in recent:
        buyers[0][product].add(person)
        if location:
            buyers[location][product].add(person)
    return {location: [(p, float(len(who))) for p, who in sorted(by.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:top_n]]
            for location, by in buyers.items()}


def build_lists(data: Interactions, params: Params, *, popular_since: datetime) -> Lists:
    """Fit and rank: the lists a model version holds."""
    top_n = params.top_n
    for_person: dict[int, list[tuple[int, float]]] = {}
    similar: dict[int, list[tuple[int, float, str]]] = {}
    people = items = np.zeros(0, dtype=np.int64)
    if data.person:
        matrix, people, items = user_item_matrix(data.person, data.product, data.weight)
        if len(items) >= 2:
            model = fit_als(matrix, params)
            ids, scores = recommend_all(model, matrix, top_n)
            for row, person in enumerate(people.tolist()):
                for_person[person] = [(int(items[i]), float(s)) for i, s in zip(ids[row], scores[row], strict=True)
                                      if i >= 0 and np.isfinite(s)]
            sim_ids, sim_scores = similar_all(model, len(items), top_n)
            for row, product in enumerate(items.tolist()):
                similar[product] = [(int(items[i]), float(s), "als") for i, s in zip(sim_ids[row], sim_scores[row], strict=True)
                                    if np.isfinite(s)]
    together: dict[int, list[tuple[int, float, str]]] = {}
    pairs = co_purchase(data.orders, min_support=params.min_support, top_n=top_n)
    for product in set(pairs) | set(similar):
        chosen = [(p, s, "copurchase") for p, s in pairs.get(product, [])]
        seen = {p for p, _, _ in chosen} | {product}
        chosen += [(p, s, source) for p, s, source in similar.get(product, []) if p not in seen][:top_n - len(chosen)]
        together[product] = chosen
    products = {product: (buyers, rate, product in data.consumable
                          or (buyers >= MIN_BUYERS_FOR_REPEAT and rate >= params.consumable_repeat_rate))
                for product, (buyers, rate) in repeat_rates(data.orders).items()}
    return Lists(for_person=for_person, related={"bought_together": together, "similar": similar},
                 popular=popular_lists(data.orders, since=popular_since, top_n=top_n), products=products,
                 people=len(people), items=len(items))


# --- writing ------------------------------------------------------------------------------------


def _rows(lists: Lists, version: int) -> Iterable[tuple[type, list[dict[str, Any]]]]:
    batch: list[dict[str, Any]] = []
    for person, found in lists.for_person.items():
        batch += [{"model_version": version, "person_id": person, "rank": rank, "product_id": p, "score": s}
                  for rank, (p, s) in enumerate(found, 1)]
        if len(batch) >= _WRITE_BATCH:
            yield RecommendationForPerson, batch
            batch = []
    if batch:
        yield RecommendationForPerson, batch
    for kind, by_product in lists.related.items():
        batch = []
        for product, found in by_product.items():
            batch += [{"model_version": version, "kind": kind, "product_id": product, "rank": rank, "related_product_id": p,
                       "score": s, "source": source} for rank, (p, s, source) in enumerate(found, 1)]
            if len(batch) >= _WRITE_BATCH:
                yield RecommendationRelated, batch
                batch = []
        if batch:
            yield RecommendationRelated, batch
    yield RecommendationPopular, [{"model_version": version, "location_id": location, "rank": rank, "product_id": p, "score": s}
                                  for location, found in lists.popular.items() for rank, (p, s) in enumerate(found, 1)]
    yield RecommendationProduct, [{"model_version": version, "product_id": p, "buyers": b, "repeat_rate": r, "consumable": c}
                                  for p, (b, r, c) in lists.products.items()]


def train(database: Database, settings: Settings, *, now: datetime | None = None) -> dict[str, Any]:
    """Train a new model version from the data of the last `recommendations_lookback_days`,
    write its lists, make it the active one and delete the older versions' lists. Returns the
    version and its counts."""
    if not settings.recommendations_enabled:
        return {"status": "disabled"}
    now = now or utcnow()
    started = time.perf_counter()
    params = Params.of(settings)
    with database.read() as session:
        data = load(session, since=now - timedelta(days=settings.recommendations_lookback_days))
    read_seconds = time.perf_counter() - started
    lists = build_lists(data, params, popular_since=now - timedelta(days=settings.recommendations_popular_days))
    fit_seconds = time.perf_counter() - started - read_seconds

    with database.write() as session:
        version = (session.scalar(select(func.max(RecommendationModel.version))) or 0) + 1
        session.add(RecommendationModel(version=version, status="training", trained_at=now,
                                        params={k: getattr(params, k) for k in Params.__dataclass_fields__}))
    written: Counter = Counter()
    try:
        for table, batch in _rows(lists, version):
            if batch:
                with database.write() as session:
                    session.execute(insert(table), batch)
                written[table.__tablename__] += len(batch)
    except BaseException as exc:
        with database.write() as session:
            for table in RESULT_TABLES:
                session.execute(delete(table).where(table.model_version == version))
            session.execute(update(RecommendationModel).where(RecommendationModel.version == version)
                            .values(status="failed", error=f"{type(exc).__name__}: {exc}"[:1000]))
        raise
    counts = {"people": lists.people, "products": lists.items, "orders": len({o[0] for o in data.orders}),
              "purchases": data.counts["purchase"], "cart_lines": data.counts["cart"], "views": data.counts["view"],
              "for_person_rows": written["recommendation_for_person"], "related_rows": written["recommendation_related"],
              "popular_rows": written["recommendation_popular"], "consumable_products": sum(c for _, _, c in lists.products.values())}
    seconds = round(time.perf_counter() - started, 3)
    # The switch: one transaction; the previous version's lists stay until it has committed.
    with database.write() as session:
        session.execute(update(RecommendationModel).where(RecommendationModel.status == "active")
                        .values(status="retired"))
        session.execute(update(RecommendationModel).where(RecommendationModel.version == version)
                        .values(status="active", activated_at=utcnow(), counts=counts, seconds=seconds))
    with database.write() as session:
        for table in RESULT_TABLES:
            session.execute(delete(table).where(table.model_version < version))
    return {"version": version, "status": "active", "counts": counts, "seconds": seconds,
            "read_seconds": round(read_seconds, 3), "fit_seconds": round(fit_seconds, 3)}
