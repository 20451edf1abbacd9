"""The analytics mirror's incremental sync (issue 21): 100,000 new events and 10,000 new orders
(with their lines, statuses, carts and cart changes) copied from the operational database into
the DuckDB mirror, after a first sync of a base of 50,000 people, 500,000 events and 50,000
orders. Also the first (full) sync, and a sync with nothing new.

    .venv/bin/python bench/analytics_sync.py --backend sqlite
    .venv/bin/python bench/analytics_sync.py --backend postgresql

Prints the markdown rows of bench/README.md on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from sqlalchemy import insert  # noqa: E402

from _load import throwaway_database  # noqa: E402
from seamline.analytics.mirror import STAMP_MARGIN, Mirror  # noqa: E402
from seamline.commerce.models import (  # noqa: E402
    CommerceCart,
    CommerceCartChange,
    CommerceOrder,
    CommerceOrderLine,
    CommerceOrderStatus,
    CommerceProduct,
    CommerceVariant,
)
from seamline.core.config import Settings  # noqa: E402
from seamline.core.db import Database  # noqa: E402
from seamline.customers.models import CustomerIdentity, CustomerProfile  # noqa: E402
from seamline.events.models import EventRecord, EventSource  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
CHANNELS = ["web", "app"]


def add(database: Database, *, people: range, events: range, orders: range, rng: random.Random,
        age: timedelta = timedelta(0)) -> None:
    """Rows straight into the tables (a benchmark's setup, not what it measures). Change stamps
    are the time of writing, as the services stamp them, less `age` (the base: written an hour ago)."""
    now = datetime.now(timezone.utc) - age
    with database.write() as s:
        if people:
            s.execute(insert(CustomerProfile), [{"id": p, "status": "active", "created_at": T0, "updated_at": now} for p in people])
            s.execute(insert(CustomerIdentity), [{"id": p, "type": "user_id", "value": f"u{p}", "profile_id": p,
                                                  "source": "bench", "created_at": T0} for p in people])
        top = people.stop - 1 if people else 50_000
        for start in range(events.start, events.stop, 20_000):
            chunk = range(start, min(start + 20_000, events.stop))
            s.execute(insert(EventRecord), [{
                "id": i, "source_id": 1, "message_id": f"m{i}", "type": "track", "name": "Product Viewed",
                "person": f"u:u{rng.randint(1, top)}", "channel": rng.choice(CHANNELS),
                "timestamp": T0 + timedelta(seconds=i), "received_at": T0 + timedelta(seconds=i),
                "payload": json.dumps({"event": "Product Viewed", "properties": {"sku": f"S{i % 100}"},
                                       "context": {"campaign": {"source": rng.choice(["google", "vk", None])}}}),
            } for i in chunk])
        if orders:
            at = [T0 + timedelta(minutes=o) for o in orders]
            s.execute(insert(CommerceCart), [{"id": o, "profile_id": None, "anonymous_id": None, "status": "ordered",
                                              "order_id": None, "coupons": [], "channel": "web", "created_at": t,
                                              "updated_at": now} for o, t in zip(orders, at)])
            s.execute(insert(CommerceOrder), [{
                "id": o, "profile_id": rng.randint(1, top), "channel": rng.choice(CHANNELS), "status": "confirmed",
                "fulfilment": "delivery", "payment_method": "card", "currency": "RUB", "subtotal": 1000, "discount": 0,
                "total": 1000, "promotions": [], "created_at": t, "updated_at": now} for o, t in zip(orders, at)])
            s.execute(CommerceCart.__table__.update().where(CommerceCart.id.in_(list(orders))).values(
                order_id=CommerceCart.id))
            s.execute(insert(CommerceCartChange), [{"cart_id": o, "kind": "product_added", "sku": "S1", "quantity": 1,
                                                    "detail": "", "channel": "web", "created_at": t}
                                                   for o, t in zip(orders, at)])
            s.execute(insert(CommerceOrderLine), [{"order_id": o, "variant_id": 1, "sku": "S1", "name": "x", "quantity": 1,
                                                   "unit_price": 1000, "discount": 0, "total": 1000} for o in orders])
            s.execute(insert(CommerceOrderStatus), [{"order_id": o, "status": "confirmed", "channel": "web", "note": "",
                                                     "created_at": t} for o, t in zip(orders, at)])


def run(backend: str, args: argparse.Namespace) -> list[str]:
    rows = []
    with throwaway_database(backend, "seamline-analytics-sync") as (url, workdir):
        database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
        rng = random.Random(7)
        with database.write() as s:
            s.add(EventSource(id=1, name="bench", channel="web"))
            s.add(CommerceProduct(id=1, code="p1", name_ru="Товар", name_en="Product"))
            s.flush()
            s.add(CommerceVariant(id=1, sku="S1", product_id=1))
        add(database, people=range(1, 50_001), events=range(1, args.base_events + 1), orders=range(1, 50_001), rng=rng,
            age=timedelta(hours=1))
        mirror = Mirror(database, str(workdir / "mirror.duckdb"))
        began = time.perf_counter()
        first = mirror.sync()
        rows.append(f"| {backend} | first sync: {args.base_events:,} events, 50,000 orders, 50,000 people | "
                    f"{time.perf_counter() - began:.2f} s | {first.total:,} rows |")
        add(database, people=range(0), events=range(args.base_events + 1, args.base_events + args.events + 1),
            orders=range(50_001, 50_001 + args.orders), rng=rng)
        began = time.perf_counter()
        report = mirror.sync()
        spent = time.perf_counter() - began
        rows.append(f"| {backend} | **+{args.events:,} events, +{args.orders:,} orders** | **{spent:.2f} s** | "
                    f"{report.total:,} rows ({report.rows.get('events', 0):,} events, {report.rows.get('orders', 0):,} orders) |")
        print(f"[{backend}] incremental: {report.rows}", file=sys.stderr)
        began = time.perf_counter()
        idle = mirror.sync()
        rows.append(f"| {backend} | nothing new (rows stamped less than {STAMP_MARGIN.seconds // 60} min before the "
                    f"previous sync are read again) | {time.perf_counter() - began:.2f} s | {idle.total:,} rows |")
        database.dispose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--base-events", type=int, default=500_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--orders", type=int, default=10_000)
    args = parser.parse_args()
    for row in run(args.backend, args):
        print(row)


if __name__ == "__main__":
    main()
