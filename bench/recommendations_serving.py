"""Recommendations at a realistic size: training time, then p50/p99 of the serving functions
(for_person, related bought_together, for_cart) each in its own read session as a request
has, on SQLite and on a throwaway PostgreSQL. The data is written as rows in bulk (people in
taste clusters, orders of 1-6 lines, stock in 10 stores with some products missing).

    .venv/bin/python bench/recommendations_serving.py --backend both --people 100000 --products 5000 --lines 1000000
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import timedelta

import numpy as np
from sqlalchemy import insert

from seamline.commerce.models import (
    CommerceLocation,
    CommerceOrder,
    CommerceOrderLine,
    CommercePrice,
    CommerceProduct,
    CommerceStock,
    CommerceVariant,
)
from seamline.core import migrations
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.core.time import utcnow
from seamline.customers.models import CustomerProfile
from seamline.recommendations import service, training

STORES = 10


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def fill(database: Database, *, people: int, products: int, lines: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    now = utcnow()
    clusters = 50
    cluster_of = rng.integers(0, clusters, products)
    members = [np.flatnonzero(cluster_of == c) for c in range(clusters)]
    weight = 1.0 / np.arange(1, products + 1) ** 0.8
    rng.shuffle(weight)
    member_p = [weight[m] / weight[m].sum() for m in members]

    def chunks(rows, size=20_000):
        for i in range(0, len(rows), size):
            yield rows[i:i + size]

    with database.bulk_write() as session:
        session.execute(insert(CommerceLocation), [{"id": i, "code": f"S{i}", "kind": "store", "name_ru": f"S{i}", "name_en": f"S{i}",
                                                     "pickup_enabled": True, "safety_stock": 0, "active": True, "address": "",
                                                     "timezone": "Europe/Moscow", "opening_hours": {}} for i in range(1, STORES + 1)])
        session.execute(insert(CommerceProduct), [{"id": i, "code": f"p{i}", "name_ru": f"Товар {i}", "name_en": f"Product {i}",
                                                    "attributes": {}, "image_urls": [f"/img/p{i}.jpg"], "active": True,
                                                    "description_ru": "", "description_en": "", "created_at": now, "updated_at": now}
                                                   for i in range(1, products + 1)])
        session.execute(insert(CommerceVariant), [{"id": i, "sku": f"SKU{i}", "product_id": i, "name_ru": "", "name_en": "",
                                                    "attributes": {}, "active": True} for i in range(1, products + 1)])
        session.execute(insert(CommercePrice), [{"variant_id": i, "channel": "", "amount": 10000 + i, "currency": "RUB",
                                                  "updated_at": now} for i in range(1, products + 1)])
        stock = [{"variant_id": v, "location_id": s, "on_hand": int(rng.integers(0, 20)), "reserved": 0, "updated_at": now}
                 for v in range(1, products + 1) for s in range(1, STORES + 1)]
        for batch in chunks(stock):
            session.execute(insert(CommerceStock), batch)
        for batch in chunks([{"id": i, "status": "active", "created_at": now, "updated_at": now} for i in range(1, people + 1)]):
            session.execute(insert(CustomerProfile), batch)
    log(f"  catalog, stock and {people:,} people written")
    orders, order_lines = [], []
    order_id = line_id = 0
    person_taste = rng.integers(0, clusters, people + 1)
    person_store = rng.integers(1, STORES + 1, people + 1)
    while line_id < lines:
        person = int(rng.integers(1, people + 1))
        order_id += 1
        when = now - timedelta(days=float(rng.uniform(0, 300)))
        orders.append({"id": order_id, "profile_id": person, "channel": "web", "status": "completed",
                       "fulfilment": "click_and_collect", "pickup_location_id": int(person_store[person]), "payment_method": "test",
                       "currency": "RUB", "subtotal": 0, "discount": 0, "total": 0, "promotions": [], "created_at": when,
                       "updated_at": when})
        c = int(person_taste[person]) if rng.random() < 0.8 else int(rng.integers(0, clusters))
        for item in set(rng.choice(members[c], size=int(rng.integers(1, 7)), p=member_p[c]).tolist()):
            line_id += 1
            order_lines.append({"id": line_id, "order_id": order_id, "variant_id": int(item) + 1, "sku": f"SKU{int(item) + 1}",
                                "name": "x", "quantity": 1, "unit_price": 100, "discount": 0, "total": 100})
    with database.bulk_write() as session:
        for batch in chunks(orders):
            session.execute(insert(CommerceOrder), batch)
        for batch in chunks(order_lines):
            session.execute(insert(CommerceOrderLine), batch)
    log(f"  {len(orders):,} orders, {len(order_lines):,} lines written")


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def run(backend: str, args) -> None:
    server = None
    if backend == "sqlite":
        url = f"sqlite:///{tempfile.mkdtemp()}/reco.db"
    else:
        from seamline.devtools.postgres import PostgresServer

        server = PostgresServer().start()
        url = server.url()
    try:
        migrations.upgrade(url)
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING", serve_worker=False,
                            secret_key="bench-secret-key-0123456789abcdef0123456789")
        database = Database(settings)
        started = time.perf_counter()
        fill(database, people=args.people, products=args.products, lines=args.lines, seed=args.seed)
        log(f"{backend}: filled in {time.perf_counter() - started:.1f} s")
        result = training.train(database, settings)
        log(f"{backend}: trained {result}")
        rnd = random.Random(args.seed)
        timings: dict[str, list[float]] = {"for_person": [], "related": [], "for_cart": []}
        empty = 0
        for _ in range(args.calls):
            calls = {
                "for_person": lambda s: service.for_person(s, settings, rnd.randint(1, args.people), limit=10),
                "related": lambda s: service.related(s, settings, f"p{rnd.randint(1, args.products)}", limit=10),
                "for_cart": lambda s: service.for_cart(s, settings, [f"SKU{rnd.randint(1, args.products)}" for _ in range(3)],
                                                       limit=10),
            }
            for name, call in calls.items():
                t = time.perf_counter()
                with database.read() as session:
                    found = call(session)
                timings[name].append(time.perf_counter() - t)
                empty += not found
        counts = result["counts"]
        for name, values in timings.items():
            print(f"| {backend} | {args.people:,} / {args.products:,} / {counts['purchases']:,} | {result['seconds']:.1f} s "
                  f"(read {result['read_seconds']:.1f}, fit {result['fit_seconds']:.1f}) | {name} | {len(values)} | "
                  f"{pct(values, 50):.2f} | {pct(values, 99):.2f} |", flush=True)
        log(f"{backend}: {empty} empty answers")
        database.dispose()
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--products", type=int, default=5_000)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print("| backend | people / products / purchase lines | training | call | calls | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run(backend, args)


if __name__ == "__main__":
    main()
