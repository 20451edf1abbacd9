"""Benchmark: order placement through `POST /v1/orders`, with a hot SKU, and no oversell.

A realistic shop (not timed): 2,000 products with 2 variants each, 20 stores (pickup) and 3
warehouses, every SKU in stock in most locations; a hot SKU with 200 units in one store. Then
`--orders` orders from `--clients` concurrent connections to `seamline serve --workers 2`
(the machine's two cores): 1–3 lines each, 60 % click & collect at a random store, 40 %
delivery (nearest warehouse, split if needed), channels web/app/store/call_center, each with
its own Idempotency-Key; 10 % of orders want the hot SKU at the hot store, so it sells out
during the run and its later orders are refused with 409.

After the run: every 201 order's lines are checked, the stock totals are proved against the
ledger (`check_stock`), and the hot SKU's reserved units must equal the units of accepted orders
and never exceed its stock.

    .venv/bin/python bench/orders_http.py --backend postgresql
    .venv/bin/python bench/orders_http.py --backend both --orders 6000 --clients 32
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
from datetime import date
from pathlib import Path

import orjson
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _load import Request, drive, insert_catalog, throwaway_database, tree_cpu  # noqa: E402

from seamline.commerce import stock  # noqa: E402
from seamline.core.auth import service as auth_service  # noqa: E402
from seamline.core.auth.schemas import Scope  # noqa: E402
from seamline.core.config import Settings  # noqa: E402
from seamline.core.db import Database, DriverSQL  # noqa: E402
from seamline.core.time import utcnow  # noqa: E402
from seamline.devtools.serve import ServerProcess  # noqa: E402

PRODUCTS, STORES, WAREHOUSES = 2000, 20, 3
HOT_SKU, HOT_STORE, HOT_UNITS = "HOT-1", "store-00", 200


def build_shop(database: Database, rng: random.Random) -> list[str]:
    """Catalog, locations and stock straight into the tables (the setup is not what is measured)."""
    now = utcnow()
    skus = [f"SKU-{p:05d}-{v}" for p in range(PRODUCTS) for v in (1, 2)]
    with database.bulk_write() as session:
        sql = DriverSQL(session)
        t = sql.time(now)
        variants = [(i + 1, sku, int(sku.split("-")[1]) + 1) for i, sku in enumerate(skus)] + [(len(skus) + 1, HOT_SKU, PRODUCTS + 1)]
        insert_catalog(sql, t, products=PRODUCTS + 1, variants=variants,
                       prices=[rng.randrange(10_000, 1_000_000) for _ in variants])
        hours = orjson.dumps({d: ["00:00", "24:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}).decode()
        locations = [(n + 1, f"store-{n:02d}", "store", 55.6 + rng.random() * 0.3, 37.4 + rng.random() * 0.4, True) for n in range(STORES)]
        locations += [(STORES + n + 1, f"wh-{n}", "warehouse", 55.5 + rng.random() * 0.5, 37.3 + rng.random() * 0.6, False)
                      for n in range(WAREHOUSES)]
        sql.insert_rows("commerce_location", ("id", "code", "kind", "name_ru", "name_en", "address", "latitude", "longitude",
                                              "timezone", "opening_hours", "pickup_enabled", "safety_stock", "active"),
                        [(i, code, kind, code, code, "", lat, lon, "Europe/Moscow", hours, pickup, 0, True)
                         for i, code, kind, lat, lon, pickup in locations])
        stock = [(v, loc, rng.randrange(5, 200)) for v, _, _ in variants[:-1] for loc, *_ in locations if rng.random() < 0.8]
        stock.append((len(skus) + 1, 1, HOT_UNITS))
        sql.insert_rows("commerce_stock", ("variant_id", "location_id", "on_hand", "reserved", "updated_at"),
                        [(v, loc, q, 0, t) for v, loc, q in stock])
        sql.insert_rows("commerce_stock_movement", ("variant_id", "location_id", "kind", "on_hand_delta", "reserved_delta",
                                                    "reference", "created_at"),
                        [(v, loc, "receipt", q, 0, "bench", t) for v, loc, q in stock])
        if not database.is_sqlite:  # ids were given: move the sequences past them
            for table in ("commerce_product", "commerce_variant", "commerce_location"):
                session.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    return skus


def make_orders(count: int, skus: list[str], rng: random.Random) -> list[Request]:
    requests = []
    for n in range(count):
        if rng.random() < 0.10:
            lines = [{"sku": HOT_SKU, "quantity": rng.randrange(1, 3)}]
            fulfilment = {"kind": "click_and_collect", "location": HOT_STORE}
        else:
            lines = [{"sku": sku, "quantity": rng.randrange(1, 3)} for sku in rng.sample(skus, rng.randrange(1, 4))]
            if rng.random() < 0.6:
                fulfilment = {"kind": "click_and_collect", "location": f"store-{rng.randrange(STORES):02d}"}
            else:
                fulfilment = {"kind": "delivery", "address": {"city": "Москва", "latitude": 55.5 + rng.random() * 0.5,
                                                              "longitude": 37.3 + rng.random() * 0.6}}
        body = {"channel": rng.choice(["web", "app", "store", "call_center"]), "lines": lines, "fulfilment": fulfilment}
        requests.append(Request("/v1/orders", orjson.dumps(body), {"Idempotency-Key": f"bench-{n}"}))
    return requests


def run_backend(backend: str, args: argparse.Namespace) -> dict:
    with throwaway_database(backend, "seamline-orders") as (url, workdir):
        database = Database(Settings(_env_file=None, database_url=url, log_level="WARNING"))
        rng = random.Random(7)
        skus = build_shop(database, rng)
        with database.write() as session:
            _, key = auth_service.create_api_key(session, name="bench", scopes=[Scope.write, Scope.read])
        requests = make_orders(args.orders, skus, rng)
        server = ServerProcess(url, workers=args.workers, log_path=workdir / "server.log").start()
        try:
            warm = drive(server.base_url, {"Authorization": f"Bearer {key}"},
                         [Request(r.path, r.body, {"Idempotency-Key": "warm-" + r.headers["Idempotency-Key"]}) for r in make_orders(50, skus, random.Random(99))], 4, ok={201, 409})
            before = tree_cpu(server.process.pid)
            stats = drive(server.base_url, {"Authorization": f"Bearer {key}"}, requests, args.clients, ok={201, 409})
            stats.server_cpu = tree_cpu(server.process.pid) - before
        finally:
            server.stop()
        with database.read() as session:
            wrong = stock.check_stock(session)
            hot = {row["location"]: row for row in stock.availability(session, HOT_SKU)}[HOT_STORE]
            hot_sold = session.execute(text(
                "SELECT coalesce(sum(l.quantity), 0) FROM commerce_order_line l JOIN commerce_order o ON o.id = l.order_id "
                "WHERE l.sku = :sku AND o.status <> 'cancelled'"), {"sku": HOT_SKU}).scalar_one()
            orders = session.execute(text("SELECT count(*) FROM commerce_order")).scalar_one()
        database.dispose()
        return {"backend": backend, "stats": stats, "warm": warm, "wrong": wrong, "hot": hot, "hot_sold": hot_sold,
                "orders_stored": orders, "log": [line for line in (workdir / "server.log").read_text().splitlines() if line.strip()]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="postgresql")
    parser.add_argument("--orders", type=int, default=6000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    results = [run_backend(b, args) for b in (["sqlite", "postgresql"] if args.backend == "both" else [args.backend])]

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=Path(__file__).parent).stdout.strip()
    command = ".venv/bin/python bench/orders_http.py " + " ".join(sys.argv[1:])
    print(f"\n{date.today().isoformat()}, commit {commit}: `{command.strip()}`\n")
    print("| backend | orders sent | placed (201) | sold out (409) | orders/s | p50 ms | p99 ms | max ms | server CPU ms/order "
          "| client CPU ms/order | errors | hot SKU: stock / sold / reserved | ledger check |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for r in results:
        s = r["stats"]
        placed, refused = s.statuses.get(201, 0), s.statuses.get(409, 0)
        hot = r["hot"]
        oversold = r["hot_sold"] > HOT_UNITS or hot["reserved"] != r["hot_sold"]
        print(f"| {r['backend']} | {len(s.latencies):,} | {placed:,} | {refused:,} | {len(s.latencies) / s.wall:,.0f} "
              f"| {s.pct(0.5):.1f} | {s.pct(0.99):.1f} | {s.pct(1.0):.0f} | {s.server_cpu / len(s.latencies) * 1000:.1f} "
              f"| {s.client_cpu / len(s.latencies) * 1000:.2f} | {len(s.errors)} | {HOT_UNITS} / {r['hot_sold']} / {hot['reserved']} | "
              f"{'ok' if not r['wrong'] else 'WRONG'} |")
        if s.errors or r["wrong"] or oversold or r["log"]:
            failed = True
            print(f"problems ({r['backend']}): {s.errors[:3]} {r['wrong'][:3]} oversold={oversold} log={r['log'][:5]}",
                  file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
