"""Benchmark: the customer timeline of a person with 10,000 events among 10,000,000.

Setup (not timed): a migrated database; `--events` events from `--people` other people (an
anonymous id each, a third of them also a user id), and one person, Anna, with `--own` events
over a year under three identifiers (her user id, a web cookie and an app install, linked
through the real identity service), interleaved in time with everybody else's. Rows go in
through COPY (PostgreSQL) or executemany (SQLite) with the timeline indexes dropped, then the
indexes are built, as a bulk import would.

Measured through HTTP on a real `seamline serve` process, one request at a time: the first page
(50 items) of Anna's timeline, `--requests` times (the first request, with cold caches, shown
apart); then a walk of 20 pages down with the cursor; then the first page filtered to one
channel; then the first page of people with few events.

    .venv/bin/python bench/timeline.py --backend sqlite
    .venv/bin/python bench/timeline.py --backend postgresql
"""

from __future__ import annotations

import argparse
import math
import random
import shutil
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import httpx
import orjson
from sqlalchemy import text

from seamline.core import migrations
from seamline.core.auth import service as auth_service
from seamline.core.auth.schemas import Scope
from seamline.core.config import Settings
from seamline.core.db import Database
from seamline.customers import service as customers_service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.schemas import CustomerUpsert, IdentifierIn
from seamline.devtools.postgres import PostgresServer
from seamline.devtools.serve import ServerProcess
from seamline.events import service as events_service
from seamline.events.ingest import person_key

TIMELINE_INDEXES = {"ix_event_record_person_timeline": "person, timestamp, id"}
KINDS = [("page", "Product"), ("track", "Product Viewed"), ("track", "Product Added"), ("screen", "Cart")]
CHANNELS = ["web", "app", "store"]


def rows(total: int, people: int, own: int, start: datetime, seed: int):
    """(message_id, type, name, anonymous_id, user_id, channel, timestamp) in time order."""
    rng = random.Random(seed)
    span = 365 * 24 * 3600
    anna_every = total // own
    anna_ids = [("anna-web", None, "web"), ("anna-app", "anna", "app"), (None, "anna", "store")]
    for i in range(total):
        at = start + timedelta(seconds=span * i / total)
        kind, name = KINDS[i % len(KINDS)]
        if i % anna_every == 0 and i // anna_every < own:
            anonymous, user, channel = anna_ids[(i // anna_every) % 3]
        else:
            k = rng.randrange(people)
            anonymous, user, channel = f"anon-{k}", (f"user-{k}" if k % 3 == 0 else None), CHANNELS[k % 3]
        yield f"m{i:010d}", kind, name, anonymous, user, channel, at


def payload(message_id: str, kind: str, name: str, anonymous: str | None, user: str | None, at: datetime) -> str:
    message = {"type": kind, "messageId": message_id, "timestamp": at.isoformat(), "properties": {"sku": "CREAM-50", "price": 1990},
               "context": {"library": {"name": "seamline.js", "version": "1.0.0"}, "page": {"path": "/p/cream-50"}}}
    if kind == "track":
        message["event"] = name
    else:
        message["name"] = name
    if anonymous:
        message["anonymousId"] = anonymous
    if user:
        message["userId"] = user
    return orjson.dumps(message).decode()


def load(database: Database, source_id: int, args: argparse.Namespace) -> float:
    start = datetime(2025, 11, 1, tzinfo=timezone.utc)
    t0 = time.perf_counter()
    postgres = database.dialect == "postgresql"
    with database.write() as session:
        cursor = session.connection().connection.dbapi_connection.cursor()
        for name in TIMELINE_INDEXES:
            cursor.execute(f"DROP INDEX {name}")
        generated = rows(args.events, args.people, args.own, start, seed=3)
        if postgres:
            with cursor.copy(
                "COPY event_record (source_id, message_id, type, name, anonymous_id, user_id, person, channel, "
                "timestamp, received_at, payload) FROM STDIN"
            ) as copy:
                for m, kind, name, anonymous, user, channel, at in generated:
                    copy.write_row((source_id, m, kind, name, anonymous, user,
                                    person_key(user_id=user, anonymous_id=anonymous), channel, at, at,
                                    payload(m, kind, name, anonymous, user, at)))
        else:
            cursor.execute("PRAGMA cache_size = -1048576")
            sql = ("INSERT INTO event_record (source_id, message_id, type, name, anonymous_id, user_id, person, channel, "
                   "timestamp, received_at, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
            chunk = []
            for m, kind, name, anonymous, user, channel, at in generated:
                stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")
                chunk.append((source_id, m, kind, name, anonymous, user,
                              person_key(user_id=user, anonymous_id=anonymous), channel, stamp, stamp,
                              payload(m, kind, name, anonymous, user, at)))
                if len(chunk) == 100_000:
                    cursor.executemany(sql, chunk)
                    chunk = []
            cursor.executemany(sql, chunk)
        for name, columns in TIMELINE_INDEXES.items():
            cursor.execute(f"CREATE INDEX {name} ON event_record ({columns})")
    if postgres:
        with database.write_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE event_record")
    return time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


def timed(http: httpx.Client, path: str, params: dict, n: int) -> tuple[list[float], dict]:
    latencies, body = [], {}
    for _ in range(n):
        start = time.perf_counter()
        response = http.get(path, params=params)
        latencies.append(time.perf_counter() - start)
        response.raise_for_status()
        body = response.json()
    return latencies, body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--own", type=int, default=10_000, help="Anna's events")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="seamline-timeline-"))
    pg = None
    try:
        if args.backend == "sqlite":
            url = f"sqlite:///{workdir / 'bench.db'}"
        else:
            pg = PostgresServer(fsync=True).start()
            url = pg.create_database("bench")
        migrations.upgrade(url)
        settings = Settings(_env_file=None, database_url=url, log_level="WARNING")
        database = Database(settings)
        rules = IdentifierRules(settings)
        with database.write() as session:
            source, _ = events_service.create_source(session, name="Website", channel="web")
            _, key = auth_service.create_api_key(session, name="bench", scopes=[Scope.read])
            source_id = source.id
        anna = CustomerUpsert(identifiers=[IdentifierIn(type="user_id", value="anna"),
                                           IdentifierIn(type="anonymous_id", value="anna-web"),
                                           IdentifierIn(type="anonymous_id", value="anna-app")])
        anna_id = database.run_write(lambda s: customers_service.upsert_customer(s, rules=rules, data=anna)).resolution.profile_id
        few = CustomerUpsert(identifiers=[IdentifierIn(type="user_id", value="user-3"), IdentifierIn(type="anonymous_id", value="anon-3")])
        few_id = database.run_write(lambda s: customers_service.upsert_customer(s, rules=rules, data=few)).resolution.profile_id
        print(f"loading {args.events:,} events ...", file=sys.stderr)
        load_seconds = load(database, source_id, args)
        with database.read() as session:
            total = session.execute(text("SELECT count(*) FROM event_record")).scalar_one()
            own = session.execute(text(
                "SELECT count(*) FROM event_record WHERE person IN ('a:anna-web', 'u:anna')"
            )).scalar_one()
        database.dispose()
        print(f"loaded {total:,} events ({own:,} Anna's) in {load_seconds:.0f} s", file=sys.stderr)

        server = ServerProcess(url, log_path=workdir / "server.log").start()
        try:
            with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as http:
                path = f"/v1/customers/{anna_id}/timeline"
                cold, first = timed(http, path, {"limit": 50}, 1)
                warm, first = timed(http, path, {"limit": 50}, args.requests)
                assert len(first["items"]) == 50
                walk, cursor = [], first["next_cursor"]
                for _ in range(20):
                    latency, body = timed(http, path, {"limit": 50, "cursor": cursor}, 1)
                    walk += latency
                    cursor = body["next_cursor"]
                channel, body = timed(http, path, {"limit": 50, "channel": "store"}, args.requests // 3)
                assert {i["channel"] for i in body["items"]} == {"store"}
                small, body = timed(http, f"/v1/customers/{few_id}/timeline", {"limit": 50}, args.requests // 3)
        finally:
            server.stop()
    finally:
        if pg:
            pg.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(f"\n{date.today().isoformat()}: `.venv/bin/python bench/timeline.py {' '.join(sys.argv[1:])}`\n")
    print("| backend | events in db | person's events | first request (cold) ms | first page p50 ms | p99 ms | 20 pages down, p99 ms | one channel, p99 ms | person with few events, p99 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.backend} | {total:,} | {own:,} | {cold[0] * 1000:.1f} | {pct(warm, 0.5):.1f} | {pct(warm, 0.99):.1f} "
          f"| {pct(walk, 0.99):.1f} | {pct(channel, 0.99):.1f} | {pct(small, 0.99):.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
