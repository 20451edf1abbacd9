"""Every dashboard metric over a big mirror, on DuckDB (issue 21).

Builds a DuckDB mirror with the logical tables (`seamline.analytics.schema.LOGICAL`) filled by
DuckDB's own generators — 300,000 people (5 % of profiles merged into another), about 10,000,000
events over a year (in visits of 1-19 events, each visit one person in one channel), 1,000,000 orders (800,000 from carts, the rest at the till or by phone),
their carts, cart changes, statuses, returns, conversations, messages and survey answers — then
times each metric of the dashboard over the whole year, beside DuckDB's own time for a plain
scan + group-by of the tables that metric reads, in the same run.

    .venv/bin/python bench/analytics_metrics.py [--events 10000000] [--orders 1000000] [--people 300000]

Prints the markdown rows of bench/README.md on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import datetime

import duckdb
import ibis

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from seamline.analytics import metrics  # noqa: E402
from seamline.analytics.metrics import Filters  # noqa: E402
from seamline.analytics.mirror import _create_schema  # noqa: E402
from seamline.analytics.warehouse import Warehouse  # noqa: E402

YEAR = "TIMESTAMP '2026-01-01' + to_microseconds(CAST(floor(random() * 365 * 86400e6) AS BIGINT))"


def pick(values: list[str], column: str = "random()") -> str:
    """A SQL expression choosing one of `values` uniformly (a list index: one random() per row; a
    CASE would draw again for each WHEN and sometimes match none)."""
    items = ", ".join(f"'{v}'" for v in values)
    return f"([{items}])[1 + CAST(floor({column} * {len(values)}) AS INT)]"


REASONS = ["for_you", "popular_in_store", "popular", "bought_together", "similar"]
SHOWN_IN = ["web", "web", "app", "app", "email", "telegram", "webpush"]


def build(path: str, *, people: int, events: int, orders: int) -> None:
    c = duckdb.connect(path)
    _create_schema(c)
    carts = int(orders * 1.3)
    from_carts = int(orders * 0.8)
    statements = [
        f"INSERT INTO profiles SELECT i, CASE WHEN i % 20 = 0 AND i > 1 THEN 'merged' ELSE 'active' END,"
        f" CASE WHEN i % 20 = 0 AND i > 1 THEN i - 1 END, TIMESTAMP '2025-06-01', TIMESTAMP '2025-06-01'"
        f" FROM range(1, {people} + 1) t(i)",
        f"INSERT INTO identities SELECT 2 * i, 'user_id', 'u' || i, i FROM range(1, {people} + 1) t(i)"
        f" UNION ALL SELECT 2 * i + 1, 'anonymous_id', 'a' || i, i FROM range(1, {people} + 1) t(i)",
        # events come in visits: a person, a channel and a campaign per visit, 1-19 events a minute apart
        # (mostly product views); about `events` in all
        f"INSERT INTO events SELECT row_number() OVER (), CASE WHEN random() < 0.4 THEN 'page' ELSE 'track' END,"
        f" {pick(['Product Viewed'] * 5 + ['Product Added'] * 2 + ['Checkout Started', 'Order Completed', 'Page'])},"
        f" v.person_key, v.channel, v.t + to_minutes(k), v.utm, NULL, NULL, NULL, NULL, NULL, NULL FROM"
        f" (SELECT CASE WHEN random() < 0.5 THEN 'u:u' ELSE 'a:a' END || (1 + CAST(floor(random() * {people}) AS BIGINT))"
        f" AS person_key, {pick(['web'] * 11 + ['app'] * 8 + ['telegram'])} AS channel, {YEAR} AS t,"
        f" CASE WHEN random() < 0.2 THEN {pick(['google', 'yandex', 'vk', 'email'])} END AS utm,"
        f" 1 + CAST(floor(random() * 19) AS INT) AS n FROM range(1, {events // 10} + 1) s(i)) v, range(0, v.n) r(k)",
        f"INSERT INTO carts SELECT i, 1 + CAST(floor(random() * {people}) AS BIGINT),"
        f" CASE WHEN i > {from_carts} AND i % 5 = 0 THEN i - {from_carts} END,"
        f" CASE WHEN i <= {from_carts} THEN i END, {YEAR}, TIMESTAMP '2026-12-31' FROM range(1, {carts} + 1) t(i)",
        f"INSERT INTO cart_changes SELECT row_number() OVER (), c.id, CASE WHEN k = 0 THEN 'product_added' ELSE"
        f" {pick(['product_added', 'quantity_changed', 'product_removed'])} END,"
        f" {pick(['web', 'web', 'app', 'app', 'call_center'])}, c.created_at + to_minutes(k * 7)"
        f" FROM carts c, range(0, 1 + CAST(floor(random() * 4) AS INT)) r(k)",
        f"INSERT INTO orders SELECT o.i, 1 + CAST(floor(random() * {people}) AS BIGINT), ch, CASE WHEN st = 'completed'"
        f" THEN CASE WHEN ful = 'click_and_collect' OR ful = 'in_store' THEN 'store' ELSE ch END END, st, ful,"
        f" CASE WHEN ful = 'click_and_collect' THEN 1 + o.i % 30 END, 500 + CAST(floor(random() * 20000) AS BIGINT), 'RUB', t, t"
        f" FROM (SELECT i, CASE WHEN i <= {from_carts} THEN {pick(['web', 'app', 'app'])} ELSE"
        f" {pick(['store', 'store', 'store', 'call_center'])} END AS ch,"
        f" {pick(['completed'] * 6 + ['shipped', 'confirmed', 'cancelled', 'ready_for_pickup'])} AS st,"
        f" {YEAR} AS t FROM range(1, {orders} + 1) t(i)) o,"
        f" LATERAL (SELECT CASE WHEN o.ch = 'store' THEN 'in_store' ELSE {pick(['click_and_collect', 'click_and_collect', 'delivery'])} END AS ful)",
        "UPDATE carts SET created_at = o.created_at - INTERVAL 2 HOUR FROM orders o WHERE carts.order_id = o.id",
        "UPDATE cart_changes SET created_at = c.created_at + to_minutes(cart_changes.id % 50) FROM carts c"
        " WHERE cart_changes.cart_id = c.id",
        "INSERT INTO order_statuses SELECT row_number() OVER (), id, s, 'store', created_at + to_hours(h) FROM orders,"
        " (VALUES ('confirmed', 0), ('ready_for_pickup', 3), ('completed', 27)) v(s, h)"
        " WHERE fulfilment = 'click_and_collect' AND (s <> 'completed' OR status = 'completed')",
        "INSERT INTO returns SELECT row_number() OVER (), id, profile_id, 1 + id % 30, 'store', total / 2, created_at"
        " + INTERVAL 5 DAY FROM orders WHERE status = 'completed' AND id % 20 = 0",
        # the catalogue: 5,000 products of 2 variants each; 1-3 lines per order
        "INSERT INTO products SELECT i, 'P' || i FROM range(1, 5001) t(i)",
        "INSERT INTO variants SELECT i, 1 + i % 5000 FROM range(1, 10001) t(i)",
        "INSERT INTO order_lines SELECT row_number() OVER (), o.id, 1 + CAST(floor(random() * 10000) AS BIGINT), 1,"
        " o.total // (1 + o.id % 3) FROM orders o, range(0, 1 + o.id % 3) r(k)",
        # recommendation clicks: for 30 % of the lines the buyer clicked the product 1-240 hours before
        # the order (so some are outside the 7 days), and 200,000 clicks of anyone on anything
        f"INSERT INTO events SELECT (SELECT max(id) FROM events) + row_number() OVER (), 'track', 'Product Clicked',"
        f" 'u:u' || o.profile_id, 'web', o.created_at - to_hours(1 + CAST(floor(random() * 240) AS INT)), NULL, NULL,"
        f" NULL, 'P' || v.product_id, 'recommendations', {pick(REASONS)}, {pick(SHOWN_IN)}"
        f" FROM order_lines l JOIN orders o ON o.id = l.order_id JOIN variants v ON v.id = l.variant_id"
        f" WHERE random() < 0.3",
        f"INSERT INTO events SELECT (SELECT max(id) FROM events) + i, 'track', 'Product Clicked',"
        f" 'u:u' || (1 + CAST(floor(random() * {people}) AS BIGINT)), 'web', {YEAR}, NULL, NULL, NULL,"
        f" 'P' || (1 + CAST(floor(random() * 5000) AS BIGINT)), 'recommendations', {pick(REASONS)}, {pick(SHOWN_IN)}"
        f" FROM range(1, 200001) t(i)",
        "INSERT INTO locations SELECT i, 'S' || i, 'store', 'Магазин ' || i, 'Store ' || i FROM range(1, 31) t(i)",
        "INSERT INTO agents SELECT i, 'Agent ' || i FROM range(1, 51) t(i)",
        f"INSERT INTO conversations SELECT i, 1 + CAST(floor(random() * {people}) AS BIGINT),"
        f" {pick(['telegram', 'web', 'whatsapp', 'email'])}, 'resolved', 1 + i % 50, t, t + to_minutes(5 + i % 60),"
        f" t + to_minutes(60 + i % 600), i % 10 = 0, NULL, t FROM (SELECT i, {YEAR} AS t FROM range(1, {orders // 5} + 1)"
        f" t(i))",
        "INSERT INTO messages SELECT row_number() OVER (), c.id, CASE WHEN k % 2 = 0 THEN 'in' ELSE 'out' END,"
        " 'message', c.channel, CASE WHEN k % 2 = 1 THEN c.assignee_id END, c.created_at + to_minutes(k * 3)"
        " FROM conversations c, range(0, 5) r(k)",
        "INSERT INTO surveys SELECT id, id, customer_id, CASE WHEN id % 2 = 0 THEN 'nps' ELSE 'csat' END, channel,"
        " assignee_id, CASE WHEN id % 2 = 0 THEN id % 11 ELSE 1 + id % 5 END, resolved_at, resolved_at + INTERVAL 1 HOUR"
        " FROM conversations WHERE id % 3 = 0",
    ]
    for statement in statements:
        c.execute(statement)
    c.execute("""
        INSERT INTO people
        WITH RECURSIVE walk(profile_id, person_id, depth) AS (
            SELECT id, id, 0 FROM profiles WHERE merged_into_id IS NULL
            UNION ALL
            SELECT p.id, w.person_id, w.depth + 1 FROM profiles p JOIN walk w ON p.merged_into_id = w.profile_id
            WHERE w.depth < 64)
        SELECT w.profile_id, w.person_id, r.status FROM walk w JOIN profiles r ON r.id = w.person_id""")
    c.execute("""INSERT INTO event_people SELECT DISTINCT CASE WHEN i.type = 'user_id' THEN 'u:' ELSE 'a:' END || i.value,
                 p.person_id FROM identities i JOIN people p ON p.profile_id = i.profile_id""")
    c.execute("CHECKPOINT")
    c.close()


#: What each metric reads: DuckDB's plain scan + group-by over these tables is its yardstick.
READS = {
    "conversion": ["carts", "cart_changes", "orders", "people", "order_statuses", "returns"],
    "journeys": ["carts", "cart_changes", "orders", "people", "events", "event_people", "messages", "conversations"],
    "funnel": ["events", "event_people"],
    "cohorts": ["carts", "cart_changes", "orders", "people", "returns"],
    "satisfaction": ["surveys"],
    "clv": ["carts", "cart_changes", "orders", "people", "returns"],
    "engagement": ["events", "event_people", "messages", "conversations", "people"],
    "attribution": ["carts", "cart_changes", "orders", "people", "events", "event_people", "messages", "conversations"],
    "omnichannel": ["carts", "cart_changes", "orders", "people", "returns"],
    "contact_center": ["conversations"],
    "recommendations": ["events", "event_people", "orders", "people", "order_lines", "variants", "products"],
}
GROUP_KEY = {"events": "channel", "orders": "channel", "carts": "profile_id % 100", "cart_changes": "channel",
             "people": "status", "event_people": "person_id % 100", "order_statuses": "status", "returns": "channel",
             "messages": "direction", "conversations": "channel", "surveys": "kind", "order_lines": "variant_id % 100",
             "variants": "product_id % 100", "products": "id % 100"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--people", type=int, default=300_000)
    parser.add_argument("--keep", help="keep the mirror at this path (and reuse it when it exists)")
    args = parser.parse_args()
    path = args.keep or os.path.join(tempfile.mkdtemp(), "bench.duckdb")
    if not os.path.exists(path):
        began = time.perf_counter()
        build(path, people=args.people, events=args.events, orders=args.orders)
        print(f"built the mirror in {time.perf_counter() - began:.1f} s: {path}", file=sys.stderr)
    raw = duckdb.connect(path, read_only=True)
    counts = {t: raw.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in GROUP_KEY}
    print(f"rows: {counts}", file=sys.stderr)
    baseline = {}
    for table, key in GROUP_KEY.items():
        began = time.perf_counter()
        raw.execute(f"SELECT {key} AS k, count(*) FROM {table} GROUP BY 1").fetchall()
        baseline[table] = time.perf_counter() - began
    raw.close()
    w = Warehouse("duckdb", ibis.duckdb.connect(path, read_only=True))
    f = Filters(start=datetime(2026, 1, 1), end=datetime(2027, 1, 1))
    calls = {
        "conversion": lambda: metrics.conversion(w, f),
        "journeys": lambda: metrics.journeys(w, f),
        "funnel": lambda: metrics.funnel(w, f, steps=["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]),
        "cohorts": lambda: metrics.cohorts(w, f),
        "satisfaction": lambda: metrics.satisfaction(w, f),
        "clv": lambda: metrics.clv(w, f),
        "engagement": lambda: metrics.engagement(w, f),
        "attribution": lambda: metrics.attribution(w, f),
        "omnichannel": lambda: metrics.omnichannel(w, f),
        "contact_center": lambda: metrics.contact_center(w, f),
        "recommendations": lambda: metrics.recommendations(w, f),
    }
    total = total_base = 0.0
    print("| metric | time | DuckDB scan + group-by of the same tables | ratio |")
    print("|---|---|---|---|")
    for name, call in calls.items():
        began = time.perf_counter()
        result = call()
        spent = time.perf_counter() - began
        base = sum(baseline[t] for t in READS[name])
        total, total_base = total + spent, total_base + base
        print(f"| {name} | {spent:.2f} s | {base:.2f} s | {spent / base:.1f}× |")
        print(f"{name}: {str(result)[:300]}", file=sys.stderr)
    print(f"| **all {len(calls)}** | **{total:.2f} s** | {total_base:.2f} s | {total / total_base:.1f}× |")


if __name__ == "__main__":
    main()
