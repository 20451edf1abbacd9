"""Every dashboard metric on the PostgreSQL backend (issue 21): the views of the `analytics`
schema over the operational tables, no mirror. The tables are filled by PostgreSQL's own
`generate_series` — 30,000 people, 1,000,000 events over a year, 100,000 orders, their carts,
cart changes, statuses, returns, conversations, messages and survey answers — on a throwaway
PostgreSQL 15 (fsync on, default settings).

    .venv/bin/python bench/analytics_postgres.py [--events 1000000] [--orders 100000] [--people 30000]

Prints the markdown rows of bench/README.md on stdout.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime

import sqlalchemy as sa

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
sys.path.insert(0, os.path.dirname(__file__))

from _load import throwaway_database  # noqa: E402
from seamline.analytics import service  # noqa: E402
from seamline.analytics.metrics import Filters  # noqa: E402
from seamline.analytics.warehouse import open_warehouse  # noqa: E402
from seamline.core.config import Settings  # noqa: E402
from seamline.core.db import Database  # noqa: E402
from seamline.models import metadata  # noqa: E402

YEAR = "timestamptz '2026-01-01 00:00+00' + random() * interval '365 days'"


def pick(values: list[str]) -> str:
    items = ", ".join(f"'{v}'" for v in values)
    return f"(ARRAY[{items}])[1 + floor(random() * {len(values)})::int]"


def fill(table: str, given: dict[str, str], source: str) -> str:
    """INSERT INTO table SELECT ... FROM source, every NOT NULL column without a value given a
    neutral one (the services' Python-side defaults are not in the schema)."""
    columns = dict(given)
    for column in metadata.tables[table].columns:
        if column.name in columns or column.nullable or column.primary_key or column.server_default is not None:
            continue
        kind = column.type
        if isinstance(kind, sa.JSON):
            default = getattr(column.default, "arg", None)
            columns[column.name] = "'[]'::json" if getattr(default, "__name__", "") == "list" else "'{}'::json"
            continue
        python = (kind.impl if hasattr(kind, "impl") else kind).python_type
        columns[column.name] = {str: "''", int: "0", bool: "false", datetime: "now()"}.get(python, "NULL")
    names = ", ".join('"' + c + '"' for c in columns)  # quoted: commerce_return has a column "full"
    return f"INSERT INTO {table} ({names}) SELECT {', '.join(columns.values())} FROM {source}"


def build(database: Database, *, people: int, events: int, orders: int) -> None:
    carts, from_carts = int(orders * 1.3), int(orders * 0.8)
    statements = [
        fill("customer_profile", {"id": "i", "status": "'active'", "created_at": "now()", "updated_at": "now()"},
             f"generate_series(1, {people}) i"),
        "UPDATE customer_profile SET status = 'merged', merged_into_id = id - 1 WHERE id % 20 = 0",
        fill("customer_identity", {"id": "2 * i", "type": "'user_id'", "value": "'u' || i", "profile_id": "i",
                                   "source": "'bench'"}, f"generate_series(1, {people}) i"),
        fill("customer_identity", {"id": "2 * i + 1", "type": "'anonymous_id'", "value": "'a' || i", "profile_id": "i",
                                   "source": "'bench'"}, f"generate_series(1, {people}) i"),
        fill("event_source", {"id": "1", "name": "'site'", "channel": "'web'"}, "generate_series(1, 1)"),
        fill("event_record", {
            "id": "i", "source_id": "1", "message_id": "'m' || i",
            "type": "CASE WHEN random() < 0.4 THEN 'page' ELSE 'track' END",
            "name": pick(["Product Viewed"] * 5 + ["Product Added"] * 2 + ["Checkout Started", "Order Completed", "Page"]),
            "person": f"CASE WHEN random() < 0.5 THEN 'u:u' ELSE 'a:a' END || (1 + floor(random() * {people})::int)",
            "channel": pick(["web"] * 11 + ["app"] * 8 + ["telegram"]), "timestamp": YEAR, "received_at": "now()",
            "payload": "CASE WHEN random() < 0.2 THEN '{\"context\": {\"campaign\": {\"source\": \"google\"}}}' ELSE '{}' END",
        }, f"generate_series(1, {events}) i"),
        fill("commerce_product", {"id": "1", "code": "'p1'", "name_ru": "'Товар'", "name_en": "'Product'"}, "generate_series(1, 1)"),
        fill("commerce_variant", {"id": "1", "sku": "'S1'", "product_id": "1"}, "generate_series(1, 1)"),
        fill("commerce_location", {"id": "i", "code": "'S' || i", "kind": "'store'", "name_ru": "'Магазин ' || i",
                                   "name_en": "'Store ' || i"}, "generate_series(1, 30) i"),
        fill("commerce_order", {
            "id": "i", "profile_id": f"1 + floor(random() * {people})::int", "channel": "ch",
            "completed_channel": "CASE WHEN st = 'completed' THEN CASE WHEN ful IN ('click_and_collect', 'in_store') "
                                 "THEN 'store' ELSE 'courier' END END",
            "status": "st", "fulfilment": "ful", "pickup_location_id": "CASE WHEN ful = 'click_and_collect' THEN 1 + i % 30 END",
            "payment_method": "'card'", "currency": "'RUB'", "total": "500 + floor(random() * 20000)::int",
            "created_at": "t", "updated_at": "t"},
            f"(SELECT i, ch, st, t, CASE WHEN ch = 'store' THEN 'in_store' ELSE "
            f"{pick(['click_and_collect', 'click_and_collect', 'delivery'])} END AS ful FROM (SELECT i, "
            f"CASE WHEN i <= {from_carts} THEN {pick(['web', 'app', 'app'])} ELSE {pick(['store', 'store', 'store', 'call_center'])} END AS ch, "
            f"{pick(['completed'] * 6 + ['shipped', 'confirmed', 'cancelled', 'ready_for_pickup'])} AS st, {YEAR} AS t "
            f"FROM generate_series(1, {orders}) i) o) o"),
        fill("commerce_cart", {"id": "i", "profile_id": f"1 + floor(random() * {people})::int", "status": "'ordered'",
                               "order_id": f"CASE WHEN i <= {from_carts} THEN i END", "channel": "'web'",
                               "created_at": YEAR, "updated_at": "now()"}, f"generate_series(1, {carts}) i"),
        f"UPDATE commerce_cart SET merged_into_id = id - {from_carts}, status = 'merged' WHERE id > {from_carts} AND id % 5 = 0",
        "UPDATE commerce_cart c SET created_at = o.created_at - interval '2 hours' FROM commerce_order o WHERE c.order_id = o.id",
        fill("commerce_cart_change", {"cart_id": "c.id", "kind": "CASE WHEN k = 0 THEN 'product_added' ELSE 'quantity_changed' END",
                                      "channel": pick(["web", "web", "app", "app", "call_center"]),
                                      "created_at": "c.created_at + k * interval '7 minutes'"},
             "commerce_cart c, generate_series(0, 2) k"),
        fill("commerce_order_status", {"order_id": "o.id", "status": "v.s", "channel": "'store'",
                                       "created_at": "o.created_at + v.h * interval '1 hour'"},
             "commerce_order o, (VALUES ('confirmed', 0), ('ready_for_pickup', 3), ('completed', 27)) v(s, h) "
             "WHERE o.fulfilment = 'click_and_collect' AND (v.s <> 'completed' OR o.status = 'completed')"),
        fill("commerce_return", {"order_id": "id", "profile_id": "profile_id", "location_id": "1 + id % 30", "channel": "'store'",
                                 "amount": "total / 2", "currency": "'RUB'", "full": "false",
                                 "created_at": "created_at + interval '5 days'"},
             "commerce_order WHERE status = 'completed' AND id % 20 = 0"),
        fill("inbox_agent", {"id": "i", "name": "'Agent ' || i", "email": "'agent' || i || '@example.com'"},
             "generate_series(1, 50) i"),
        fill("inbox_conversation", {
            "id": "i", "customer_id": f"1 + floor(random() * {people})::int", "channel": pick(["telegram", "web", "whatsapp", "email"]),
            "reply_channel": "'telegram'", "status": "'resolved'", "assignee_id": "1 + i % 50", "created_at": "t",
            "first_response_at": "t + (5 + i % 60) * interval '1 minute'", "resolved_at": "t + (60 + i % 600) * interval '1 minute'",
            "sla_breaches": "CASE WHEN i % 10 = 0 THEN '[\"first_response\"]'::json ELSE '[]'::json END",
            "last_message_at": "t", "updated_at": "t"},
            f"(SELECT i, {YEAR} AS t FROM generate_series(1, {orders // 5}) i) c"),
        fill("inbox_message", {"conversation_id": "c.id", "direction": "CASE WHEN k % 2 = 0 THEN 'in' ELSE 'out' END",
                               "kind": "'message'", "channel": "c.channel", "created_at": "c.created_at + k * interval '3 minutes'"},
             "inbox_conversation c, generate_series(0, 4) k"),
        fill("inbox_survey", {"conversation_id": "id", "customer_id": "customer_id",
                              "kind": "CASE WHEN id % 2 = 0 THEN 'nps' ELSE 'csat' END", "channel": "channel",
                              "agent_id": "assignee_id", "score": "CASE WHEN id % 2 = 0 THEN id % 11 ELSE 1 + id % 5 END",
                              "sent_at": "resolved_at", "answered_at": "resolved_at + interval '1 hour'"},
             "inbox_conversation WHERE id % 3 = 0"),
    ]
    with database.write_engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
        for table in ("customer_profile", "customer_identity", "event_record", "commerce_order", "commerce_cart",
                      "commerce_cart_change", "commerce_order_status", "inbox_conversation", "inbox_message", "inbox_survey"):
            connection.execute(sa.text(f"ANALYZE {table}"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=30_000)
    args = parser.parse_args()
    with throwaway_database("postgresql", "seamline-analytics-pg") as (url, _workdir):
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING", analytics_backend="postgres")
        database = Database(settings)
        began = time.perf_counter()
        build(database, people=args.people, events=args.events, orders=args.orders)
        print(f"filled in {time.perf_counter() - began:.1f} s", file=sys.stderr)
        f = Filters(start=datetime(2026, 1, 1), end=datetime(2027, 1, 1))
        total = 0.0
        print("| metric (PostgreSQL views) | time |")
        print("|---|---|")
        with open_warehouse(settings, database) as w:
            for name in service.METRICS:
                params = {"steps": service.DEFAULT_FUNNEL} if name == "funnel" else {}
                began = time.perf_counter()
                result = service.run_metric(w, name, f, **params)
                spent = time.perf_counter() - began
                total += spent
                print(f"| {name} | {spent:.2f} s |")
                print(f"{name}: {str(result)[:200]}", file=sys.stderr)
        print(f"| **all ten** | **{total:.2f} s** |")
        database.dispose()


if __name__ == "__main__":
    main()
